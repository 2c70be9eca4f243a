package apiroute

import "net/http"

// SignedProblems are what every signed route may answer besides its own
// refusals: a malformed request, a signature that does not verify, a role
// the route does not admit, a body too large, a caller over its budget,
// and a daemon that cannot answer now.
var SignedProblems = []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden,
	http.StatusRequestEntityTooLarge, http.StatusTooManyRequests, http.StatusServiceUnavailable}

// With is SignedProblems and the route's own statuses.
func With(statuses ...int) []int {
	return append(append([]int(nil), SignedProblems...), statuses...)
}

// DocPath is where every daemon serves its OpenAPI document, unsigned.
const DocPath = "/openapi.json"
