package carrier

import (
	_ "embed"
	"net/http"

	"orderseal/carrier/api"
	"orderseal/internal/apiroute"
	"orderseal/internal/signedhttp"
	"orderseal/keygen"
)

// OpenAPI is the daemon's OpenAPI 3.1 document, served at
// apiroute.DocPath.
//
//go:embed openapi.json
var OpenAPI []byte

// API is the carrier's HTTP API, for its OpenAPI document (openapi.json,
// written by 'make openapi'; TestOpenAPI checks it against the router).
func API() apiroute.API {
	merchant := []keygen.Role{keygen.RoleMerchant}
	return apiroute.API{Title: "orderseal carrier", Description: "The carrier: books a parcel from the carrier section of a " +
		"relayed bundle and the merchant's parcel declaration (DESIGN.md §3, §6).", Routes: []apiroute.Route{
		{Method: http.MethodPut, Path: api.PathShipments + "{order_id}", Summary: "Book a shipment: the bundle's header and carrier section, the invoice, the parcel",
			Callers: merchant, Request: &api.BookingRequest{},
			Responses: []apiroute.Response{{Status: http.StatusCreated, Body: &api.Shipment{}}, {Status: http.StatusOK, Body: &api.Shipment{}}},
			Problems:  apiroute.With(http.StatusConflict, http.StatusUnprocessableEntity)},
		{Method: http.MethodPost, Path: api.PathShipments + "{order_id}" + api.CancelSuffix,
			Summary: "Cancel a booking whose parcel has not left (idempotent; parcel-left once it has, unknown-shipment for no booking)",
			Callers: merchant, Responses: []apiroute.Response{{Status: http.StatusOK, Body: &api.Shipment{}}},
			Problems: apiroute.With(http.StatusNotFound, http.StatusConflict)},
		signedhttp.DirectoryRoute(keygen.RoleCarrier),
		apiroute.DocRoute(),
	}}
}
