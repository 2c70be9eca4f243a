package issuer

import (
	_ "embed"
	"net/http"

	"orderseal/internal/apiroute"
	"orderseal/internal/signedhttp"
	"orderseal/issuer/api"
	"orderseal/keygen"
)

// OpenAPI is the daemon's OpenAPI 3.1 document, served at
// apiroute.DocPath.
//
//go:embed openapi.json
var OpenAPI []byte

// API is the issuer's HTTP API, for its OpenAPI document (openapi.json,
// written by 'make openapi'; TestOpenAPI checks it against the router).
func API() apiroute.API {
	merchant := []keygen.Role{keygen.RoleMerchant}
	return apiroute.API{Title: "orderseal issuer", Description: "The card issuer: authorizes the issuer section of a relayed " +
		"bundle against the card and its limit, then captures, refunds, voids or releases its hold, each step idempotent by the merchant's key " +
		"(DESIGN.md §3, §5, §6.8).", Routes: []apiroute.Route{
		{Method: http.MethodPut, Path: api.PathAuthorizations + "{order_id}", Summary: "Authorize an order: the bundle's header and issuer section, and the amount asked",
			Callers: merchant, Request: &api.AuthorizeRequest{},
			Responses: []apiroute.Response{{Status: http.StatusCreated, Body: &api.Authorization{}}, {Status: http.StatusOK, Body: &api.Authorization{}}},
			Problems:  apiroute.With(http.StatusConflict, http.StatusUnprocessableEntity)},
		{Method: http.MethodPost, Path: api.PathAuthorizations + "{order_id}" + api.PathVoidSuffix, Summary: "Void an authorization: release the hold",
			Callers: merchant, Responses: []apiroute.Response{{Status: http.StatusOK, Body: &api.Authorization{}}},
			Problems: apiroute.With(http.StatusNotFound, http.StatusConflict)},
		{Method: http.MethodGet, Path: api.PathAuthorizations + "{order_id}", Summary: "The authorization as the issuer records it: state, captured and refunded totals, hold expiry",
			Callers: merchant, Responses: []apiroute.Response{{Status: http.StatusOK, Body: &api.Authorization{}}},
			Problems: apiroute.With(http.StatusNotFound)},
		{Method: http.MethodPost, Path: api.PathAuthorizations + "{order_id}" + api.PathCapturesSuffix, Summary: "Capture part or all of the hold (idempotent by key; final releases the rest)",
			Callers: merchant, Request: &api.OpRequest{},
			Responses: []apiroute.Response{{Status: http.StatusCreated, Body: &api.Authorization{}}, {Status: http.StatusOK, Body: &api.Authorization{}}},
			Problems:  apiroute.With(http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity)},
		{Method: http.MethodPost, Path: api.PathAuthorizations + "{order_id}" + api.PathRefundsSuffix, Summary: "Refund part or all of what was captured (idempotent by key)",
			Callers: merchant, Request: &api.OpRequest{},
			Responses: []apiroute.Response{{Status: http.StatusCreated, Body: &api.Authorization{}}, {Status: http.StatusOK, Body: &api.Authorization{}}},
			Problems:  apiroute.With(http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity)},
		{Method: http.MethodPost, Path: api.PathAuthorizations + "{order_id}" + api.PathReleaseSuffix, Summary: "Release what the hold still holds: the order completed (idempotent by key)",
			Callers: merchant, Request: &api.ReleaseRequest{},
			Responses: []apiroute.Response{{Status: http.StatusCreated, Body: &api.Authorization{}}, {Status: http.StatusOK, Body: &api.Authorization{}}},
			Problems:  apiroute.With(http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity)},
		signedhttp.DirectoryRoute(keygen.RoleIssuer),
		apiroute.DocRoute(),
	}}
}
