package api

import (
	"context"
	"net/url"

	"orderseal/internal/signedhttp/httpsig"
)

// CancelSuffix: POST PathOrder + id + CancelSuffix, signed by the order's
// cardholder, cancels an order before its parcel leaves (DESIGN.md §6.8):
// the carrier's booking is cancelled, then its address grant revoked at the
// vault and its hold voided at the issuer, through the merchant's outbox.
// The answer is the order in StateCancelling; it is StateCancelled once
// every step is done, or shipped again if the carrier reports the parcel
// had left meanwhile.
const CancelSuffix = "/cancel"

// Problem codes of a cancel.
const (
	CodeAlreadyCancelled = "order-already-cancelled" // 409: a second cancel (or one while the first is under way); nothing changes
	CodeOrderShipped     = "order-shipped"           // 409: the parcel has left: ask for a refund instead
	CodeNotCancellable   = "order-not-cancellable"   // 409: declined or failed: nothing is held
)

// Cancel cancels one of the caller's orders before shipment and returns
// its status.
func (c *Client) Cancel(ctx context.Context, orderID string) (*Status, error) {
	return call[Status](ctx, c, httpsig.MethodPost, PathOrder+url.PathEscape(orderID)+CancelSuffix, nil)
}
