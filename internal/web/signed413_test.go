package web_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/signedhttp"
	"orderseal/internal/signedhttp/httpsig"
	"orderseal/internal/web"
	"orderseal/tstest/keys"
)

// TestOversizedSignedBodyGetsSignedRefusal is issue 22 item 7: a signed
// request whose body exceeds the server's ceiling is refused 413
// body-too-large with a response signed for its caller, so the client reads
// the refusal instead of "response signature does not verify". An unsigned
// one is still refused by the ceiling itself.
func TestOversizedSignedBodyGetsSignedRefusal(t *testing.T) {
	if signedCaller := httpsig.HeaderIdentity; signedCaller != "Orderseal-Identity" {
		t.Fatalf("web.Limit looks for Orderseal-Identity, the signed caller is %s", signedCaller)
	}
	e := web.New(nil)
	verify := signedhttp.NewVerifier(keys.Keys(t, keys.Shop), signedhttp.WithMaxBody(64<<10)).Middleware()
	e.POST("/v1/orders", func(c echo.Context) error { return c.NoContent(http.StatusAccepted) }, verify, signedhttp.Allow("cardholder"))
	srv := httptest.NewServer(web.Limit(e, web.Limits{MaxBody: 32 << 10}))
	defer srv.Close()
	c := signedhttp.NewClient(keys.Keys(t, keys.Alice), &http.Client{Timeout: 10 * time.Second})
	for _, n := range []int{1 << 10, 40 << 10, 2 << 20} {
		err := c.DoJSON(context.Background(), keys.Shop, http.MethodPost, srv.URL+"/v1/orders", string(bytes.Repeat([]byte("x"), n)), nil)
		var p *rfc9457.Problem
		switch {
		case n == 1<<10:
			if err != nil {
				t.Fatalf("%d bytes: %v", n, err)
			}
		case errors.Is(err, httpsig.ErrForgedResponse) || !errors.As(err, &p) || p.Status != http.StatusRequestEntityTooLarge || p.Code != web.CodeBodyTooLarge:
			t.Fatalf("%d bytes: %v, want a signed 413 body-too-large", n, err)
		}
	}
	resp, err := http.Post(srv.URL+"/v1/orders", "application/json", bytes.NewReader(make([]byte, 40<<10)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || resp.Header.Get(httpsig.HeaderSignature) != "" {
		t.Fatalf("unsigned oversized request: HTTP %d, signature %q", resp.StatusCode, resp.Header.Get(httpsig.HeaderSignature))
	}
}
