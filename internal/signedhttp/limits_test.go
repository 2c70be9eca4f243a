package signedhttp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"orderseal/internal/signedhttp"
	"orderseal/internal/signedhttp/httpsig"
	"orderseal/internal/web"
	"orderseal/keygen"
	"orderseal/tstest/keys"
)

// TestLongIdentityRefusedBeforeDerivation: an Orderseal-Identity whose name
// exceeds keygen.MaxNameLen is refused as unknown-identity from its syntax
// alone — unsigned, no pairwise key derived or cached, nothing of it echoed
// — while a name of exactly the limit is served.
func TestLongIdentityRefusedBeforeDerivation(t *testing.T) {
	kc := keys.Test(t)
	atLimit := "merchant:" + strings.Repeat("a", keygen.MaxNameLen)
	tests := []struct {
		name     string
		identity string
		status   int
	}{
		{"name at the limit", atLimit, http.StatusOK},
		{"name one over the limit", atLimit + "a", http.StatusUnauthorized},
		{"name of 30 KB", "merchant:" + strings.Repeat("b", 30<<10), http.StatusUnauthorized},
		{"role of 30 KB", strings.Repeat("c", 30<<10) + ":shop.example", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cache := kc.Keys(t, keys.Vault)
			srv := server(t, cache)
			// Sign as a party holding a key for atLimit, then claim tc.identity.
			tr := &tamper{request: setHeader(httpsig.HeaderIdentity, tc.identity)}
			c := signedhttp.NewClient(kc.Keys(t, atLimit), &http.Client{Transport: tr})
			_, err := c.Do(context.Background(), keys.Vault, http.MethodPost, srv.URL+"/orders/ord-1", []byte(`{}`))
			ex := tr.lastExchange()
			if ex.status != tc.status {
				t.Fatalf("HTTP %d, want %d: %s", ex.status, tc.status, ex.respBody)
			}
			if tc.status == http.StatusOK {
				if err != nil || cache.Len() != 1 {
					t.Fatalf("at the limit: %v, %d keys cached", err, cache.Len())
				}
				return
			}
			p := decodeProblem(t, ex.respHeader, ex.respBody)
			if p.Code != signedhttp.CodeUnknownIdentity {
				t.Fatalf("code %q", p.Code)
			}
			if ex.respHeader.Get(httpsig.HeaderSignature) != "" || !errors.Is(err, signedhttp.ErrForgedResponse) {
				t.Fatalf("the refusal was signed: K was derived for %d bytes of identity (%v)", len(tc.identity), err)
			}
			if cache.Len() != 0 {
				t.Fatalf("%d pairwise keys cached after the refusal", cache.Len())
			}
			if strings.Contains(string(ex.respBody), strings.Repeat(tc.identity[len(tc.identity)-1:], 64)) {
				t.Fatal("the problem echoes the identity")
			}
		})
	}
}

// TestVerifierUnderServerCeiling: when the server's body ceiling (web.Limit)
// is below the verifier's, a chunked body that crosses it is refused as
// body-too-large (413, signed: K is known by then), not as unreadable.
func TestVerifierUnderServerCeiling(t *testing.T) {
	kc := keys.Test(t)
	app := newApp(kc.Keys(t, keys.Vault), discard(), signedhttp.WithMaxBody(1<<20))
	srv := httptest.NewServer(web.Limit(app, web.Limits{MaxBody: 100}))
	t.Cleanup(srv.Close)
	for _, n := range []int{100, 101, 5000} {
		tr := &tamper{request: chunked}
		c := signedhttp.NewClient(kc.Keys(t, keys.Shop), &http.Client{Transport: tr, Timeout: 10 * time.Second})
		resp, err := c.Do(context.Background(), keys.Vault, http.MethodPost, srv.URL+"/orders/ord-1", []byte(strings.Repeat("x", n)))
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		want := http.StatusOK
		if n > 100 {
			want = http.StatusRequestEntityTooLarge
		}
		if resp.Status != want {
			t.Fatalf("%d bytes: HTTP %d, want %d: %s", n, resp.Status, want, resp.Body)
		}
		if want != http.StatusOK {
			if p := decodeProblem(t, resp.Header, resp.Body); p.Code != signedhttp.CodeBodyTooLarge {
				t.Fatalf("%d bytes: code %q", n, p.Code)
			}
		}
	}
}
