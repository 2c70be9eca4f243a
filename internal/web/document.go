package web

import (
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"orderseal/internal/apiroute"
)

// WithDocument serves doc, the daemon's OpenAPI document, at
// apiroute.DocPath to anyone, unsigned (it describes the API and holds
// nothing else), and every other request through h.
func WithDocument(h http.Handler, doc []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != apiroute.DocPath {
			h.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if r.Method == http.MethodGet {
			w.Write(doc)
		}
	})
}

// DaemonRoutes are Routes(e) with what a daemon answers in front of e:
// the OpenAPI document (WithDocument) and the probes (Daemon), sorted.
func DaemonRoutes(e *echo.Echo) []string {
	return slices.Sorted(slices.Values(append(append(Routes(e), http.MethodGet+" "+apiroute.DocPath), apiroute.ProbePaths()...)))
}

// Routes lists what e serves as "METHOD /path", paths in OpenAPI form
// (:id → {id}), sorted; echo's own catch-all routes are left out.
func Routes(e *echo.Echo) []string {
	var out []string
	for _, r := range e.Routes() {
		if r.Method == echo.RouteNotFound || strings.Contains(r.Path, "*") {
			continue
		}
		segs := strings.Split(r.Path, "/")
		for i, s := range segs {
			if strings.HasPrefix(s, ":") {
				segs[i] = "{" + s[1:] + "}"
			}
		}
		out = append(out, r.Method+" "+strings.Join(segs, "/"))
	}
	slices.Sort(out)
	return slices.Compact(out)
}
