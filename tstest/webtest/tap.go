package webtest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"orderseal/internal/signedhttp/httpsig"
)

// Captured is a request as it crossed the wire.
type Captured struct {
	Method, Target string // Target: path and query
	Header         http.Header
	Body           []byte
}

// Nonce is the captured request's Orderseal-Nonce.
func (c Captured) Nonce() string { return c.Header.Get(httpsig.HeaderNonce) }

// Tap is an http.RoundTripper that sends each request on through Next
// (nil: http.DefaultTransport) and keeps a copy of it: an attacker on the
// wire, for replay tests.
type Tap struct {
	Next http.RoundTripper

	mu  sync.Mutex
	got []Captured
}

// RoundTrip implements http.RoundTripper.
func (tp *Tap) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	tp.mu.Lock()
	tp.got = append(tp.got, Captured{r.Method, r.URL.RequestURI(), r.Header.Clone(), body})
	tp.mu.Unlock()
	next := tp.Next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(r)
}

// Last is the last request the tap saw; the test fails if there is none.
func (tp *Tap) Last(t testing.TB) Captured {
	t.Helper()
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if len(tp.got) == 0 {
		t.Fatal("webtest: the tap saw no request")
	}
	return tp.got[len(tp.got)-1]
}

// Replay sends c again, byte for byte, to base (scheme, host and port:
// the signature covers none of them, so a restarted server on another
// port is addressed the same way) through hc (nil: a client with a 30 s
// timeout). It returns the status and the problem code of the answer.
func Replay(t testing.TB, hc *http.Client, base string, c Captured) (status int, code string) {
	t.Helper()
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	req, err := http.NewRequest(c.Method, base+c.Target, bytes.NewReader(c.Body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = c.Header.Clone()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p struct {
		Code string `json:"code"`
	}
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &p)
	return resp.StatusCode, p.Code
}
