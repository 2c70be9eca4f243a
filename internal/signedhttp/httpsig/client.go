package httpsig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"time"

	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/strictjson"
	"orderseal/keygen"
)

// DefaultMaxResponse bounds a response body the Client reads.
const DefaultMaxResponse = 4 << 20

var (
	// ErrForgedResponse is returned when a response's signature does not
	// verify: altered, unsigned, or signed by another identity or key.
	ErrForgedResponse = errors.New("response signature does not verify")
	// ErrResponseTooLarge is returned for a response body over the limit.
	ErrResponseTooLarge = errors.New("response body exceeds the limit")
)

// Methods the parties' APIs use (without importing net/http, which the
// browser's program does without: client_js.go).
const (
	MethodGet  = "GET"
	MethodPost = "POST"
)

// Client sends requests signed with K(self, target) and accepts only
// responses the target signed back over the request nonce. Safe for
// concurrent use.
type Client struct {
	keys        keygen.Keyring
	rt          transport
	now         func() time.Time
	maxResponse int64
	subKeys     KeyCache
}

// transport sends one request as given and returns the answer's status,
// header and body; it never follows a redirect, since a redirect would
// carry the signed headers to a URL they were not signed for. net/http
// natively (client_net.go), the browser's fetch in WebAssembly
// (client_js.go).
type transport interface {
	roundTrip(ctx context.Context, method, url string, hdr Header, body []byte) (status int, h Header, rb io.ReadCloser, err error)
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithClock replaces the clock that dates requests (tests).
func WithClock(now func() time.Time) ClientOption { return func(c *Client) { c.now = now } }

// WithMaxResponse bounds response bodies (default DefaultMaxResponse).
func WithMaxResponse(n int64) ClientOption { return func(c *Client) { c.maxResponse = n } }

// Response is a verified response.
type Response struct {
	Status int
	Header Header
	Body   []byte
}

// Do sends body to the party target at url, signed, and returns the response
// once its signature verifies, whatever its status.
func (c *Client) Do(ctx context.Context, target, method, url string, body []byte) (*Response, error) {
	return c.do(ctx, target, method, url, body, nil)
}

// DoJSON marshals in (nil: empty body), sends it with Do and decodes a 2xx
// answer strictly into out (nil: ignored). Any other status becomes a
// *rfc9457.Problem error: the peer's signed problem document, or a synthetic
// "unexpected-response" problem when the body is not one.
func (c *Client) DoJSON(ctx context.Context, target, method, url string, in, out any) error {
	var body []byte
	hdr := Header{"Accept": {"application/json, " + rfc9457.ContentType}}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		body = b
		hdr.Set("Content-Type", "application/json")
	}
	resp, err := c.do(ctx, target, method, url, body, hdr)
	if err != nil {
		return err
	}
	if resp.Status < 200 || resp.Status > 299 {
		return problemOf(resp)
	}
	if out != nil && len(resp.Body) > 0 {
		if err := strictjson.Decode(resp.Body, out, 0); err != nil {
			return fmt.Errorf("response from %s: %w", target, err)
		}
	}
	return nil
}

// do sends the request; a signed 401 replayed-nonce (someone replayed the
// captured request first, or a store lost track) is sent once more, signed
// anew with a fresh nonce: a replayed nonce is never a permanent failure.
func (c *Client) do(ctx context.Context, target, method, url string, body []byte, hdr Header) (*Response, error) {
	resp, err := c.send(ctx, target, method, url, body, hdr)
	if err == nil && resp.Status == 401 && isProblem(resp.Header) {
		if p, perr := rfc9457.Decode(resp.Body); perr == nil && p.Code == CodeReplayedNonce {
			return c.send(ctx, target, method, url, body, hdr)
		}
	}
	return resp, err
}

func (c *Client) send(ctx context.Context, target, method, rawURL string, body []byte, hdr Header) (*Response, error) {
	self := c.keys.Identity()
	if err := keygen.ValidateIdentity(target); err != nil {
		return nil, err
	}
	keys, err := c.subKeys.Keys(c.keys, "", target)
	if err != nil {
		return nil, err
	}
	defer keys.Destroy() // this copy; the cache keeps its own

	if method == "" {
		method = MethodGet
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("httpsig: %q is not an http(s) URL", rawURL)
	}
	h := Header{}
	for k, v := range hdr {
		h[k] = v
	}
	nonce, err := NewNonce()
	if err != nil {
		return nil, err
	}
	f := RequestFields{
		Method:        method,
		RequestTarget: u.RequestURI(), // what net/http writes on the request line
		Date:          FormatDate(c.now()),
		Nonce:         nonce,
		ContentSHA256: Digest(body),
		KeyID:         keys.KeyID(),
		Caller:        self,
		Target:        target,
	}
	msg, err := f.Message()
	if err != nil {
		return nil, err
	}
	h.Set(HeaderIdentity, f.Caller)
	h.Set(HeaderTarget, f.Target)
	h.Set(HeaderDate, f.Date)
	h.Set(HeaderNonce, f.Nonce)
	h.Set(HeaderContentSHA256, f.ContentSHA256)
	h.Set(HeaderKeyID, f.KeyID)
	h.Set(HeaderSignature, keys.Sign(msg))

	status, rh, hb, err := c.rt.roundTrip(ctx, method, rawURL, h, body)
	if err != nil {
		return nil, err
	}
	defer hb.Close()
	rb, err := io.ReadAll(io.LimitReader(hb, c.maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("reading response from %s: %w", target, err)
	}
	if int64(len(rb)) > c.maxResponse {
		return nil, fmt.Errorf("%w: %s answered more than %d bytes", ErrResponseTooLarge, target, c.maxResponse)
	}
	resp := &Response{Status: status, Header: rh, Body: rb}
	if !verifyResponse(&keys, resp, nonce, target, self) {
		return nil, forged(target, resp)
	}
	return resp, nil
}

// verifyResponse checks Orderseal-Identity and Orderseal-Signature, each
// present exactly once.
func verifyResponse(k *Keys, resp *Response, nonce, target, self string) bool {
	ids, sigs := resp.Header.Values(HeaderIdentity), resp.Header.Values(HeaderSignature)
	if len(ids) != 1 || ids[0] != target || len(sigs) != 1 {
		return false
	}
	f := ResponseFields{Nonce: nonce, Status: resp.Status, BodySHA256: Digest(resp.Body), Responder: target, Caller: self}
	msg, err := f.Message()
	return err == nil && k.Verify(msg, sigs[0])
}

// forged wraps ErrForgedResponse, naming the status and, marked unverified,
// the problem code the body claims: a wrong-key refusal is signed with a key
// the caller does not hold, and that hint is what the operator needs.
func forged(target string, resp *Response) error {
	hint := ""
	if isProblem(resp.Header) {
		if p, err := rfc9457.Decode(resp.Body); err == nil {
			hint = fmt.Sprintf(", unverified problem code %q", p.Code)
		}
	}
	return fmt.Errorf("%w: %s answered HTTP %d%s", ErrForgedResponse, target, resp.Status, hint)
}

func isProblem(h Header) bool {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	return err == nil && mt == rfc9457.ContentType
}

// problemOf turns a verified non-2xx response into a problem error.
func problemOf(resp *Response) *rfc9457.Problem {
	if isProblem(resp.Header) {
		if p, err := rfc9457.Decode(resp.Body); err == nil {
			p.Status = resp.Status // the HTTP status is authoritative
			return p
		}
	}
	return rfc9457.New(resp.Status, "unexpected-response", "Unexpected response",
		fmt.Sprintf("HTTP %d without a problem document", resp.Status))
}
