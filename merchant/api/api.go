// Package api is the merchant web node's wire contract (DESIGN.md §6.3–6.4):
// the order form a cardholder composes from, bundle intake, and order status.
// It imports no server code: the cardholder CLI uses it as the client side.
package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"orderseal/internal/signedhttp/httpsig"
	"orderseal/keygen"
	"orderseal/order"
)

// Routes of the merchant.
const (
	PathOrderForm = "/v1/order-form" // GET, signed (cardholder, consultant): catalog, prices, parties
	PathOrders    = "/v1/orders"     // POST a sealed bundle (cardholder) → 202
	PathOrder     = "/v1/orders/"    // GET + id: status (the order's cardholder)
	EventsSuffix  = "/events"        // POST PathOrder + id + EventsSuffix: tracking event (the order's carrier)
)

// Limits.
const (
	MaxBody     = order.MaxBundleSize // a submitted bundle is the whole body
	MaxFormSize = 1 << 20
)

// Order states. Received, Authorized and Shipped move forward; Declined and
// Failed are final; Delivered (and the carrier's other tracking statuses)
// follow Shipped.
const (
	StateReceived   = "received"
	StateAuthorized = "authorized"
	StateDeclined   = "declined"
	StateShipped    = "shipped"
	StateDelivered  = "delivered"
	StateFailed     = "failed"
	StateCancelled  = "cancelled" // by its cardholder before shipment (DESIGN.md §6.8)
	// StateCancelling: the cardholder asked to cancel; the carrier's booking
	// is being cancelled and the hold voided. Cancelled once both are done,
	// back to shipped when the carrier reports that the parcel had left.
	StateCancelling = "cancelling"
)

// Settled reports whether a state is one the checkout ends in: the cardholder
// stops following the order there.
func Settled(state string) bool {
	switch state {
	case StateDeclined, StateShipped, StateDelivered, StateFailed, StateCancelled:
		return true
	}
	return false
}

// Problem codes of the intake (besides the shared ones).
const (
	CodeBundleInvalid       = "bundle-invalid"        // 400: does not parse
	CodeUnsupportedVersion  = "unsupported-version"   // 400: version, suite or system not ours
	CodeWrongMerchant       = "wrong-merchant"        // 422: sealed for another merchant
	CodeCardholderMismatch  = "cardholder-mismatch"   // 403: signed by someone else than the bundle's cardholder
	CodeCarrierNotAccepted  = "carrier-not-accepted"  // 422
	CodePolicyUnknown       = "policy-unknown"        // 422: the header names a policy the form did not publish, or with another hash
	CodeIssuerNotAccepted   = "issuer-not-accepted"   // 422
	CodeVaultNotAccepted    = "vault-not-accepted"    // 422
	CodeBundleExpired       = "bundle-expired"        // 422
	CodeSectionRefused      = "section-refused"       // 422: the merchant section does not open
	CodeCatalogMismatch     = "catalog-mismatch"      // 422: items or prices differ from the catalog
	CodeTotalMismatch       = "total-mismatch"        // 422: total is not the sum of the items
	CodeCurrencyMismatch    = "currency-mismatch"     // 422
	CodeOrderIDReused       = "order-id-reused"       // 409: a different bundle under a used order id
	CodeUnknownOrder        = "unknown-order"         // 404
	CodeTrackingMismatch    = "tracking-mismatch"     // 409: event for another shipment
	CodeDestinationMissing  = "ship-to-token-missing" // 422: a vault section without a token in the merchant's section
	CodeMerchantUnavailable = "merchant-unavailable"  // 503
)

// Product is one catalog entry.
type Product struct {
	SKU       string `json:"sku" validate:"required,max=64"`
	Name      string `json:"name" validate:"required,max=200"`
	UnitPrice int64  `json:"unit_price" validate:"min=0,max=1000000000000"` // minor units of the form's currency
}

// OrderForm is what a cardholder needs to compose an order for this merchant.
type OrderForm struct {
	Merchant string    `json:"merchant"`
	Currency string    `json:"currency"`
	Catalog  []Product `json:"catalog"`
	Carrier  string    `json:"carrier"` // the carrier the merchant ships with
	Issuers  []string  `json:"issuers"` // issuers whose cards it accepts
	Vault    string    `json:"vault"`   // the vault it asks for address grants
	MaxItems int       `json:"max_items"`
	// Directory holds, under a suite with a KEM (OS2), the key center's
	// entries of the merchant and the parties above for the current
	// epochs: the cardholder checks each signature and seals each section
	// to its recipient's entry.
	Directory []*keygen.DirectoryEntry `json:"directory,omitempty"`
	// Policies are the section policies the merchant accepts, one per
	// group of destination countries: the cardholder seals under the one
	// for hers and the bundle header names it (id and hash).
	Policies *order.PolicySet `json:"policies,omitempty"`
	// ShipFrom is the country parcels leave from (ISO 3166-1): a parcel
	// to another country is an import there (customs data, CN22).
	ShipFrom string `json:"ship_from,omitempty"`
}

// Product returns the catalog entry for sku.
func (f *OrderForm) Product(sku string) (Product, bool) {
	for _, p := range f.Catalog {
		if p.SKU == sku {
			return p, true
		}
	}
	return Product{}, false
}

// Accepted answers an intake: the bundle is stored durably.
type Accepted struct {
	OrderID string `json:"order_id"`
	State   string `json:"state"`
}

// Event is one line of an order's timeline.
type Event struct {
	At     string `json:"at"` // RFC 3339
	State  string `json:"state"`
	Detail string `json:"detail,omitempty"`
}

// Status is an order as its cardholder may see it.
type Status struct {
	OrderID  string  `json:"order_id"`
	State    string  `json:"state"`
	Reason   string  `json:"reason,omitempty"` // decline or failure code
	Total    int64   `json:"total"`
	Currency string  `json:"currency"`
	AuthCode string  `json:"auth_code,omitempty"`
	Invoice  string  `json:"invoice,omitempty"`
	Carrier  string  `json:"carrier,omitempty"`
	Tracking string  `json:"tracking,omitempty"`
	Timeline []Event `json:"timeline"`
	// Payment is the issuer's last word on the payment after authorization
	// (DESIGN.md §6.8); absent until the merchant has one.
	Payment *Payment `json:"payment,omitempty"`
	// Installments is the issuer's schedule of an approval in more than one
	// payment, as it answered, written for people ("3 installments: 4.33
	// EUR due 2027-01-07, …"); absent for a single payment.
	Installments string `json:"installments,omitempty"`
}

// PlanEvent is the timeline state of the entry that records the issuer's
// installment schedule of an approval.
const PlanEvent = "installments"

// Payment is an order's payment as its issuer last answered about it.
type Payment struct {
	State     string `json:"state"`    // the issuer's: authorized, partially-captured, captured, partially-refunded, refunded, voided, expired
	Captured  int64  `json:"captured"` // minor units
	Refunded  int64  `json:"refunded"` // minor units
	HoldUntil string `json:"hold_until,omitempty"`
}

// Client is the cardholder's side of the merchant API.
type Client struct {
	http     *httpsig.Client
	base     string
	merchant string // pinned: by the caller, else to the URL's host
}

// ErrNoHostIdentity is returned when the merchant URL's host cannot name a
// merchant (an IPv6 literal, say) and no identity is pinned.
var ErrNoHostIdentity = errors.New("the merchant URL's host is not a merchant name")

// HostIdentity is the merchant identity a base URL pins when the caller
// pins none: merchant:<host>, the host lowercased and without its port.
func HostIdentity(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("merchant URL %q: must be http(s)://host[:port]", base)
	}
	id := string(keygen.RoleMerchant) + ":" + strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if err := keygen.ValidateIdentity(id); err != nil {
		return "", fmt.Errorf("%w: %q", ErrNoHostIdentity, u.Hostname())
	}
	return id, nil
}

// NewClient makes a client for the merchant at base URL, signing with keys.
// merchant pins the merchant identity; "" pins HostIdentity(base), the
// merchant of the host the caller chose (DESIGN.md §5 Hardening). Every
// request, the order form's too, is signed to that identity and every
// answer must be signed back by it.
func NewClient(keys keygen.Keyring, base, merchant string, hc *httpsig.HTTPClient) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("merchant URL %q: must be http(s)://host[:port]", base)
	}
	if keys == nil {
		return nil, errors.New("the merchant client needs a key: every request to the merchant is signed")
	}
	if merchant == "" {
		if merchant, err = HostIdentity(base); err != nil {
			return nil, err
		}
	}
	if err := keygen.ValidateIdentity(merchant); err != nil || keygen.RoleOf(merchant) != keygen.RoleMerchant {
		return nil, fmt.Errorf("merchant identity %q: must be merchant:<name>", merchant)
	}
	return &Client{http: httpsig.NewClient(keys, hc), base: strings.TrimRight(base, "/"), merchant: merchant}, nil
}

// Merchant is the pinned merchant identity the client signs for.
func (c *Client) Merchant() string { return c.merchant }

// OrderForm fetches the order form with a signed request. The answer is
// accepted only when the pinned merchant signed it and the form names that
// merchant: the parties in it are the merchant's word, not the network's.
func (c *Client) OrderForm(ctx context.Context) (*OrderForm, error) {
	var f OrderForm
	if err := c.http.DoJSON(ctx, c.merchant, httpsig.MethodGet, c.base+PathOrderForm, nil, &f); err != nil {
		return nil, fmt.Errorf("order form: %w", err)
	}
	if f.Merchant != c.merchant {
		return nil, fmt.Errorf("order form: %w: signed by %s but names %q", ErrFormMerchant, c.merchant, f.Merchant)
	}
	return &f, nil
}

// ErrFormMerchant is returned for a signed form naming another merchant.
var ErrFormMerchant = errors.New("the order form names another merchant")

// call sends a signed request to the merchant at path and decodes its answer
// into a new T.
func call[T any](ctx context.Context, c *Client, method, path string, in any) (*T, error) {
	return httpsig.Call[T](ctx, httpsig.PeerClient{HTTP: c.http, Base: c.base, Identity: c.merchant}, method, path, in)
}

// Submit sends a sealed bundle. Submitting the same bundle again is safe: the
// merchant answers with the same order.
func (c *Client) Submit(ctx context.Context, b *order.Bundle) (*Accepted, error) {
	raw, err := b.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return call[Accepted](ctx, c, httpsig.MethodPost, PathOrders, json.RawMessage(raw))
}

// Status reads one of the caller's orders.
func (c *Client) Status(ctx context.Context, orderID string) (*Status, error) {
	return call[Status](ctx, c, httpsig.MethodGet, PathOrder+url.PathEscape(orderID), nil)
}

// NewInvoice returns a fresh invoice number, "inv_" and 16 base32 characters.
func NewInvoice() (string, error) {
	id, err := order.NewOrderID(rand.Reader)
	if err != nil {
		return "", err
	}
	return "inv_" + strings.TrimPrefix(id, "ord_")[:16], nil
}
