package vault_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderseal/internal/cli"
	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/signedhttp/httpsig"
	"orderseal/suite"
	"orderseal/tstest/keys"
	"orderseal/vault"
	"orderseal/vault/api"
)

// withOrigin sends every request with an Origin header, as a browser page
// of that origin does.
type withOrigin struct {
	origin string
	next   http.RoundTripper
}

func (w withOrigin) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Origin", w.origin)
	return w.next.RoundTrip(r)
}

// TestCORS: the checkout page of a listed shop may list and reveal its
// cardholder's own entries across origins (a preflight for the signed GET,
// the answer readable with its signature); a page of any other origin, a
// method or header the signed GET does not need, is refused with a
// problem and no CORS grant, and nothing is listed.
func TestCORS(t *testing.T) {
	t.Parallel()
	const shop, other = "https://shop.example", "https://evil.example"
	e := newVaultEnv(t)
	register(t, e.client(t, keys.Alice), api.TypeAddress, "home", false, addressJSON(canary+" 1"))
	ts := httptest.NewServer(vault.NewServer(keys.Keys(t, keys.Vault), e.st, vault.Options{CORSOrigins: []string{shop}}).Handler())
	defer ts.Close()

	preflight := func(origin, method, headers string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodOptions, ts.URL+api.PathTokens, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		if headers != "" {
			req.Header.Set("Access-Control-Request-Headers", headers)
		}
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	signed := "orderseal-content-sha256,orderseal-date,orderseal-identity,orderseal-key-id,orderseal-nonce,orderseal-signature,orderseal-target"

	t.Run("a listed shop's preflight for the signed GET", func(t *testing.T) {
		resp := preflight(shop, http.MethodGet, signed)
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != shop || h.Get("Access-Control-Allow-Methods") != "GET" {
			t.Fatalf("HTTP %d, allow origin %q methods %q", resp.StatusCode, h.Get("Access-Control-Allow-Origin"), h.Get("Access-Control-Allow-Methods"))
		}
		for _, name := range strings.Split(signed, ",") {
			if !strings.Contains(h.Get("Access-Control-Allow-Headers"), name) {
				t.Errorf("allowed headers %q lack %s", h.Get("Access-Control-Allow-Headers"), name)
			}
		}
		if h.Get("Access-Control-Allow-Credentials") != "" || !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
			t.Errorf("credentials %q, vary %q", h.Get("Access-Control-Allow-Credentials"), h.Values("Vary"))
		}
	})

	for _, tc := range []struct{ name, origin, method, headers string }{
		{"an unlisted origin", other, http.MethodGet, signed},
		{"the shop's origin over another scheme", "http://shop.example", http.MethodGet, signed},
		{"an opaque origin", "null", http.MethodGet, signed},
		{"a POST", shop, http.MethodPost, signed},
		{"a DELETE", shop, http.MethodDelete, ""},
		{"a header the signed GET does not send", shop, http.MethodGet, signed + ",authorization"},
	} {
		t.Run("a preflight of "+tc.name+" is refused", func(t *testing.T) {
			resp := preflight(tc.origin, tc.method, tc.headers)
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Type") != rfc9457.ContentType {
				t.Fatalf("HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			for _, h := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers"} {
				if v := resp.Header.Get(h); v != "" {
					t.Errorf("%s: %q", h, v)
				}
			}
		})
	}

	client := func(origin string) *api.Client {
		hc := &http.Client{Timeout: 30 * time.Second, Transport: withOrigin{origin, ts.Client().Transport}}
		c, err := api.NewClient(suite.NewKeys(keys.Party(t, keys.Alice), 8), ts.URL, keys.Vault, hc)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("the shop's page lists her entries, its answer signed", func(t *testing.T) {
		entries, err := client(shop).List(context.Background())
		if err != nil || len(entries) != 1 || entries[0].Label != "home" {
			t.Fatalf("entries %+v: %v", entries, err)
		}
	})
	t.Run("another page's signed list is refused", func(t *testing.T) {
		// Refused before the signature is checked, so unsigned: the
		// client names the code it could not verify.
		entries, err := client(other).List(context.Background())
		if !errors.Is(err, httpsig.ErrForgedResponse) || !strings.Contains(err.Error(), vault.CodeCORSRefused) || entries != nil {
			t.Fatalf("entries %+v: %v", entries, err)
		}
	})
	t.Run("the answer names the shop and exposes the signature", func(t *testing.T) {
		rt := &recorder{}
		hc := &http.Client{Transport: &recordingTransport{caller: "page", rec: rt, next: withOrigin{shop, ts.Client().Transport}}}
		c, err := api.NewClient(suite.NewKeys(keys.Party(t, keys.Alice), 8), ts.URL, keys.Vault, hc)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.List(context.Background()); err != nil {
			t.Fatal(err)
		}
		h := rt.last(t, "page").header
		if h.Get("Access-Control-Allow-Origin") != shop || h.Get("Access-Control-Expose-Headers") != "Orderseal-Identity, Orderseal-Signature" {
			t.Fatalf("allow origin %q, expose %q", h.Get("Access-Control-Allow-Origin"), h.Get("Access-Control-Expose-Headers"))
		}
	})
	t.Run("a request without an Origin passes as before", func(t *testing.T) {
		c, err := api.NewClient(suite.NewKeys(keys.Party(t, keys.Alice), 8), ts.URL, keys.Vault, ts.Client())
		if err != nil {
			t.Fatal(err)
		}
		if entries, err := c.List(context.Background()); err != nil || len(entries) != 1 {
			t.Fatalf("entries %+v: %v", entries, err)
		}
	})
}

func TestCheckOrigin(t *testing.T) {
	for _, ok := range []string{"https://shop.example", "http://127.0.0.1:8080", "https://shop.example:8443"} {
		if err := vault.CheckOrigin(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "*", "https://*.example", "https://shop.example/", "https://shop.example/checkout",
		"ftp://shop.example", "https://user@shop.example", "shop.example", "https://shop.example?x=1", "null"} {
		if err := vault.CheckOrigin(bad); err == nil {
			t.Errorf("%q accepted as an origin", bad)
		}
	}
}

// TestServeRefusesBadCORSOrigin: 'vault serve -cors-origin' takes origins
// alone; a wildcard or a URL with a path is a usage error, and nothing
// starts.
func TestServeRefusesBadCORSOrigin(t *testing.T) {
	for _, bad := range []string{"*", "https://shop.example/checkout/"} {
		var errb bytes.Buffer
		dir := t.TempDir()
		err := vault.Command(context.Background(), "merchant", []string{"serve", "-key", filepath.Join(dir, "vault.key"), "-index", filepath.Join(dir, "index.db"),
			"-data", filepath.Join(dir, "data.db"), "-data-key", filepath.Join(dir, "data.key"), "-listen", "127.0.0.1:0", "-cors-origin", bad},
			cli.Stdio{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &errb})
		var ce *cli.Error
		if !errors.As(err, &ce) || ce.Code != cli.ExitUsage || !strings.Contains(errb.String(), "error: -cors-origin") || !strings.Contains(errb.String(), "hint: use -cors-origin https://shop.example") {
			t.Errorf("-cors-origin %q: %v (%s)", bad, err, errb.String())
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("-cors-origin %q: the vault created %d files", bad, len(entries))
		}
	}
}
