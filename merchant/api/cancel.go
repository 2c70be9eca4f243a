package api

import (
	"context"
	"net/url"

	"orderseal/internal/signedhttp/httpsig"
)

// CancelSuffix: POST PathOrder + id + CancelSuffix, signed by the order's
// cardholder, cancels an order before shipment (DESIGN.md §6.8): its hold
// is voided at the issuer and its address grant revoked at the vault,
// through the merchant's outbox.
const CancelSuffix = "/cancel"

// Problem codes of a cancel.
const (
	CodeAlreadyCancelled = "order-already-cancelled" // 409: a second cancel; nothing changes
	CodeOrderShipped     = "order-shipped"           // 409: the parcel is booked or on its way: ask for a refund instead
	CodeNotCancellable   = "order-not-cancellable"   // 409: declined or failed: nothing is held
)

// Cancel cancels one of the caller's orders before shipment and returns
// its status.
func (c *Client) Cancel(ctx context.Context, orderID string) (*Status, error) {
	return call[Status](ctx, c, httpsig.MethodPost, PathOrder+url.PathEscape(orderID)+CancelSuffix, nil)
}
