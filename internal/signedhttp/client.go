package signedhttp

import (
	"net/http"
	"time"

	"orderseal/internal/signedhttp/httpsig"
	"orderseal/keygen"
)

// Client signs requests and verifies responses; see httpsig.Client, which
// echo-free callers (the cardholder CLI) import directly.
type Client = httpsig.Client

// Response is a verified response.
type Response = httpsig.Response

// ClientOption configures a Client.
type ClientOption = httpsig.ClientOption

// ErrForgedResponse is returned when a response's signature does not verify,
// including unsigned responses and responses signed by another identity.
var ErrForgedResponse = httpsig.ErrForgedResponse

// NewClient returns a Client signing as keys.Identity(); see httpsig.NewClient.
func NewClient(keys keygen.Keyring, hc *http.Client, opts ...ClientOption) *Client {
	return httpsig.NewClient(keys, hc, opts...)
}

// WithClientClock replaces the clock that dates requests (tests).
func WithClientClock(now func() time.Time) ClientOption { return httpsig.WithClock(now) }
