package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"orderseal/internal/cli"
	"orderseal/internal/web"
)

// TestProbes: /healthz answers 200 whatever the readiness; /readyz answers
// 200 only while every check passes and the daemon does not drain, and
// names only the kinds of check failing, never what a check's error says.
func TestProbes(t *testing.T) {
	secret := errors.New("peer issuer:bank.example at http://10.0.0.7:8444 /srv/orderseal/issuer.db")
	pass := func(context.Context) error { return nil }
	fail := func(context.Context) error { return secret }
	tests := []struct {
		name      string
		checks    []web.Check
		drain     bool
		method    string
		path      string
		code      int
		body      string
		servedAPI bool
	}{
		{"alive", nil, false, "GET", "/healthz", 200, `{"alive":true}`, false},
		{"alive though a peer fails", []web.Check{{Name: "peers", Run: fail}}, false, "GET", "/healthz", 200, `{"alive":true}`, false},
		{"alive while draining", nil, true, "GET", "/healthz", 200, `{"alive":true}`, false},
		{"ready without checks", nil, false, "GET", "/readyz", 200, `{"ready":true}`, false},
		{"ready when every check passes", []web.Check{{Name: "store", Run: pass}, {Name: "peers", Run: pass}}, false, "GET", "/readyz", 200, `{"ready":true}`, false},
		{"a store failing", []web.Check{{Name: "store", Run: fail}, {Name: "peers", Run: pass}}, false, "GET", "/readyz", 503, `{"ready":false,"failing":["store"]}`, false},
		{"store and peers failing", []web.Check{{Name: "store", Run: fail}, {Name: "peers", Run: fail}}, false, "GET", "/readyz", 503, `{"ready":false,"failing":["store","peers"]}`, false},
		{"draining", []web.Check{{Name: "store", Run: pass}}, true, "GET", "/readyz", 503, `{"ready":false,"failing":["draining"]}`, false},
		{"HEAD has no body", nil, false, "HEAD", "/readyz", 200, "", false},
		{"POST /healthz is the API's", nil, false, "POST", "/healthz", 200, "api", true},
		{"other paths are the API's", nil, false, "GET", "/v1/x", 200, "api", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs lockedBuffer
			h := &web.Health{Checks: tt.checks, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
			if tt.drain {
				h.Drain()
			}
			rec := httptest.NewRecorder()
			h.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "api") })).
				ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.code || strings.TrimSpace(rec.Body.String()) != tt.body {
				t.Fatalf("%s %s: %d %q, want %d %q", tt.method, tt.path, rec.Code, rec.Body.String(), tt.code, tt.body)
			}
			if !tt.servedAPI && rec.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("a probe's answer may be cached: %v", rec.Header())
			}
			for _, leak := range []string{"bank.example", "10.0.0.7", "/srv/"} {
				if strings.Contains(rec.Body.String(), leak) {
					t.Errorf("the probe reveals %q: %s", leak, rec.Body.String())
				}
			}
			if tt.code == 503 && tt.path == "/readyz" && !tt.drain && !strings.Contains(logs.String(), "not ready") {
				t.Errorf("the reason is not logged:\n%s", logs.String())
			}
		})
	}
}

// TestReadyChecksCached: probes within Cache share one round of checks, so
// a probe flood never floods the stores or the peers.
func TestReadyChecksCached(t *testing.T) {
	calls := 0
	h := &web.Health{Cache: time.Hour, Checks: []web.Check{{Name: "store", Run: func(context.Context) error { calls++; return nil }}}}
	for range 5 {
		if f := h.Failing(context.Background()); len(f) != 0 {
			t.Fatalf("failing %v", f)
		}
	}
	if calls != 1 {
		t.Fatalf("5 probes within the cache ran the check %d times, want 1", calls)
	}
}

// accessLine is one access log line.
type accessLine struct {
	Msg       string  `json:"msg"`
	Level     string  `json:"level"`
	Method    string  `json:"method"`
	Route     string  `json:"route"`
	Status    int     `json:"status"`
	Duration  float64 `json:"duration_ms"`
	Bytes     int64   `json:"bytes"`
	RequestID string  `json:"request_id"`
}

// TestObserve: every request gets a request id (a sane incoming one kept,
// any other replaced) echoed in X-Request-Id, one access log line with the
// route template, never the path's values or the query, and a count by
// that template in the metrics.
func TestObserve(t *testing.T) {
	e := web.New(slog.New(slog.DiscardHandler))
	e.GET("/v1/orders/:id", func(c echo.Context) error { return c.String(200, "order "+c.Param("id")) })
	var logs lockedBuffer
	m := web.NewMetrics()
	h := web.Observe(e, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), m)
	const secretID = "ord-4111111111111111"
	tests := []struct {
		name, path, inID string
		keepID           bool
		route            string
		status           int
	}{
		{"a route, no incoming id", "/v1/orders/" + secretID + "?card=4111111111111111", "", false, "/v1/orders/:id", 200},
		{"a sane incoming id is kept", "/v1/orders/" + secretID, "lb-1234abcd.ef_01", true, "/v1/orders/:id", 200},
		{"an id too short is replaced", "/v1/orders/" + secretID, "abc", false, "/v1/orders/:id", 200},
		{"an id forging a log line is replaced", "/v1/orders/" + secretID, `x","route":"/forged`, false, "/v1/orders/:id", 200},
		{"an id too long is replaced", "/v1/orders/" + secretID, strings.Repeat("a", 65), false, "/v1/orders/:id", 200},
		{"no route matched", "/nothing/" + secretID, "", false, web.RouteUnmatched, 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.mu.Lock()
			logs.b.Reset()
			logs.mu.Unlock()
			req := httptest.NewRequest("GET", tt.path, nil)
			if tt.inID != "" {
				req.Header.Set(web.HeaderRequestID, tt.inID)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			id := rec.Header().Get(web.HeaderRequestID)
			if tt.keepID != (id == tt.inID) || len(id) < 8 {
				t.Fatalf("request id %q for incoming %q (keep: %v)", id, tt.inID, tt.keepID)
			}
			var line accessLine
			if err := json.Unmarshal([]byte(logs.String()), &line); err != nil {
				t.Fatalf("not one JSON line: %v\n%s", err, logs.String())
			}
			want := accessLine{Msg: "request", Level: "INFO", Method: "GET", Route: tt.route, Status: tt.status,
				Duration: line.Duration, Bytes: int64(rec.Body.Len()), RequestID: id}
			if line != want || line.Duration < 0 {
				t.Fatalf("access line %+v, want %+v", line, want)
			}
			if strings.Contains(logs.String(), "4111") {
				t.Fatalf("the access log holds the path's values:\n%s", logs.String())
			}
		})
	}
	scrape := scrapeRegistry(t, m.Registry)
	for _, want := range []string{`orderseal_http_requests_total{code="200",method="GET",route="/v1/orders/:id"} 5`,
		`orderseal_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`orderseal_http_request_duration_seconds_count{code="200",method="GET",route="/v1/orders/:id"} 5`} {
		if !strings.Contains(scrape, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(scrape, "4111") {
		t.Error("the metrics hold the path's values")
	}
}

func scrapeRegistry(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	(&web.Metrics{Registry: reg}).Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// TestGaugesReadAtScrape: a store gauge is read when scraped, and a store
// that cannot answer leaves its gauge out rather than failing the scrape.
func TestGaugesReadAtScrape(t *testing.T) {
	n, broken := 3.0, false
	g := web.Gauges{Name: "orderseal_test_depth", Help: "test", Labels: []string{"state"},
		Read: func(ctx context.Context, emit func(float64, ...string)) error {
			if broken {
				return errors.New("store down")
			}
			emit(n, "pending")
			return nil
		}}
	m := web.NewMetrics(g.Collector())
	tests := []struct {
		name    string
		n       float64
		broken  bool
		want    string
		wantNot string
	}{
		{"read", 3, false, `orderseal_test_depth{state="pending"} 3`, ""},
		{"read again", 7, false, `orderseal_test_depth{state="pending"} 7`, ""},
		{"store down: the rest is scraped", 7, true, `go_goroutines`, `orderseal_test_depth{`},
	}
	for _, tt := range tests {
		n, broken = tt.n, tt.broken
		s := scrapeRegistry(t, m.Registry)
		if !strings.Contains(s, tt.want) || tt.wantNot != "" && strings.Contains(s, tt.wantNot) {
			t.Errorf("%s: scrape lacks %q or holds %q", tt.name, tt.want, tt.wantNot)
		}
	}
}

// TestDaemonServe runs Daemon.Serve as a daemon does: the probes on the API
// listener, /metrics only on -metrics-listen, and on shutdown /readyz
// answering 503 draining for -drain-delay while requests are still taken.
func TestDaemonServe(t *testing.T) {
	dir := t.TempDir()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	sf := cli.AddServeFlags(fs, "127.0.0.1:0", "")
	maddr := filepath.Join(dir, "metrics-addr")
	if err := fs.Parse([]string{"-metrics-listen", "127.0.0.1:0", "-metrics-addr-file", maddr, "-drain-delay", "400ms", "-check-every", "0"}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := web.New(slog.New(slog.DiscardHandler))
	e.GET("/v1/ping", func(c echo.Context) error { return c.String(200, "pong") })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs lockedBuffer
	d := web.Daemon{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Flags: sf,
		Ready: []web.Check{web.StoreCheck(func(context.Context) error { return nil })}}
	done := make(chan error, 1)
	go func() { done <- d.Serve(ctx, ln, e) }()

	var metricsURL string
	for deadline := time.Now().Add(10 * time.Second); metricsURL == ""; {
		if b, err := os.ReadFile(maddr); err == nil && strings.HasSuffix(string(b), "\n") {
			metricsURL = "http://" + strings.TrimSpace(string(b))
		} else if time.Now().After(deadline) {
			t.Fatal("the metrics listener's address was not written")
		}
		time.Sleep(10 * time.Millisecond)
	}
	api := "http://" + ln.Addr().String()
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		url      string
		code     int
		contains string
	}{
		{api + "/healthz", 200, `"alive":true`},
		{api + "/readyz", 200, `"ready":true`},
		{api + "/v1/ping", 200, "pong"},
		{api + "/metrics", 404, ""}, // not on the API
		{metricsURL + "/metrics", 200, `orderseal_http_requests_total{code="200",method="GET",route="/v1/ping"} 1`},
		{metricsURL + "/v1/ping", 404, ""}, // and the API is not on the metrics listener
	}
	for _, tt := range tests {
		if code, body := get(tt.url); code != tt.code || !strings.Contains(body, tt.contains) {
			t.Errorf("GET %s: %d %q, want %d with %q", tt.url, code, body, tt.code, tt.contains)
		}
	}

	cancel() // SIGTERM
	deadline := time.Now().Add(300 * time.Millisecond)
	for {
		code, body := get(api + "/readyz")
		if code == 503 && strings.Contains(body, `"draining"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after shutdown began: %d %s", code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, body := get(api + "/v1/ping"); code != 200 || body != "pong" {
		t.Fatalf("a request while draining: %d %q", code, body)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the drain delay")
	}
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	lines := 0
	for sc.Scan() {
		var l accessLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "request" {
			lines++
		}
	}
	if lines != 3 { // two of /v1/ping, one of /metrics; the probes log at Debug, below this logger's level
		t.Errorf("%d access lines:\n%s", lines, logs.String())
	}
}
