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
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/signedhttp/httpsig"
	"orderseal/internal/strictjson"
	"orderseal/keygen"
	"orderseal/order"
)

// Routes of the merchant.
const (
	PathOrderForm = "/v1/order-form" // GET, public: catalog, prices, parties
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
)

// Settled reports whether a state is one the checkout ends in: the cardholder
// stops following the order there.
func Settled(state string) bool {
	switch state {
	case StateDeclined, StateShipped, StateDelivered, StateFailed:
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
}

// Client is the cardholder's side of the merchant API.
type Client struct {
	keys     keygen.Keyring
	http     *httpsig.Client
	plain    *http.Client
	base     string
	merchant string // learnt from the order form unless pinned
}

// NewClient makes a client for the merchant at base URL. merchant pins the
// merchant identity ("" : take it from the order form). Without keys the
// client can only fetch the order form.
func NewClient(keys keygen.Keyring, base, merchant string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("merchant URL %q: must be http(s)://host[:port]", base)
	}
	if merchant != "" {
		if err := keygen.ValidateIdentity(merchant); err != nil || keygen.RoleOf(merchant) != keygen.RoleMerchant {
			return nil, fmt.Errorf("merchant identity %q: must be merchant:<name>", merchant)
		}
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	plain := *hc
	plain.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &Client{keys: keys, plain: &plain, base: strings.TrimRight(base, "/"), merchant: merchant}
	if keys != nil {
		c.http = httpsig.NewClient(keys, hc)
	}
	return c, nil
}

// Merchant is the merchant identity the client signs for ("" before OrderForm
// unless pinned).
func (c *Client) Merchant() string { return c.merchant }

// OrderForm fetches the public order form. The requests that follow are
// signed to the merchant identity it names, so a form from an impostor fails
// at the first signed answer.
func (c *Client) OrderForm(ctx context.Context) (*OrderForm, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+PathOrderForm, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.plain.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxFormSize+1))
	if err != nil {
		return nil, err
	}
	if len(body) > MaxFormSize {
		return nil, fmt.Errorf("order form larger than %d bytes", MaxFormSize)
	}
	if resp.StatusCode != http.StatusOK {
		if p, err := rfc9457.Decode(body); err == nil {
			p.Status = resp.StatusCode // the document's own member may be absent or wrong
			return nil, p
		}
		return nil, fmt.Errorf("order form: HTTP %d", resp.StatusCode)
	}
	var f OrderForm
	if err := strictjson.Decode(body, &f, MaxFormSize); err != nil {
		return nil, fmt.Errorf("order form: %w", err)
	}
	if err := keygen.ValidateIdentity(f.Merchant); err != nil || keygen.RoleOf(f.Merchant) != keygen.RoleMerchant {
		return nil, fmt.Errorf("order form names no valid merchant identity")
	}
	if c.merchant != "" && c.merchant != f.Merchant {
		return nil, fmt.Errorf("order form is for %s, not the pinned %s", f.Merchant, c.merchant)
	}
	c.merchant = f.Merchant
	return &f, nil
}

func (c *Client) target(ctx context.Context) (string, error) {
	if c.http == nil {
		return "", errors.New("merchant client has no keys to sign with")
	}
	if c.merchant == "" {
		if _, err := c.OrderForm(ctx); err != nil {
			return "", err
		}
	}
	return c.merchant, nil
}

// call sends a signed request to the merchant at path and decodes its answer
// into a new T.
func call[T any](ctx context.Context, c *Client, method, path string, in any) (*T, error) {
	target, err := c.target(ctx)
	if err != nil {
		return nil, err
	}
	return httpsig.Call[T](ctx, httpsig.PeerClient{HTTP: c.http, Base: c.base, Identity: target}, method, path, in)
}

// Submit sends a sealed bundle. Submitting the same bundle again is safe: the
// merchant answers with the same order.
func (c *Client) Submit(ctx context.Context, b *order.Bundle) (*Accepted, error) {
	raw, err := b.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return call[Accepted](ctx, c, http.MethodPost, PathOrders, json.RawMessage(raw))
}

// Status reads one of the caller's orders.
func (c *Client) Status(ctx context.Context, orderID string) (*Status, error) {
	return call[Status](ctx, c, http.MethodGet, PathOrder+url.PathEscape(orderID), nil)
}

// NewInvoice returns a fresh invoice number, "inv_" and 16 base32 characters.
func NewInvoice() (string, error) {
	id, err := order.NewOrderID(rand.Reader)
	if err != nil {
		return "", err
	}
	return "inv_" + strings.TrimPrefix(id, "ord_")[:16], nil
}
