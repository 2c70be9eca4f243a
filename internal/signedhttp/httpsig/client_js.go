//go:build js

package httpsig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall/js"
	"time"

	"orderseal/keygen"
)

// In WebAssembly (the browser checkout) requests go out through the
// browser's fetch, so the program links no net/http, TLS or X.509 of its
// own: the browser has them.

// Header is a request's or a response's header, its keys in canonical form.
type Header map[string][]string

// canonicalKey is net/textproto's canonical form of an ASCII header name.
func canonicalKey(k string) string {
	b := []byte(k)
	up := true
	for i, c := range b {
		switch {
		case up && 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		case !up && 'A' <= c && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
		up = c == '-'
	}
	return string(b)
}

// Get is the first value of key, "" if none.
func (h Header) Get(key string) string {
	if v := h[canonicalKey(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Values are the values of key.
func (h Header) Values(key string) []string { return h[canonicalKey(key)] }

// Set replaces the values of key with value.
func (h Header) Set(key, value string) { h[canonicalKey(key)] = []string{value} }

// Add appends value to key's values.
func (h Header) Add(key, value string) {
	k := canonicalKey(key)
	h[k] = append(h[k], value)
}

// HTTPClient is what a Client sends with in the browser: fetch, bounded by
// Timeout (0: 30 s).
type HTTPClient struct{ Timeout time.Duration }

// NewClient signs as keys.Identity() and sends with the browser's fetch,
// which follows no redirect and sends no cookie.
func NewClient(keys keygen.Keyring, hc *HTTPClient, opts ...ClientOption) *Client {
	if keys == nil {
		panic("httpsig: NewClient with nil keys")
	}
	t := fetchTransport{timeout: 30 * time.Second}
	if hc != nil && hc.Timeout > 0 {
		t.timeout = hc.Timeout
	}
	c := &Client{keys: keys, rt: t, now: time.Now, maxResponse: DefaultMaxResponse}
	for _, o := range opts {
		o(c)
	}
	return c
}

type fetchTransport struct{ timeout time.Duration }

var errRedirected = errors.New("httpsig: the server answered with a redirect, which a signed request does not follow")

func (t fetchTransport) roundTrip(ctx context.Context, method, url string, hdr Header, body []byte) (int, Header, io.ReadCloser, error) {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	ac := js.Global().Get("AbortController").New()
	opt := js.Global().Get("Object").New()
	opt.Set("method", method)
	h := js.Global().Get("Headers").New()
	for k, vs := range hdr {
		for _, v := range vs {
			h.Call("append", k, v)
		}
	}
	opt.Set("headers", h)
	if len(body) > 0 {
		a := js.Global().Get("Uint8Array").New(len(body))
		js.CopyBytesToJS(a, body)
		opt.Set("body", a)
	}
	opt.Set("redirect", "manual")
	opt.Set("credentials", "omit")
	opt.Set("cache", "no-store")
	opt.Set("signal", ac.Get("signal"))
	resp, err := await(ctx, ac, js.Global().Call("fetch", url, opt))
	if err != nil {
		return 0, nil, nil, err
	}
	if resp.Get("type").String() == "opaqueredirect" {
		return 0, nil, nil, errRedirected
	}
	rh := Header{}
	each := js.FuncOf(func(_ js.Value, a []js.Value) any {
		rh.Add(a[1].String(), a[0].String())
		return nil
	})
	resp.Get("headers").Call("forEach", each)
	each.Release()
	ab, err := await(ctx, ac, resp.Call("arrayBuffer"))
	if err != nil {
		return 0, nil, nil, err
	}
	u8 := js.Global().Get("Uint8Array").New(ab)
	b := make([]byte, u8.Get("length").Int())
	js.CopyBytesToGo(b, u8)
	return resp.Get("status").Int(), rh, io.NopCloser(bytes.NewReader(b)), nil
}

// await waits for a Promise; ctx ending aborts the fetch, and the
// rejection that follows is waited for before the callbacks are released.
func await(ctx context.Context, ac, p js.Value) (js.Value, error) {
	ok, fail := make(chan js.Value, 1), make(chan js.Value, 1)
	then := js.FuncOf(func(_ js.Value, a []js.Value) any { ok <- a[0]; return nil })
	catch := js.FuncOf(func(_ js.Value, a []js.Value) any { fail <- a[0]; return nil })
	defer then.Release()
	defer catch.Release()
	p.Call("then", then, catch)
	select {
	case v := <-ok:
		return v, nil
	case e := <-fail:
		return js.Value{}, fmt.Errorf("fetch: %s", strings.TrimSpace(e.Call("toString").String()))
	case <-ctx.Done():
		ac.Call("abort")
		select {
		case <-ok:
		case <-fail:
		}
		return js.Value{}, ctx.Err()
	}
}
