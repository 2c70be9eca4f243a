package vault

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"orderseal/internal/problem"
	"orderseal/internal/signedhttp/httpsig"
)

// Cross-origin requests (DESIGN.md §10): a shop's checkout page lists the
// cardholder's address labels and reveals her own address with signed GET
// requests from the browser. The vault answers CORS for the shop origins its
// operator names (-cors-origin) and for nothing else: no wildcard, no
// credentials (a signed request needs no cookie), GET alone, and only the
// signed-request headers.

// CodeCORSRefused is the problem code of a cross-origin request the vault
// does not serve: an origin not listed, or a method or header the
// checkout's signed GET does not need.
const CodeCORSRefused = "cors-refused"

// corsHeaders are the request headers a signed GET carries beyond the
// CORS-safelisted ones (Accept), in lower case as preflights name them.
var corsHeaders = []string{
	strings.ToLower(httpsig.HeaderIdentity), strings.ToLower(httpsig.HeaderTarget), strings.ToLower(httpsig.HeaderDate),
	strings.ToLower(httpsig.HeaderNonce), strings.ToLower(httpsig.HeaderContentSHA256), strings.ToLower(httpsig.HeaderKeyID),
	strings.ToLower(httpsig.HeaderSignature),
}

// corsExposed are the response headers the page's program reads to check
// the signed answer.
var corsExposed = httpsig.HeaderIdentity + ", " + httpsig.HeaderSignature

// CheckOrigin is nil for an origin the vault may list: scheme://host[:port]
// over http or https, with no path, query, user or wildcard.
func CheckOrigin(origin string) error {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Contains(origin, "*") ||
		!strings.EqualFold(origin, u.Scheme+"://"+u.Host) {
		return fmt.Errorf("%.80q is not an origin: give scheme://host[:port], such as https://shop.example", origin)
	}
	return nil
}

// cors answers preflights from the listed origins and marks their GET
// answers readable; any request with an Origin header the vault does not
// serve is refused before it reaches the verifier. A request without an
// Origin (every CLI and daemon) passes untouched.
func cors(origins []string) echo.MiddlewareFunc {
	allowed := map[string]bool{}
	for _, o := range origins {
		allowed[strings.ToLower(o)] = true
	}
	refuse := func(c echo.Context, detail string) error {
		return problem.Write(c, problem.New(http.StatusForbidden, CodeCORSRefused, "Cross-origin request refused", detail))
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			origin := r.Header.Get("Origin")
			if origin == "" {
				return next(c)
			}
			h := c.Response().Header()
			h.Add("Vary", "Origin")
			if !allowed[strings.ToLower(origin)] {
				return refuse(c, "This vault does not answer pages of this origin; its operator lists the shops' origins with -cors-origin.")
			}
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Add("Vary", "Access-Control-Request-Method")
				h.Add("Vary", "Access-Control-Request-Headers")
				if m := r.Header.Get("Access-Control-Request-Method"); m != http.MethodGet {
					return refuse(c, "A page may only list and reveal its cardholder's own entries here: GET alone.")
				}
				for _, name := range strings.Split(r.Header.Get("Access-Control-Request-Headers"), ",") {
					if name = strings.ToLower(strings.TrimSpace(name)); name != "" && !slices.Contains(corsHeaders, name) {
						return refuse(c, "A page may send the signed-request headers alone.")
					}
				}
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Allow-Methods", http.MethodGet)
				h.Set("Access-Control-Allow-Headers", strings.Join(corsHeaders, ", "))
				h.Set("Access-Control-Max-Age", "600")
				return c.NoContent(http.StatusNoContent)
			}
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				return refuse(c, "A page may only list and reveal its cardholder's own entries here: GET alone.")
			}
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Expose-Headers", corsExposed)
			return next(c)
		}
	}
}
