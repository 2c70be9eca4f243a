package api

import (
	"context"
	"net/http"
	"net/url"

	"orderseal/internal/signedhttp/httpsig"
	"orderseal/keygen"
	"orderseal/order"
)

// Client talks to one vault with signed requests and opens what it reveals.
type Client struct {
	keys  *keygen.Cache
	http  *httpsig.Client
	base  string // e.g. http://127.0.0.1:8443
	vault string // the vault's identity
}

// NewClient makes a client for the vault identity at base URL.
func NewClient(keys *keygen.Cache, base, vault string, hc *http.Client) (*Client, error) {
	base, err := httpsig.Peer(keygen.RoleVault, vault, base)
	if err != nil {
		return nil, err
	}
	return &Client{keys: keys, http: httpsig.NewClient(keys, hc), base: base, vault: vault}, nil
}

// Identity is the vault's identity.
func (c *Client) Identity() string { return c.vault }

// Register seals value for the vault and returns its token.
func (c *Client) Register(ctx context.Context, typ, label string, shareable bool, value []byte) (*RegisterResponse, error) {
	req := &RegisterRequest{Type: typ, Label: label, Shareable: shareable}
	if err := SealRegister(c.keys, c.vault, req, value); err != nil {
		return nil, err
	}
	var out RegisterResponse
	if err := c.http.DoJSON(ctx, c.vault, http.MethodPost, c.base+PathTokens, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// List returns the caller's own tokens.
func (c *Client) List(ctx context.Context) ([]Entry, error) {
	var out ListResponse
	if err := c.http.DoJSON(ctx, c.vault, http.MethodGet, c.base+PathTokens, nil, &out); err != nil {
		return nil, err
	}
	return out.Tokens, nil
}

// RevealOwn returns the value of one of the caller's own tokens.
func (c *Client) RevealOwn(ctx context.Context, token string) ([]byte, error) {
	var out RevealResponse
	if err := c.http.DoJSON(ctx, c.vault, http.MethodGet, c.base+PathToken+url.PathEscape(token), nil, &out); err != nil {
		return nil, err
	}
	return OpenReveal(c.keys, c.vault, token, "", out.Value)
}

// Grant presents a bundle's vault section (the merchant's call).
func (c *Client) Grant(ctx context.Context, b *order.Bundle, invoice string, maxUses int) (*GrantResponse, error) {
	relay, err := b.ForRole(order.RoleVault)
	if err != nil {
		return nil, err
	}
	raw, err := relay.MarshalJSON()
	if err != nil {
		return nil, err
	}
	var out GrantResponse
	if err := c.http.DoJSON(ctx, c.vault, http.MethodPost, c.base+PathGrants, GrantRequest{Bundle: raw, Invoice: invoice, MaxUses: maxUses}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevealGranted returns the value a live grant lets the caller see, for
// display only: callers must not store it.
func (c *Client) RevealGranted(ctx context.Context, token, orderID, invoice string) ([]byte, error) {
	var out RevealResponse
	if err := c.http.DoJSON(ctx, c.vault, http.MethodPost, c.base+PathReveal, RevealGrantRequest{Token: token, OrderID: orderID, Invoice: invoice}, &out); err != nil {
		return nil, err
	}
	return OpenReveal(c.keys, c.vault, token, orderID, out.Value)
}
