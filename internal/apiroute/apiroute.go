// Package apiroute is the table a daemon keeps of its HTTP routes, for its
// OpenAPI document (internal/apidoc builds it; DESIGN.md §11). It leaves
// the document builder and its library out of the daemons: the binary serves the document generated from the table and
// committed beside it, and a test proves the two, and the router, agree.
package apiroute

import "orderseal/keygen"

// API is one daemon's HTTP API.
type API struct {
	Title, Description string
	Routes             []Route
}

// Route is one method and path of a daemon's API.
type Route struct {
	Method string
	// Path is in OpenAPI form: /v1/orders/{id}.
	Path    string
	Summary string
	// Callers are the roles the route admits, each request signed (signed
	// HTTP, DESIGN.md §5); nil for a public route, answered unsigned.
	Callers []keygen.Role
	// Request is a value of the JSON request body's type; nil: no body.
	Request any
	// Responses are the route's success answers.
	Responses []Response
	// Problems are the statuses it answers with an RFC 9457 problem.
	Problems []int
}

// Response is one success answer.
type Response struct {
	Status int
	// Body is a value of the JSON body's type; nil: no body.
	Body any
	// ContentType is the body's media type; "": application/json.
	ContentType string
}
