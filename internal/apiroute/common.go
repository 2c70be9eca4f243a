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

// DocRoute is DocPath, for every daemon's route table.
func DocRoute() Route {
	return Route{Method: http.MethodGet, Path: DocPath, Summary: "This document",
		Responses: []Response{{Status: http.StatusOK, Body: &map[string]any{}}}}
}

// The probes every daemon answers, unsigned, before any route of its own
// (internal/web's Health, through its Daemon).
const (
	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
)

// Liveness is the answer of PathHealthz: the process serves.
type Liveness struct {
	Alive bool `json:"alive"`
}

// Readiness is the answer of PathReadyz: 200 when every check passes, 503
// naming the checks that fail (a store, a peer, draining), nothing more.
type Readiness struct {
	Ready   bool     `json:"ready"`
	Failing []string `json:"failing,omitempty"`
}

// ProbeRoutes are the probes, for every daemon's OpenAPI document. A
// damaged store turns /readyz into a 503 problem (store-damaged).
func ProbeRoutes() []Route {
	return []Route{
		{Method: http.MethodGet, Path: PathHealthz, Summary: "Liveness: the process answers (for a supervisor; reveals nothing)",
			Responses: []Response{{Status: http.StatusOK, Body: &Liveness{}}}},
		{Method: http.MethodGet, Path: PathReadyz, Summary: "Readiness: the stores answer, the peers are reachable and the daemon is not draining (for a load balancer)",
			Responses: []Response{{Status: http.StatusOK, Body: &Readiness{}}, {Status: http.StatusServiceUnavailable, Body: &Readiness{}}},
			Problems:  []int{http.StatusServiceUnavailable}},
	}
}

// ProbePaths are ProbeRoutes as "METHOD /path", for a daemon's Routes.
func ProbePaths() []string {
	return []string{http.MethodGet + " " + PathHealthz, http.MethodGet + " " + PathReadyz}
}

// All is a's routes and the probes every daemon serves beside them.
func (a API) All() []Route { return append(append([]Route(nil), a.Routes...), ProbeRoutes()...) }
