package secure

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHeaders(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for _, tc := range []struct {
		name     string
		policy   Policy
		noStore  bool
		tls      bool
		want     map[string]string // header → substring it must hold
		wantNone []string          // headers that must be absent
		cspNot   []string          // never in the CSP
	}{
		{name: "page with wasm, over TLS", policy: Policy{WASM: true}, noStore: true, tls: true,
			want: map[string]string{"Content-Security-Policy": "script-src 'self' 'wasm-unsafe-eval'", "Cache-Control": "no-store",
				"Strict-Transport-Security": "max-age=63072000", "X-Frame-Options": "DENY"},
			cspNot: []string{"unsafe-inline", "'unsafe-eval'", "*"}},
		{name: "static file, plain HTTP", policy: Policy{},
			want:     map[string]string{"Content-Security-Policy": "frame-ancestors 'none'", "X-Content-Type-Options": "nosniff"},
			wantNone: []string{"Strict-Transport-Security", "Cache-Control"},
			cspNot:   []string{"wasm-unsafe-eval", "unsafe-inline"}},
		{name: "server-rendered page with forms", policy: Policy{NoScript: true, Forms: true}, noStore: true,
			want:   map[string]string{"Content-Security-Policy": "script-src 'none'", "Cache-Control": "no-store"},
			cspNot: []string{"script-src 'self'", "form-action 'none'", "unsafe-inline", "wasm-unsafe-eval"}},
		{name: "another origin to connect to", policy: Policy{Connect: []string{"https://vault.example"}},
			want: map[string]string{"Content-Security-Policy": "connect-src 'self' https://vault.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/checkout/", nil)
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			w := httptest.NewRecorder()
			Handler(tc.policy, tc.noStore, ok).ServeHTTP(w, r)
			for h, sub := range tc.want {
				if got := w.Header().Get(h); !strings.Contains(got, sub) {
					t.Errorf("%s = %q, want it to hold %q", h, got, sub)
				}
			}
			for _, h := range tc.wantNone {
				if got := w.Header().Get(h); got != "" {
					t.Errorf("%s = %q, want none", h, got)
				}
			}
			csp := w.Header().Get("Content-Security-Policy")
			if !strings.HasPrefix(csp, "default-src 'none'") {
				t.Errorf("CSP %q does not start from default-src 'none'", csp)
			}
			for _, bad := range tc.cspNot {
				if strings.Contains(csp, bad) {
					t.Errorf("CSP %q holds %q", csp, bad)
				}
			}
		})
	}
}
