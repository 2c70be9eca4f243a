package e2e

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	legacyrouter "github.com/getkin/kin-openapi/routers/legacy"

	"orderseal/carrier"
	"orderseal/internal/apiroute"
	"orderseal/issuer"
	"orderseal/merchant"
	"orderseal/vault"
)

// checkWire holds every exchange the cluster's proxies recorded against the
// receiving daemon's committed OpenAPI document: the route is in it, a
// request the daemon accepted matches its request schema, and every answer,
// refusals included, has a documented status and matches its schema.
func (c *cluster) checkWire(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	routes := map[string]routers.Router{}
	for name, raw := range map[string][]byte{"merchant": merchant.OpenAPI, "issuer": issuer.OpenAPI, "carrier": carrier.OpenAPI, "vault": vault.OpenAPI} {
		doc, err := openapi3.NewLoader().LoadFromData(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := doc.Validate(ctx); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if routes[name], err = legacyrouter.NewRouter(doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true, MultiError: true}
	checked := map[string]int{}
	for _, ex := range c.wire.all() {
		name := strings.TrimPrefix(ex.caller, "→")
		router := routes[name]
		if router == nil {
			continue
		}
		req := httptest.NewRequest(ex.method, "http://orderseal.test"+ex.path, bytes.NewReader(ex.req))
		if len(ex.req) > 0 {
			req.Header.Set("Content-Type", "application/json")
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			if ex.status != http.StatusNotFound && ex.status != http.StatusMethodNotAllowed {
				t.Errorf("%s %s %s answered %d: not in the %s document (%v)", name, ex.method, ex.path, ex.status, name, err)
			}
			continue
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
		if ex.status < 300 {
			if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
				t.Errorf("%s %s %s: the request does not match the document: %v\n%.400s", name, ex.method, ex.path, err, ex.req)
			}
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: ex.status, Header: ex.header, Options: opts}
		out.SetBodyBytes(ex.resp)
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("%s %s %s → %d: the answer does not match the document: %v\n%.400s", name, ex.method, ex.path, ex.status, err, ex.resp)
		}
		checked[name]++
	}
	// The probes are answered by each daemon itself, not through a proxy:
	// ask each one directly, and hold the answers against its document.
	for _, name := range []string{"merchant", "issuer", "carrier", "vault"} {
		for _, path := range []string{apiroute.PathHealthz, apiroute.PathReadyz} {
			resp, err := http.Get(c.daemons[name].url + path)
			if err != nil {
				t.Fatalf("%s %s: %v", name, path, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "http://orderseal.test"+path, nil)
			route, params, err := routes[name].FindRoute(req)
			if err != nil {
				t.Errorf("%s GET %s: not in the %s document (%v)", name, path, name, err)
				continue
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: opts}
			out.SetBodyBytes(body)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s GET %s: %d %s, want 200 on a serving cluster", name, path, resp.StatusCode, body)
			}
			if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
				t.Errorf("%s GET %s → %d: the answer does not match the document: %v\n%s", name, path, resp.StatusCode, err, body)
			}
			checked[name]++
		}
	}
	for _, name := range []string{"merchant", "issuer", "carrier", "vault"} {
		if checked[name] == 0 {
			t.Errorf("no exchange with the %s was checked", name)
		}
	}
	t.Logf("exchanges checked against the OpenAPI documents: %v", checked)
}
