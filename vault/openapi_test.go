package vault_test

import (
	"testing"

	"orderseal/internal/apidoc/apidoctest"
	"orderseal/vault"
)

// TestOpenAPI: the committed openapi.json is what the route table builds
// ('make openapi' rewrites it), every route the router answers is in it and
// every route in it is answered, and GET /openapi.json serves it unsigned.
func TestOpenAPI(t *testing.T) {
	e := newVaultEnv(t)
	apidoctest.Run(t, vault.API(), vault.OpenAPI, e.srv.Routes(), e.ts.URL)
}
