//go:build !js

package httpsig

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"

	"orderseal/keygen"
)

// Header is a request's or a response's header.
type Header = http.Header

// HTTPClient is what a Client sends with: net/http's client natively.
type HTTPClient = http.Client

// NewClient signs as keys.Identity(). hc supplies the transport and timeout
// (nil: a client with a 30 s timeout; no transport: PeerTransport); the
// Client works on a copy that does not follow redirects, since a redirect
// would carry the signed headers to a URL they were not signed for.
func NewClient(keys keygen.Keyring, hc *http.Client, opts ...ClientOption) *Client {
	if keys == nil {
		panic("httpsig: NewClient with nil keys")
	}
	var h http.Client
	if hc != nil {
		h = *hc
	} else {
		h.Timeout = 30 * time.Second
	}
	if h.Transport == nil {
		h.Transport = PeerTransport
	}
	h.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &Client{keys: keys, rt: netTransport{&h}, now: time.Now, maxResponse: DefaultMaxResponse}
	for _, o := range opts {
		o(c)
	}
	return c
}

// PeerTransport is the transport of every Client given none: net/http's
// default, except that it keeps up to MaxIdlePerPeer idle connections to
// each peer instead of two. A daemon relays to a few peers from many
// goroutines at once; with two idle connections per host, every request
// beyond the second that finished at the same moment closed its connection
// and the next one dialled a new one, which cost the merchant 5 % of its CPU
// in dialling alone at 32 cardholders, and the peers as much in accepting.
var PeerTransport http.RoundTripper = newPeerTransport()

// MaxIdlePerPeer is how many idle connections PeerTransport keeps per peer.
const MaxIdlePerPeer = 256

func newPeerTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = MaxIdlePerPeer
	t.MaxIdleConns = 4 * MaxIdlePerPeer
	return t
}

type netTransport struct{ h *http.Client }

func (t netTransport) roundTrip(ctx context.Context, method, url string, hdr Header, body []byte) (int, Header, io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	hr, err := t.h.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	return hr.StatusCode, hr.Header, hr.Body, nil
}
