package vault

import (
	_ "embed"
	"net/http"

	"orderseal/internal/apiroute"
	"orderseal/internal/signedhttp"
	"orderseal/keygen"
	"orderseal/vault/api"
)

// OpenAPI is the daemon's OpenAPI 3.1 document, served at
// apiroute.DocPath.
//
//go:embed openapi.json
var OpenAPI []byte

// API is the vault's HTTP API, for its OpenAPI document (openapi.json,
// written by 'make openapi'; TestOpenAPI checks it against the router).
func API() apiroute.API {
	owner := []keygen.Role{keygen.RoleCardholder, keygen.RoleCarrier}
	cardholder := []keygen.Role{keygen.RoleCardholder}
	merchant := []keygen.Role{keygen.RoleMerchant}
	ok := func(body any) []apiroute.Response { return []apiroute.Response{{Status: http.StatusOK, Body: body}} }
	return apiroute.API{Title: "orderseal vault", Description: "The address vault: personal data in, opaque tokens out; " +
		"grants for the merchant's carrier, reveals under a grant, every access audited (DESIGN.md §6, §7).", Routes: []apiroute.Route{
		{Method: http.MethodPost, Path: api.PathTokens, Summary: "Register a value (an address, a phone) sealed for the vault; answer its token",
			Callers: owner, Request: &api.RegisterRequest{},
			Responses: []apiroute.Response{{Status: http.StatusCreated, Body: &api.RegisterResponse{}}, {Status: http.StatusOK, Body: &api.RegisterResponse{}}},
			Problems:  apiroute.With(http.StatusConflict, http.StatusUnprocessableEntity)},
		{Method: http.MethodGet, Path: api.PathTokens, Summary: "The caller's own tokens",
			Callers: owner, Responses: ok(&api.ListResponse{}), Problems: apiroute.SignedProblems},
		{Method: http.MethodGet, Path: api.PathToken + "{token}", Summary: "Reveal one of the caller's own values, sealed for the caller",
			Callers: owner, Responses: ok(&api.RevealResponse{}), Problems: apiroute.With(http.StatusNotFound)},
		{Method: http.MethodPost, Path: api.PathTokensBatch, Summary: "Register many values in one durable commit, with a result per item",
			Callers: cardholder, Request: &api.BatchRegisterRequest{}, Responses: ok(&api.BatchRegisterResponse{}),
			Problems: apiroute.With(http.StatusUnprocessableEntity)},
		{Method: http.MethodPost, Path: api.PathRevealBatch, Summary: "Reveal many of the caller's own values, with a result per token",
			Callers: cardholder, Request: &api.BatchRevealRequest{}, Responses: ok(&api.BatchRevealResponse{}),
			Problems: apiroute.With(http.StatusUnprocessableEntity)},
		{Method: http.MethodPost, Path: api.PathGrants, Summary: "Present an order's vault section: a grant for its carrier, pending until the issuer approves",
			Callers: merchant, Request: &api.GrantRequest{}, Responses: ok(&api.GrantResponse{}),
			Problems: apiroute.With(http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity)},
		{Method: http.MethodPost, Path: api.PathRevoke, Summary: "Revoke an order's grants (declined, failed or cancelled)",
			Callers: merchant, Request: &api.RevokeRequest{}, Responses: ok(&api.RevokeResponse{}), Problems: apiroute.SignedProblems},
		{Method: http.MethodPost, Path: api.PathReveal, Summary: "Reveal a granted value to its carrier, for display only",
			Callers: []keygen.Role{keygen.RoleCarrier}, Request: &api.RevealGrantRequest{}, Responses: ok(&api.RevealResponse{}),
			Problems: apiroute.With(http.StatusNotFound)},
		signedhttp.DirectoryRoute(keygen.RoleVault),
		apiroute.DocRoute(),
	}}
}
