// Package api is the card issuer's wire contract (DESIGN.md §6.5): what a
// merchant sends to have an order authorized, and the issuer's signed answer.
// It imports no server code; the merchant's outbox uses it as the client side.
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

// Routes of the issuer. PUT is idempotent: the path names the order, and the
// issuer keys its idempotency on (calling merchant, order id).
const (
	PathAuthorizations = "/v1/authorizations/" // PUT + order id: authorize (merchant)
	PathVoidSuffix     = "/void"               // POST PathAuthorizations + id + "/void": release the hold (merchant)
	// The lifecycle after approval (DESIGN.md §6.8), each POST idempotent by
	// the request's idempotency key (unique per merchant at the issuer).
	PathCapturesSuffix = "/captures" // POST PathAuthorizations + id + "/captures": capture (part of) the hold
	PathRefundsSuffix  = "/refunds"  // POST PathAuthorizations + id + "/refunds": refund (part of) what was captured
	PathReleaseSuffix  = "/release"  // POST PathAuthorizations + id + "/release": release the hold's remainder (the order completed)
	// GET PathAuthorizations + id: the authorization as the issuer records it.
)

// MaxBody bounds a request: it carries the header and one section.
const MaxBody = 300 << 10

// Decisions.
const (
	Approved = "approved"
	Declined = "declined"
)

// Decline reason codes: stable, part of the contract.
const (
	ReasonNotEnrolled        = "card-not-enrolled"   // unknown card, or enrolled to another cardholder
	ReasonExpired            = "card-expired"        // past its expiry month
	ReasonInactive           = "card-inactive"       // suspended or closed
	ReasonInsufficientCredit = "insufficient-credit" // amount above available credit
	ReasonAmountMismatch     = "amount-mismatch"     // requested amount or currency differs from the issuer section
	ReasonCurrency           = "currency-not-supported"
	ReasonCVCRequired        = "cvc-required"             // assisted order without the card's security code
	ReasonCVCMismatch        = "cvc-mismatch"             // the security code in the issuer section is not the card's (any channel)
	ReasonCVCLocked          = "cvc-attempts-exceeded"    // too many wrong security codes for the card lately: assisted orders refused
	ReasonInstallments       = "installments-not-allowed" // the card's product offers no such plan (count, or a total below its minimum)
)

// Channels an authorization came through.
const (
	ChannelOnline   = "online"   // sealed by the cardholder, whose identity the card is enrolled to
	ChannelAssisted = "assisted" // keyed by a merchant's phone consultant in a session (DESIGN.md §6.7)
)

// Problem codes the issuer refuses a request with (besides the shared ones).
const (
	CodeOrderIDReused   = "order-id-reused"   // 409: a different bundle under a used order id
	CodeBundleInvalid   = "bundle-invalid"    // 400: the bundle does not parse or is not for this issuer
	CodeBundleExpired   = "bundle-expired"    // 422: outside its validity window
	CodeSectionRefused  = "section-refused"   // 422: the issuer section does not open or its commitment fails
	CodeOrderIDMismatch = "order-id-mismatch" // 400: path and bundle name different orders
	CodeUnknownAuth     = "unknown-authorization"
	CodeSessionMismatch = "session-mismatch" // 422: the request names another assisted session than the issuer section
)

// AuthorizeRequest is the merchant's request: the bundle relayed with only
// the header and the issuer section, and the amount the merchant asks for.
type AuthorizeRequest struct {
	Bundle   json.RawMessage `json:"bundle" validate:"required"`
	Amount   int64           `json:"amount" validate:"gt=0"`
	Currency string          `json:"currency" validate:"required"` // checked with package money (one list for every party)
	// Session is the assisted session the merchant checked the order's
	// proof against; it must equal the one the issuer section names, and be
	// empty for an online order.
	Session string `json:"session,omitempty" validate:"omitempty,max=64"`
}

// Authorization is the issuer's answer, echoing the header hash so the
// merchant knows which bundle it answers. The HTTP response carrying it is
// signed by the issuer (DESIGN.md §5).
type Authorization struct {
	OrderID    string `json:"order_id"`
	HeaderHash string `json:"header_hash"` // base64url of hH
	Decision   string `json:"decision"`    // Approved or Declined
	Reason     string `json:"reason,omitempty"`
	AuthCode   string `json:"auth_code,omitempty"` // approved only: 6 characters [0-9A-Z]
	Amount     int64  `json:"amount"`
	Currency   string `json:"currency"`
	Decided    string `json:"decided"` // RFC 3339
	Voided     bool   `json:"voided,omitempty"`
	// State is the lifecycle state (State…); Captured and Refunded are
	// totals in minor units; HoldUntil (RFC 3339) is when an approval's
	// uncaptured remainder expires.
	State     string `json:"state,omitempty"`
	Captured  int64  `json:"captured,omitempty"`
	Refunded  int64  `json:"refunded,omitempty"`
	HoldUntil string `json:"hold_until,omitempty"`
	Channel   string `json:"channel,omitempty"` // ChannelOnline or ChannelAssisted
	Session   string `json:"session,omitempty"` // assisted orders: the session that keyed it
	// Plan is an approval's installment schedule, when it has more than one.
	Plan *Plan `json:"plan,omitempty"`
	// VaultApproval is set on an approved, unvoided answer for a bundle that
	// names a vault: order.VaultApproval, which the merchant relays so the
	// vault activates the order's grant (DESIGN.md §7).
	VaultApproval string `json:"vault_approval,omitempty"`
}

// Authorization states (Authorization.State).
const (
	StateDeclined          = "declined"
	StateAuthorized        = "authorized"
	StatePartiallyCaptured = "partially-captured"
	StateCaptured          = "captured"
	StatePartiallyRefunded = "partially-refunded"
	StateRefunded          = "refunded"
	StateVoided            = "voided"
	StateExpired           = "expired"
)

// Plan is the installment schedule the issuer recorded with an approval.
type Plan struct {
	Installments int           `json:"installments"`
	Schedule     []Installment `json:"schedule"`
}

// Installment is one payment of a Plan.
type Installment struct {
	N      int    `json:"n"`
	Due    string `json:"due"`    // YYYY-MM-DD
	Amount int64  `json:"amount"` // minor units
}

// OpRequest is a capture or refund: an amount in the authorization's
// currency, under a key the merchant chose. The same key again is a retry
// (the issuer answers with the record as it is and changes nothing);
// another request under a used key is CodeIdempotencyKeyReused.
type OpRequest struct {
	IdempotencyKey string `json:"idempotency_key" validate:"required,max=128"`
	Amount         int64  `json:"amount" validate:"gt=0"`
	Currency       string `json:"currency" validate:"required"`
	// Final (captures): release the remainder of the hold with it, the
	// order's last shipment.
	Final bool `json:"final,omitempty"`
}

// ReleaseRequest releases what an authorization still holds.
type ReleaseRequest struct {
	IdempotencyKey string `json:"idempotency_key" validate:"required,max=128"`
}

// Client is the merchant's side of the issuer API.
type Client struct {
	peer httpsig.PeerClient
}

// NewClient makes a client for the issuer identity at base URL.
func NewClient(keys keygen.Keyring, base, issuer string, hc *http.Client) (*Client, error) {
	peer, err := httpsig.NewPeerClient(keys, keygen.RoleIssuer, issuer, base, hc)
	if err != nil {
		return nil, err
	}
	return &Client{peer: peer}, nil
}

// Authorize relays b's header and issuer section with the amount asked for
// and, for an assisted order, the session the merchant verified.
// A refusal comes back as a *rfc9457.Problem error.
func (c *Client) Authorize(ctx context.Context, b *order.Bundle, amount int64, currency, session string) (*Authorization, error) {
	raw, err := b.RelayJSON(order.RoleIssuer)
	if err != nil {
		return nil, err
	}
	return httpsig.Call[Authorization](ctx, c.peer, http.MethodPut, PathAuthorizations+url.PathEscape(b.OrderID),
		AuthorizeRequest{Bundle: raw, Amount: amount, Currency: currency, Session: session})
}

// Void releases the hold of an approved authorization (the order could not be
// fulfilled). Voiding twice is not an error.
func (c *Client) Void(ctx context.Context, orderID string) (*Authorization, error) {
	return httpsig.Call[Authorization](ctx, c.peer, http.MethodPost, PathAuthorizations+url.PathEscape(orderID)+PathVoidSuffix, nil)
}

// Capture captures amount of the order's authorization under key; final
// releases the rest of the hold with it.
func (c *Client) Capture(ctx context.Context, orderID, key string, amount int64, currency string, final bool) (*Authorization, error) {
	return httpsig.Call[Authorization](ctx, c.peer, http.MethodPost, PathAuthorizations+url.PathEscape(orderID)+PathCapturesSuffix,
		OpRequest{IdempotencyKey: key, Amount: amount, Currency: currency, Final: final})
}

// Refund refunds amount of what was captured of the order, under key.
func (c *Client) Refund(ctx context.Context, orderID, key string, amount int64, currency string) (*Authorization, error) {
	return httpsig.Call[Authorization](ctx, c.peer, http.MethodPost, PathAuthorizations+url.PathEscape(orderID)+PathRefundsSuffix,
		OpRequest{IdempotencyKey: key, Amount: amount, Currency: currency})
}

// Release releases what the order's authorization still holds, under key.
func (c *Client) Release(ctx context.Context, orderID, key string) (*Authorization, error) {
	return httpsig.Call[Authorization](ctx, c.peer, http.MethodPost, PathAuthorizations+url.PathEscape(orderID)+PathReleaseSuffix,
		ReleaseRequest{IdempotencyKey: key})
}

// Get reads the order's authorization as the issuer records it (an
// expired hold shows as StateExpired).
func (c *Client) Get(ctx context.Context, orderID string) (*Authorization, error) {
	return httpsig.Call[Authorization](ctx, c.peer, http.MethodGet, PathAuthorizations+url.PathEscape(orderID), nil)
}

// Directory is the party's own directory entries (OS2): the key center's
// certificates of its KEM keys, for the merchant's order form.
func (c *Client) Directory(ctx context.Context) ([]*keygen.DirectoryEntry, error) {
	return httpsig.FetchDirectory(ctx, c.peer)
}
