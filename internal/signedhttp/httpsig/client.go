package httpsig

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
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

// Client sends requests signed with K(self, target) and accepts only
// responses the target signed back over the request nonce. Safe for
// concurrent use.
type Client struct {
	keys        keygen.Keyring
	http        *http.Client
	now         func() time.Time
	maxResponse int64
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithClock replaces the clock that dates requests (tests).
func WithClock(now func() time.Time) ClientOption { return func(c *Client) { c.now = now } }

// WithMaxResponse bounds response bodies (default DefaultMaxResponse).
func WithMaxResponse(n int64) ClientOption { return func(c *Client) { c.maxResponse = n } }

// NewClient signs as keys.Identity(). hc supplies the transport and timeout
// (nil: a client with a 30 s timeout); the Client works on a copy that does
// not follow redirects, since a redirect would carry the signed headers to a
// URL they were not signed for.
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
	h.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &Client{keys: keys, http: &h, now: time.Now, maxResponse: DefaultMaxResponse}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Response is a verified response.
type Response struct {
	Status int
	Header http.Header
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
	hdr := http.Header{"Accept": {"application/json, " + rfc9457.ContentType}}
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
func (c *Client) do(ctx context.Context, target, method, url string, body []byte, hdr http.Header) (*Response, error) {
	resp, err := c.send(ctx, target, method, url, body, hdr)
	if err == nil && resp.Status == http.StatusUnauthorized && isProblem(resp.Header) {
		if p, perr := rfc9457.Decode(resp.Body); perr == nil && p.Code == CodeReplayedNonce {
			return c.send(ctx, target, method, url, body, hdr)
		}
	}
	return resp, err
}

func (c *Client) send(ctx context.Context, target, method, url string, body []byte, hdr http.Header) (*Response, error) {
	self := c.keys.Identity()
	if err := keygen.ValidateIdentity(target); err != nil {
		return nil, err
	}
	pw, err := c.keys.Pairwise(target)
	if err != nil {
		return nil, err
	}
	keys := DeriveKeys(&pw)
	defer keys.Destroy()

	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	nonce, err := NewNonce()
	if err != nil {
		return nil, err
	}
	f := RequestFields{
		Method:        req.Method,
		RequestTarget: req.URL.RequestURI(), // what net/http writes on the request line
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
	req.Header.Set(HeaderIdentity, f.Caller)
	req.Header.Set(HeaderTarget, f.Target)
	req.Header.Set(HeaderDate, f.Date)
	req.Header.Set(HeaderNonce, f.Nonce)
	req.Header.Set(HeaderContentSHA256, f.ContentSHA256)
	req.Header.Set(HeaderKeyID, f.KeyID)
	req.Header.Set(HeaderSignature, keys.Sign(msg))

	hr, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer hr.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(hr.Body, c.maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("reading response from %s: %w", target, err)
	}
	if int64(len(rb)) > c.maxResponse {
		return nil, fmt.Errorf("%w: %s answered more than %d bytes", ErrResponseTooLarge, target, c.maxResponse)
	}
	resp := &Response{Status: hr.StatusCode, Header: hr.Header, Body: rb}
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

func isProblem(h http.Header) bool {
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
