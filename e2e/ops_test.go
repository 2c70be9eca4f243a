package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	merchantapi "orderseal/merchant/api"
)

// TestOperations is issue 21's operations part on the real daemons after
// a real order (approved, shipped, its label printed: a vault reveal under
// the grant): every daemon answers /healthz and /readyz unauthenticated,
// revealing nothing; echoes a request id and logs the request on one JSON
// line with its route template; and serves /metrics on its own listener,
// off the signed API, holding the metrics the issue lists and never a card
// number, an address, a name, a token, a tracking number, an order id or an
// identity.
func TestOperations(t *testing.T) {
	c := newCluster(t)
	c.enroll(cAlice, cardCanary, "2031-12", "50000")
	alice := c.wallet("alice", cAlice, cardCanary)
	token := c.registerAddress(cAlice, "home", true)
	id, state, rest, code, errs := c.orderCLI(alice, "-item", "BOOK-1984.pb=1", "-ship-to", "home")
	if code != 0 || state != merchantapi.StateShipped {
		t.Fatalf("order %s: exit %d state %s %s\n%s\nmerchant log:\n%s", id, code, state, rest, errs, c.log("merchant"))
	}
	tracking := strings.Fields(rest)[0]
	c.must("", "carrier", "label", tracking, "-o", c.path("carrier", "label.png"), "-db", c.path("carrier", "carrier.db"),
		"-key", c.keyFile(cParcel), "-vault-url", c.url("vault"), "-vault", cVault)

	// What no probe answer, log line of a request or metric may hold.
	secrets := []string{cardCanary, cardCanary[len(cardCanary)-4:] + `"`, addressCanary, "Bob Beispiel", "Berlin", "10115",
		token, tracking, id, cAlice, cShop, cBank, cParcel, cVault, "cardholder:", "merchant:", "issuer:", "carrier:", "vault:"}
	leaks := func(t *testing.T, what, s string, extra ...string) {
		t.Helper()
		for _, x := range append(secrets, extra...) {
			if strings.Contains(s, x) {
				t.Errorf("%s holds %q", what, x)
			}
		}
	}
	// A log line names the daemon's own identity (its logger carries it),
	// but no one else's.
	self := map[string]string{"merchant": cShop, "issuer": cBank, "carrier": cParcel, "vault": cVault}
	logLeaks := func(t *testing.T, name, line string) {
		t.Helper()
		leaks(t, "the access line", strings.ReplaceAll(line, `"identity":"`+self[name]+`"`, ""))
	}
	get := func(t *testing.T, u, reqID string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		if reqID != "" {
			req.Header.Set("X-Request-Id", reqID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	// Each daemon's own metrics, besides the request metrics all have.
	own := map[string][]string{
		"merchant": {`orderseal_orders{state="shipped"} 1`, `orderseal_outbox_jobs{queue="relay",state="pending"}`,
			`orderseal_outbox_dead_letters{queue="relay"} 0`, `orderseal_outbox_oldest_pending_age_seconds{queue="relay"}`},
		"issuer":  {},
		"carrier": {`orderseal_outbox_jobs{queue="events",state="failed"} 0`, `orderseal_outbox_oldest_pending_age_seconds{queue="events"}`},
		"vault": {`orderseal_vault_reveals_total{kind="reveal-grant",outcome="ok"} 1`, `orderseal_vault_grants_total{kind="grant",outcome="ok"} 1`,
			`orderseal_vault_audited_registrations_total{kind="register",outcome="ok"} 1`, `orderseal_vault_pending_records `,
			`orderseal_vault_commit_batch_size_count `, `orderseal_vault_flush_batch_size_bucket`},
	}
	for _, name := range []string{"merchant", "issuer", "carrier", "vault"} {
		t.Run(name, func(t *testing.T) {
			d := c.daemons[name]
			for _, p := range []struct{ path, body string }{{"/healthz", `{"alive":true}`}, {"/readyz", `{"ready":true}`}} {
				// The merchant's and the carrier's readiness asks their peers: a moment after start they may still be coming up.
				var resp *http.Response
				var body string
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
					if resp, body = get(t, d.url+p.path, ""); resp.StatusCode == 200 || time.Now().After(deadline) {
						break
					}
				}
				if resp.StatusCode != 200 || strings.TrimSpace(body) != p.body {
					t.Fatalf("unauthenticated GET %s: %d %q, want 200 %s", p.path, resp.StatusCode, body, p.body)
				}
				leaks(t, p.path, body, "go1", "/", "version")
				if resp.Header.Get("X-Request-Id") == "" {
					t.Errorf("%s: no X-Request-Id", p.path)
				}
			}

			// A request id is echoed and logged with the route template,
			// never the raw path.
			const reqID = "e2e-ops-0123456789"
			resp, _ := get(t, d.url+"/v1/no/such/route/"+cardCanary, reqID)
			if got := resp.Header.Get("X-Request-Id"); got != reqID {
				t.Fatalf("X-Request-Id %q, want %q echoed", got, reqID)
			}
			var line map[string]any
			for sc := bufio.NewScanner(strings.NewReader(c.log(name))); sc.Scan(); {
				if strings.Contains(sc.Text(), reqID) {
					if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
						t.Fatalf("the access line is not JSON: %v\n%s", err, sc.Text())
					}
					logLeaks(t, name, sc.Text())
				}
			}
			for _, k := range []string{"method", "route", "status", "duration_ms", "bytes", "request_id"} {
				if _, ok := line[k]; !ok {
					t.Errorf("the access line lacks %s: %v", k, line)
				}
			}
			if line["msg"] != "request" || line["route"] != "unmatched" || line["request_id"] != reqID {
				t.Errorf("access line %v", line)
			}

			// /metrics: only on its own listener.
			if resp, _ := get(t, d.url+"/metrics", ""); resp.StatusCode == 200 {
				t.Error("/metrics is served on the API listener")
			}
			if d.metricsURL == "" {
				t.Fatal("no metrics listener")
			}
			resp, scrape := get(t, d.metricsURL+"/metrics", "")
			if resp.StatusCode != 200 {
				t.Fatalf("/metrics: %d", resp.StatusCode)
			}
			for _, want := range append([]string{`orderseal_http_requests_total{`, `orderseal_http_request_duration_seconds_bucket{`,
				`orderseal_pairwise_cache_hits_total `, `orderseal_pairwise_cache_misses_total `, `route="unmatched"`}, own[name]...) {
				if !strings.Contains(scrape, want) {
					t.Errorf("/metrics lacks %s", want)
				}
			}
			leaks(t, "/metrics", scrape, "/no/such/route")
			// Requests were counted by their route templates.
			if !strings.Contains(scrape, `route="/v1/`) {
				t.Errorf("no API route counted:\n%s", grepLines(scrape, "orderseal_http_requests_total"))
			}
		})
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
