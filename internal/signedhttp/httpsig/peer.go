package httpsig

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"orderseal/keygen"
)

// Peer checks what a client needs to reach another party: identity must be
// role:<name>, base an http(s)://host[:port] URL. It returns base without a
// trailing slash.
func Peer(role keygen.Role, identity, base string) (string, error) {
	if err := keygen.ValidateIdentity(identity); err != nil || keygen.RoleOf(identity) != role {
		return "", fmt.Errorf("%s identity %q: must be %s:<name>", role, identity, role)
	}
	return BaseURL(string(role), base)
}

// BaseURL checks base is an http(s)://host[:port] URL and returns it without
// a trailing slash; what names it in the error.
func BaseURL(what, base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s URL %q: must be http(s)://host[:port]", what, base)
	}
	return strings.TrimRight(base, "/"), nil
}

// PeerClient is a signed client bound to one party of role at one base URL:
// what each party's api package builds its client on.
type PeerClient struct {
	HTTP     *Client
	Base     string // http(s)://host[:port], no trailing slash
	Identity string // the party's identity
}

// NewPeerClient checks identity and base as Peer does and binds a client to them.
func NewPeerClient(keys keygen.Keyring, role keygen.Role, identity, base string, hc *HTTPClient) (PeerClient, error) {
	base, err := Peer(role, identity, base)
	if err != nil {
		return PeerClient{}, err
	}
	return PeerClient{HTTP: NewClient(keys, hc), Base: base, Identity: identity}, nil
}

// Call sends in to the peer at path (below its base URL) as DoJSON does and
// decodes the answer into a new T.
func Call[T any](ctx context.Context, p PeerClient, method, path string, in any) (*T, error) {
	var out T
	if err := p.HTTP.DoJSON(ctx, p.Identity, method, p.Base+path, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
