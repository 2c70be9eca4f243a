// Package secure sets the security headers of every page the merchant
// serves to a browser (DESIGN.md §10; in the spirit of tailscale's
// safeweb): a strict Content-Security-Policy with no inline script,
// framing refused, no MIME sniffing or referrer, no caching of pages that
// show order data, and HSTS on a request that came over TLS.
package secure

import (
	"net/http"
	"strings"
)

// Policy is a page's Content-Security-Policy.
type Policy struct {
	// WASM allows WebAssembly compilation ('wasm-unsafe-eval'): only the
	// page that instantiates the sealing program needs it.
	WASM bool
	// Connect lists origins besides 'self' the page's scripts may fetch.
	Connect []string
	// NoScript refuses every script ('none'): a server-rendered page.
	NoScript bool
	// Forms lets the page's forms submit to this origin; otherwise
	// form-action is 'none'.
	Forms bool
}

// String renders the policy: nothing from anywhere by default; scripts,
// styles and images only from this origin, never inline or eval'd.
func (p Policy) String() string {
	script := "script-src 'self'"
	if p.WASM {
		script += " 'wasm-unsafe-eval'"
	}
	if p.NoScript {
		script = "script-src 'none'"
	}
	form := "form-action 'none'"
	if p.Forms {
		form = "form-action 'self'"
	}
	connect := "connect-src 'self'"
	for _, o := range p.Connect {
		connect += " " + o
	}
	return strings.Join([]string{"default-src 'none'", script, "style-src 'self'", "img-src 'self'", connect,
		form, "base-uri 'none'", "frame-ancestors 'none'"}, "; ")
}

// HSTSMaxAge is how long a browser keeps to HTTPS once told: two years.
const HSTSMaxAge = "max-age=63072000; includeSubDomains"

// Headers sets the headers of one response: the policy, and no-store
// when noStore (a page or script with order data, or whose program holds
// a key).
func Headers(w http.ResponseWriter, r *http.Request, p Policy, noStore bool) {
	h := w.Header()
	h.Set("Content-Security-Policy", p.String())
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	if noStore {
		h.Set("Cache-Control", "no-store")
	}
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", HSTSMaxAge)
	}
}

// Handler wraps next with Headers for every response.
func Handler(p Policy, noStore bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Headers(w, r, p, noStore)
		next.ServeHTTP(w, r)
	})
}
