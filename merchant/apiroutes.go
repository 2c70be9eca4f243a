package merchant

import (
	_ "embed"
	"net/http"

	carrierapi "orderseal/carrier/api"
	"orderseal/internal/apiroute"
	"orderseal/keygen"
	"orderseal/merchant/api"
	"orderseal/order"
)

// OpenAPI is the daemon's OpenAPI 3.1 document, served at
// apiroute.DocPath.
//
//go:embed openapi.json
var OpenAPI []byte

// API is the merchant's HTTP API, for its OpenAPI document (openapi.json,
// written by 'make openapi'; TestOpenAPI checks it against the router).
func API() apiroute.API {
	buyers := []keygen.Role{keygen.RoleCardholder, keygen.RoleConsultant}
	return apiroute.API{Title: "orderseal merchant", Description: "The merchant node: order form, intake of sealed bundles, " +
		"order status and cancel, assisted (phone) orders, and the carrier's tracking events (DESIGN.md §3, §6).", Routes: []apiroute.Route{
		{Method: http.MethodGet, Path: api.PathOrderForm, Summary: "The order form: catalog, prices, parties, directory entries and section policies",
			Callers: buyers, Responses: []apiroute.Response{{Status: http.StatusOK, Body: &api.OrderForm{}}}, Problems: apiroute.SignedProblems},
		{Method: http.MethodPost, Path: api.PathOrders, Summary: "Submit a sealed bundle; stored durably before the answer",
			Callers: buyers, Request: &order.Bundle{},
			Responses: []apiroute.Response{{Status: http.StatusAccepted, Body: &api.Accepted{}}},
			Problems:  apiroute.With(http.StatusConflict, http.StatusUnprocessableEntity)},
		{Method: http.MethodGet, Path: api.PathOrder + "{id}", Summary: "An order's status and timeline, for its cardholder",
			Callers: buyers, Responses: []apiroute.Response{{Status: http.StatusOK, Body: &api.Status{}}},
			Problems: apiroute.With(http.StatusNotFound)},
		{Method: http.MethodPost, Path: api.PathSessions, Summary: "Assisted login: open a consultant session vouched for by a company",
			Callers: []keygen.Role{keygen.RoleConsultant}, Request: &api.LoginRequest{},
			Responses: []apiroute.Response{{Status: http.StatusCreated, Body: &api.Session{}}},
			Problems:  apiroute.With(http.StatusConflict, http.StatusUnprocessableEntity)},
		{Method: http.MethodGet, Path: api.PathSession + "{id}", Summary: "An assisted session of the calling consultant",
			Callers: []keygen.Role{keygen.RoleConsultant}, Responses: []apiroute.Response{{Status: http.StatusOK, Body: &api.Session{}}},
			Problems: apiroute.With(http.StatusNotFound)},
		{Method: http.MethodPost, Path: api.PathSession + "{id}" + api.LogoutSuffix, Summary: "End an assisted session at once",
			Callers: []keygen.Role{keygen.RoleConsultant}, Responses: []apiroute.Response{{Status: http.StatusOK, Body: &api.Session{}}},
			Problems: apiroute.With(http.StatusNotFound)},
		{Method: http.MethodPost, Path: api.PathAssistedOrders, Summary: "Submit an order keyed in an assisted session, with its proofs",
			Callers: []keygen.Role{keygen.RoleConsultant}, Request: &api.AssistedOrder{},
			Responses: []apiroute.Response{{Status: http.StatusAccepted, Body: &api.Accepted{}}},
			Problems:  apiroute.With(http.StatusConflict, http.StatusUnprocessableEntity)},
		{Method: http.MethodPost, Path: api.PathOrder + "{id}" + api.EventsSuffix, Summary: "A tracking event of the order's carrier",
			Callers: []keygen.Role{keygen.RoleCarrier}, Request: &carrierapi.TrackingEvent{},
			Responses: []apiroute.Response{{Status: http.StatusOK, Body: &eventRecorded{}}},
			Problems:  apiroute.With(http.StatusNotFound, http.StatusUnprocessableEntity)},
		{Method: http.MethodPost, Path: api.PathOrder + "{id}" + api.CancelSuffix, Summary: "Cancel an order before shipment: its hold is voided and its address grant revoked",
			Callers: []keygen.Role{keygen.RoleCardholder}, Responses: []apiroute.Response{{Status: http.StatusOK, Body: &api.Status{}}},
			Problems: apiroute.With(http.StatusNotFound, http.StatusConflict)},
		apiroute.DocRoute(),
	}}
}

// eventRecorded answers a tracking event.
type eventRecorded struct {
	Recorded bool `json:"recorded"`
}
