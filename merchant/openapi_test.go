package merchant_test

import (
	"testing"

	"orderseal/internal/apidoc/apidoctest"
	"orderseal/merchant"
)

// TestOpenAPI: the committed openapi.json is what the route table builds
// ('make openapi' rewrites it), every route the router answers is in it and
// every route in it is answered, and GET /openapi.json serves it unsigned.
func TestOpenAPI(t *testing.T) {
	e := newEnv(t)
	apidoctest.Run(t, merchant.API(), merchant.OpenAPI, e.srv.Routes(), e.ts.URL)
}
