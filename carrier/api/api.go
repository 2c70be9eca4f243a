// Package api is the carrier's wire contract (DESIGN.md §6.6): the merchant's
// booking request, the carrier's signed answer, and the tracking events the
// carrier sends back to the merchant. It imports no server code.
package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"orderseal/internal/signedhttp/httpsig"
	"orderseal/keygen"
	"orderseal/order"
)

// Routes of the carrier. PUT is idempotent: the carrier keys a booking on
// (calling merchant, order id); so is the cancel.
const (
	PathShipments = "/v1/shipments/" // PUT + order id: book (merchant)
	// CancelSuffix: POST PathShipments + order id + CancelSuffix cancels a
	// booking whose parcel has not left (merchant). A second cancel answers
	// the cancelled shipment again and changes nothing.
	CancelSuffix = "/cancel"
)

// MaxBody bounds a booking request: the header and one section.
const MaxBody = 300 << 10

// Problem codes the carrier refuses a booking with (besides the shared ones).
const (
	CodeOrderIDReused   = "order-id-reused"   // 409: a different bundle under a booked order id
	CodeBundleInvalid   = "bundle-invalid"    // 400: does not parse or is not for this carrier
	CodeBundleExpired   = "bundle-expired"    // 422
	CodeSectionRefused  = "section-refused"   // 422: the carrier section does not open
	CodeOrderIDMismatch = "order-id-mismatch" // 400: path and bundle name different orders
	CodeNoDestination   = "no-destination"    // 422: the section names neither a token nor an address
	CodeVaultDeposit    = "vault-unavailable" // 503: an inline address could not be deposited; retry
	// Problem codes of a cancel.
	CodeUnknownShipment = "unknown-shipment" // 404: the calling merchant booked no shipment for this order
	CodeParcelLeft      = "parcel-left"      // 409: the parcel was picked up (or later): it cannot be cancelled; nothing changes
)

// Tracking statuses, in the order a parcel normally goes through them.
const (
	StatusBooked         = "booked"
	StatusPickedUp       = "picked-up"
	StatusInTransit      = "in-transit"
	StatusOutForDelivery = "out-for-delivery"
	StatusDelivered      = "delivered"
	StatusException      = "exception" // delivery failed; a note says why
	StatusReturned       = "returned"
	// StatusCancelled: the merchant cancelled the booking before the parcel
	// left (CancelSuffix); final, and set by the cancel only.
	StatusCancelled = "cancelled"
)

// EventStatuses are the statuses an event may carry after booking.
var EventStatuses = []string{StatusPickedUp, StatusInTransit, StatusOutForDelivery, StatusDelivered, StatusException, StatusReturned}

// BookingRequest is the merchant's request: the bundle relayed with only the
// header and the carrier section, and the invoice the vault grant is bound
// to. Where tracking events go is the carrier's configuration, never the
// request's: EventsURL is accepted from older merchants only when it is the
// configured URL for this order (CodeEventsURLMismatch otherwise).
type BookingRequest struct {
	Bundle    json.RawMessage `json:"bundle" validate:"required"`
	Invoice   string          `json:"invoice" validate:"required,min=1,max=64,printascii"`
	EventsURL string          `json:"events_url,omitempty" validate:"max=2048"` // deprecated; ignored when it matches
	Parcel    *Parcel         `json:"parcel,omitempty"`
}

// Parcel is what the merchant declares about the parcel it hands over:
// the sender and return address (the shop's own, not personal data), the
// service, weight and piece count, and its contents for the customs
// declaration (CN22) of an international parcel. None of it comes from
// the cardholder's bundle, whose sections stay as the policy says.
type Parcel struct {
	Sender   order.Address `json:"sender" validate:"-"` // checked by the carrier with order/address
	Service  string        `json:"service" validate:"required,max=32,printascii"`
	WeightG  int           `json:"weight_g" validate:"min=1,max=70000"`
	Pieces   int           `json:"pieces" validate:"min=1,max=99"`
	Contents []CustomsItem `json:"contents,omitempty" validate:"max=100,dive"`
	// Category is the CN22 category: gift, documents, sample, returned goods, merchandise or other.
	Category string `json:"category,omitempty" validate:"omitempty,oneof=gift documents sample returned merchandise other"`
}

// CustomsItem is one line of a customs declaration.
type CustomsItem struct {
	Description string `json:"description" validate:"required,max=100"`
	Qty         int    `json:"qty" validate:"min=1,max=10000"`
	WeightG     int    `json:"weight_g" validate:"min=0,max=70000"`
	Value       int64  `json:"value" validate:"min=0,max=1000000000000"` // minor units of Currency, the line's total
	Currency    string `json:"currency" validate:"required,len=3"`
	HSCode      string `json:"hs_code,omitempty" validate:"max=12"`
	Origin      string `json:"origin" validate:"required,len=2"` // ISO 3166-1 country of origin
}

// EventsPath is the merchant's endpoint for one order's tracking events,
// below the base URL the carrier is configured with for that merchant.
func EventsPath(orderID string) string { return "/v1/orders/" + url.PathEscape(orderID) + "/events" }

// Shipment is the carrier's answer, echoing the header hash.
type Shipment struct {
	OrderID    string `json:"order_id"`
	HeaderHash string `json:"header_hash"` // base64url of hH
	Tracking   string `json:"tracking"`    // UPU S10: 2 letters, 8-digit serial, check digit, country, e.g. OS123456785DE
	Status     string `json:"status"`
	Booked     string `json:"booked"` // RFC 3339
}

// TrackingEvent is what the carrier posts to the merchant's EventsURL. Seq
// counts from 1 per shipment, so the merchant can drop duplicates of a retry.
type TrackingEvent struct {
	OrderID  string `json:"order_id" validate:"required,max=64"`
	Tracking string `json:"tracking" validate:"required,max=32"`
	Seq      int64  `json:"seq" validate:"min=1"`
	Status   string `json:"status" validate:"required,oneof=booked picked-up in-transit out-for-delivery delivered exception returned cancelled"`
	At       string `json:"at" validate:"required,max=40"` // RFC 3339
	Note     string `json:"note,omitempty" validate:"max=200"`
}

// Client is the merchant's side of the carrier API.
type Client struct {
	peer httpsig.PeerClient
}

// NewClient makes a client for the carrier identity at base URL.
func NewClient(keys keygen.Keyring, base, carrier string, hc *http.Client) (*Client, error) {
	peer, err := httpsig.NewPeerClient(keys, keygen.RoleCarrier, carrier, base, hc)
	if err != nil {
		return nil, err
	}
	return &Client{peer: peer}, nil
}

// Book relays b's header and carrier section. The carrier sends the
// order's tracking events where its configuration says for the caller.
func (c *Client) Book(ctx context.Context, b *order.Bundle, invoice string) (*Shipment, error) {
	return c.BookParcel(ctx, b, invoice, nil)
}

// BookParcel is Book declaring the parcel: sender, service, weight,
// pieces and customs contents, for the label.
func (c *Client) BookParcel(ctx context.Context, b *order.Bundle, invoice string, p *Parcel) (*Shipment, error) {
	raw, err := b.RelayJSON(order.RoleCarrier)
	if err != nil {
		return nil, err
	}
	return httpsig.Call[Shipment](ctx, c.peer, http.MethodPut, PathShipments+url.PathEscape(b.OrderID),
		BookingRequest{Bundle: raw, Invoice: invoice, Parcel: p})
}

// Cancel cancels the caller's booking for orderID while its parcel has not
// left: the answer is the shipment, cancelled. A parcel that left is
// refused with CodeParcelLeft, an order never booked with CodeUnknownShipment.
func (c *Client) Cancel(ctx context.Context, orderID string) (*Shipment, error) {
	return httpsig.Call[Shipment](ctx, c.peer, http.MethodPost, PathShipments+url.PathEscape(orderID)+CancelSuffix, nil)
}

// Directory is the party's own directory entries (OS2): the key center's
// certificates of its KEM keys, for the merchant's order form.
func (c *Client) Directory(ctx context.Context) ([]*keygen.DirectoryEntry, error) {
	return httpsig.FetchDirectory(ctx, c.peer)
}
