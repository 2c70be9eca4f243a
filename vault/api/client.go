package api

import (
	"context"
	"net/url"

	"orderseal/internal/signedhttp/httpsig"
	"orderseal/keygen"
	"orderseal/order"
)

// Client talks to one vault with signed requests and opens what it reveals.
type Client struct {
	peer httpsig.PeerClient
	keys keygen.Keyring
}

// NewClient makes a client for the vault identity at base URL.
func NewClient(keys keygen.Keyring, base, vault string, hc *httpsig.HTTPClient) (*Client, error) {
	peer, err := httpsig.NewPeerClient(keys, keygen.RoleVault, vault, base, hc)
	if err != nil {
		return nil, err
	}
	return &Client{peer: peer, keys: keys}, nil
}

// Identity is the vault's identity.
func (c *Client) Identity() string { return c.peer.Identity }

// Register seals value for the vault and returns its token.
func (c *Client) Register(ctx context.Context, typ, label string, shareable bool, value []byte) (*RegisterResponse, error) {
	req := &RegisterRequest{Type: typ, Label: label, Shareable: shareable}
	if err := SealRegister(c.keys, c.peer.Identity, req, value); err != nil {
		return nil, err
	}
	return httpsig.Call[RegisterResponse](ctx, c.peer, httpsig.MethodPost, PathTokens, req)
}

// Deposit seals an inline address for the vault as the carrier's deposit
// for merchant's order and invoice, and returns its token. The carrier
// reveals it with RevealGranted under the order's deposit grant.
func (c *Client) Deposit(ctx context.Context, merchant, orderID, invoice string, value []byte) (*RegisterResponse, error) {
	req := &RegisterRequest{Type: TypeAddress, Label: orderID, Deposit: &Deposit{Merchant: merchant, OrderID: orderID, Invoice: invoice}}
	if err := SealRegister(c.keys, c.peer.Identity, req, value); err != nil {
		return nil, err
	}
	return httpsig.Call[RegisterResponse](ctx, c.peer, httpsig.MethodPost, PathTokens, req)
}

// List returns the caller's own tokens.
func (c *Client) List(ctx context.Context) ([]Entry, error) {
	out, err := httpsig.Call[ListResponse](ctx, c.peer, httpsig.MethodGet, PathTokens, nil)
	if err != nil {
		return nil, err
	}
	return out.Tokens, nil
}

// RevealOwn returns the value of one of the caller's own tokens.
func (c *Client) RevealOwn(ctx context.Context, token string) ([]byte, error) {
	out, err := httpsig.Call[RevealResponse](ctx, c.peer, httpsig.MethodGet, PathToken+url.PathEscape(token), nil)
	if err != nil {
		return nil, err
	}
	return OpenReveal(c.keys, c.peer.Identity, token, "", out.Value)
}

// Grant presents a bundle's vault section (the merchant's call): without an
// approval the grant is created pending, with the issuer's approval it is
// activated.
func (c *Client) Grant(ctx context.Context, b *order.Bundle, invoice, approval string) (*GrantResponse, error) {
	raw, err := b.RelayJSON(order.RoleVault)
	if err != nil {
		return nil, err
	}
	return httpsig.Call[GrantResponse](ctx, c.peer, httpsig.MethodPost, PathGrants, GrantRequest{Bundle: raw, Invoice: invoice, Approval: approval})
}

// Revoke revokes every grant of the merchant's order orderID.
func (c *Client) Revoke(ctx context.Context, orderID, reason string) (*RevokeResponse, error) {
	return httpsig.Call[RevokeResponse](ctx, c.peer, httpsig.MethodPost, PathRevoke, RevokeRequest{OrderID: orderID, Reason: reason})
}

// RevealGranted returns the value a live grant lets the caller see, for
// display only: callers must not store it.
func (c *Client) RevealGranted(ctx context.Context, token, orderID, invoice string) ([]byte, error) {
	out, err := httpsig.Call[RevealResponse](ctx, c.peer, httpsig.MethodPost, PathReveal, RevealGrantRequest{Token: token, OrderID: orderID, Invoice: invoice})
	if err != nil {
		return nil, err
	}
	return OpenReveal(c.keys, c.peer.Identity, token, orderID, out.Value)
}

// Directory is the party's own directory entries (OS2): the key center's
// certificates of its KEM keys, for the merchant's order form.
func (c *Client) Directory(ctx context.Context) ([]*keygen.DirectoryEntry, error) {
	return httpsig.FetchDirectory(ctx, c.peer)
}
