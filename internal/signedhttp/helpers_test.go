package signedhttp_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"

	"orderseal/internal/problem"
	"orderseal/internal/signedhttp"
	"orderseal/keygen"
)

// echoReply is what the test handler answers.
type echoReply struct {
	Caller    string `json:"caller"`
	CtxCaller string `json:"ctx_caller"`
	ID        string `json:"id"`
	Query     string `json:"query"`
	Body      string `json:"body"`
}

// newApp builds the vault's echo app: the verifier on every route, roles per route.
func newApp(cache *keygen.Cache, logger *slog.Logger, opts ...signedhttp.Option) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = problem.ErrorHandler(logger)
	v := signedhttp.NewVerifier(cache, opts...)
	e.Use(v.Middleware())
	orders := signedhttp.Allow("merchant", "cardholder")
	e.POST("/orders/:id", func(c echo.Context) error {
		body, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return err
		}
		ctxCaller, _ := signedhttp.CallerFrom(c.Request().Context())
		return c.JSON(http.StatusOK, echoReply{
			Caller: signedhttp.Caller(c), CtxCaller: ctxCaller, ID: c.Param("id"),
			Query: c.QueryString(), Body: string(body),
		})
	}, orders)
	e.DELETE("/orders/:id", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, orders)
	e.GET("/orders/:id/fail", func(c echo.Context) error {
		return problem.New(http.StatusConflict, "order-conflict", "Order conflict", "The order is already settled.").
			WithInternal(errors.New("row 17 locked"))
	}, orders)
	e.GET("/boom", func(c echo.Context) error {
		return errors.New("db password hunter2 rejected")
	})
	e.GET("/panic", func(c echo.Context) error {
		var nonce []byte
		_ = nonce[23] // a handler bug: an index out of range, as a short nonce would cause
		return nil
	})
	return e
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// server starts the app on a listener httptest opens.
func server(t testing.TB, cache *keygen.Cache, opts ...signedhttp.Option) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(newApp(cache, discard(), opts...))
	t.Cleanup(srv.Close)
	return srv
}

// exchange is one request and response as they crossed the wire.
type exchange struct {
	reqHeader  http.Header
	reqBody    []byte
	method     string
	url        string
	status     int
	respHeader http.Header
	respBody   []byte
}

// tamper sits between Client and server: it records each exchange and may
// alter the request after signing or the response after the server signed it.
type tamper struct {
	base     http.RoundTripper
	request  func(*http.Request)
	response func(*http.Response, []byte) []byte

	mu   sync.Mutex
	last exchange
}

func (tr *tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r.Body.Close()
		body = b
	}
	r = r.Clone(r.Context())
	setBody(r, body)
	if tr.request != nil {
		tr.request(r)
	}
	sent, _ := io.ReadAll(r.Body)
	setBody(r, sent)
	base := tr.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	rb, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	tr.mu.Lock()
	tr.last = exchange{reqHeader: r.Header.Clone(), reqBody: sent, method: r.Method, url: r.URL.String(),
		status: resp.StatusCode, respHeader: resp.Header.Clone(), respBody: rb}
	tr.mu.Unlock()
	if tr.response != nil {
		rb = tr.response(resp, rb)
	}
	resp.Body = io.NopCloser(bytes.NewReader(rb))
	resp.ContentLength = int64(len(rb))
	return resp, nil
}

func (tr *tamper) lastExchange() exchange {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.last
}

// setBody replaces a request body, keeping the length unless it is chunked.
func setBody(r *http.Request, b []byte) {
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	if r.ContentLength >= 0 {
		r.ContentLength = int64(len(b))
	}
	if len(b) == 0 && r.ContentLength == 0 {
		r.Body = http.NoBody
	}
}

// decodeProblem reads a problem response, checking its headers.
func decodeProblem(t testing.TB, h http.Header, body []byte) problem.Problem {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("Content-Type %q, body %q", ct, body)
	}
	if cc := h.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q", cc)
	}
	var p problem.Problem
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem body %q: %v", body, err)
	}
	return p
}
