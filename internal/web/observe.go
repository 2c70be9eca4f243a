package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"orderseal/internal/sqlitex"
)

// Every request a daemon serves gets a request id, an access log line and
// its count and latency in the metrics (DESIGN.md §11). What they name is
// the route template ("/v1/orders/:id"), never the raw path: paths carry
// order ids and tokens, and an attacker picks them.

// HeaderRequestID carries a request's id: a sane one the client sent is
// kept, any other replaced; the answer always echoes it.
const HeaderRequestID = "X-Request-Id"

// RouteUnmatched is the route of a request no route of the API matched.
const RouteUnmatched = "unmatched"

// routeKey holds the *string where the router records the matched route.
type routeKey struct{}

// SetRoute records the route template r matched, for the access log and
// the metrics; New's echo does it for every route it serves.
func SetRoute(r *http.Request, route string) {
	if p, ok := r.Context().Value(routeKey{}).(*string); ok && route != "" {
		*p = route
	}
}

// requestIDKey holds a request's id in its context.
type requestIDKey struct{}

// RequestID returns the id Observe gave r's request ("" outside Observe).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// saneRequestID accepts the id a client or proxy sent: 8 to 64 letters,
// digits, '-', '_' or '.', so it can neither forge a log line nor bloat one.
func saneRequestID(s string) bool {
	if len(s) < 8 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Metrics is one daemon's Prometheus registry: the Go runtime and process
// collectors, the request count and latency by method, route and code, and
// what the daemon adds (its stores' gauges, its counters).
type Metrics struct {
	Registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics makes a registry holding the request metrics and cs.
func NewMetrics(cs ...prometheus.Collector) *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orderseal_http_requests_total",
			Help: "HTTP requests answered, by method, route template and status code."}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "orderseal_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by method, route template and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"method", "route", "code"}),
	}
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.latency, sqlitex.CommitSizes)
	m.Registry.MustRegister(cs...)
	return m
}

// Handler serves the registry in the Prometheus text format. A gauge whose
// store cannot answer is left out of the scrape, not the whole scrape.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// methodLabel keeps the method label to the methods HTTP defines: the
// client picks the method, and each new value would be a new series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// Observe wraps h: each request gets its id (HeaderRequestID), is counted
// and timed in m (nil: not at all) and logged on one access log line at
// Info (the probes at Debug): method, route, status, duration, bytes and
// request id, nothing of the path's values, the query or the body.
func Observe(h http.Handler, logger *slog.Logger, m *Metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(HeaderRequestID)
		if !saneRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set(HeaderRequestID, id)
		route := RouteUnmatched
		ctx := context.WithValue(context.WithValue(r.Context(), routeKey{}, &route), requestIDKey{}, id)
		rw := &recorder{ResponseWriter: w}
		h.ServeHTTP(rw, r.WithContext(ctx))
		if rw.status == 0 {
			rw.status = http.StatusOK
		}
		d := time.Since(start)
		method, code := methodLabel(r.Method), strconv.Itoa(rw.status)
		if m != nil {
			m.requests.WithLabelValues(method, route, code).Inc()
			m.latency.WithLabelValues(method, route, code).Observe(d.Seconds())
		}
		level := slog.LevelInfo
		if route == PathHealthz || route == PathReadyz {
			level = slog.LevelDebug
		}
		logger.LogAttrs(ctx, level, "request", slog.String("method", method), slog.String("route", route),
			slog.Int("status", rw.status), slog.Float64("duration_ms", float64(d.Microseconds())/1000),
			slog.Int64("bytes", rw.bytes), slog.String("request_id", id))
	})
}

// recorder notes the status and the body bytes of an answer.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer
// (flushing, deadlines).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush passes a flush on, for writers that look for http.Flusher.
func (r *recorder) Flush() { http.NewResponseController(r.ResponseWriter).Flush() }
