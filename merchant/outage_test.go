package merchant_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	carrierapi "orderseal/carrier/api"
	"orderseal/internal/outbox"
	"orderseal/internal/sqlitex"
	issuerapi "orderseal/issuer/api"
	"orderseal/merchant"
	"orderseal/merchant/api"
	"orderseal/merchant/store"
	"orderseal/tstest/keys"
)

// attemptLog records, per job, when each attempt's handler returned and the
// next_at the runner wrote after it: the runner computes next_at from its
// clock right after the handler returns, so next_at minus that return time
// is the backoff it chose.
type attemptLog struct {
	db store.Store

	mu      sync.Mutex
	returns map[int64][]time.Time // by job id, attempt n at index n-1
	nextAt  map[int64][]time.Time // next_at written after attempt n, at index n-1
	keys    map[int64]string
}

func newAttemptLog() *attemptLog {
	return &attemptLog{returns: map[int64][]time.Time{}, nextAt: map[int64][]time.Time{}, keys: map[int64]string{}}
}

// wrap observes kind's handler: on entry to attempt n+1 it reads the next_at
// attempt n left; on return it notes the time.
func (l *attemptLog) wrap(kind string, h outbox.Handler) outbox.Handler {
	return func(ctx context.Context, j outbox.Job) error {
		if j.Attempts > 0 {
			if next, ok := nextAt(ctx, l.db, j.ID); ok {
				l.mu.Lock()
				if len(l.nextAt[j.ID]) == j.Attempts-1 {
					l.nextAt[j.ID] = append(l.nextAt[j.ID], next)
				}
				l.mu.Unlock()
			}
		}
		err := h(ctx, j)
		l.mu.Lock()
		l.keys[j.ID] = j.Key
		if len(l.returns[j.ID]) == j.Attempts {
			l.returns[j.ID] = append(l.returns[j.ID], time.Now())
		}
		l.mu.Unlock()
		return err
	}
}

// nextAt reads when the pending job id is next due.
func nextAt(ctx context.Context, st store.Store, id int64) (time.Time, bool) {
	es, err := st.Outbox().List(ctx, outbox.StatePending)
	if err != nil {
		return time.Time{}, false
	}
	for _, e := range es {
		if e.ID == id {
			return e.NextAt, true
		}
	}
	return time.Time{}, false
}

// reopen replaces the env's merchant with one whose relay runner tune sets;
// the database and the URL stay.
func (e *env) reopen(tune func(r *outbox.Runner)) {
	t := e.t
	t.Helper()
	e.stop()
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := merchant.OpenStore(context.Background(), e.dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := merchant.NewServer(merchant.Config{
		Keys:      keys.Keys(t, keys.Shop),
		Store:     st,
		Carrier:   merchant.Peer{Identity: keys.Parcel, URL: e.carrier.ts.URL},
		Issuers:   []merchant.Peer{{Identity: keys.Bank, URL: e.issuer.ts.URL}},
		Vault:     merchant.Peer{Identity: keys.Vault, URL: e.vault.ts.URL},
		PublicURL: e.ts.URL,
		Logger:    slog.New(slog.NewJSONHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:       func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) },
		Outbox:    tune,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.st, e.srv = st, srv
	e.front.set(srv.Handler())
}

// down closes ts, so calls to its address are refused, and returns a
// function that starts a new server with the same handler on the same
// address and returns it.
func down(t *testing.T, ts *httptest.Server) (up func() *httptest.Server) {
	t.Helper()
	addr, h := ts.Listener.Addr().String(), ts.Config.Handler
	ts.Close()
	return func() *httptest.Server {
		t.Helper()
		var ln net.Listener
		var err error
		for range 50 { // the port is free again at once on Linux; retry if not
			if ln, err = net.Listen("tcp", addr); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("listening again on %s: %v", addr, err)
		}
		up := httptest.NewUnstartedServer(h)
		up.Listener.Close()
		up.Listener = ln
		up.Start()
		t.Cleanup(up.Close)
		return up
	}
}

// outboxRows returns kind's jobs as order id → (state, attempts).
func (e *env) outboxRows(t testing.TB, kind string) map[string][2]any {
	t.Helper()
	es, err := e.st.Outbox().List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]any{}
	for _, j := range es {
		if j.Kind == kind {
			out[j.Key] = [2]any{j.State, j.Attempts}
		}
	}
	return out
}

// waitFor polls cond until it holds or fails the test after 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPeerOutage: while the issuer (or the carrier) refuses connections and
// then answers 503, the merchant keeps retrying every order's job with
// growing, jittered backoff, and every order ships once the peer is back.
func TestPeerOutage(t *testing.T) {
	const (
		orders     = 4
		minBackoff = 100 * time.Millisecond
		maxBackoff = 2 * time.Second
	)
	tests := []struct {
		name string
		kind string // the job the outage stalls
		peer func(e *env) **httptest.Server
		// refuse scripts n 503 answers once the peer is back.
		refuse func(e *env, n int)
	}{
		{"issuer", "authorize", func(e *env) **httptest.Server { return &e.issuer.ts }, func(e *env, n int) {
			e.issuer.script(repeat(issuerStep{status: 503, code: "unavailable"}, n)...)
		}},
		{"carrier", "book", func(e *env) **httptest.Server { return &e.carrier.ts }, func(e *env, n int) {
			e.carrier.script(repeat(carrierStep{status: 503, code: carrierapi.CodeVaultDeposit}, n)...)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			log := newAttemptLog()
			e.reopen(func(r *outbox.Runner) {
				r.Poll, r.MinBackoff, r.MaxBackoff, r.Timeout = 20*time.Millisecond, minBackoff, maxBackoff, 5*time.Second
				r.Handlers[tc.kind] = log.wrap(tc.kind, r.Handlers[tc.kind])
			})
			log.db = e.st
			ts := tc.peer(e)
			up := down(t, *ts)

			var ids []string
			for range orders {
				ids = append(ids, e.submit(t).OrderID)
			}
			e.run()
			// Connection refused: every job fails at least three times.
			waitFor(t, "retries while the peer is down", func() bool {
				rows := e.outboxRows(t, tc.kind)
				for _, id := range ids {
					if r, ok := rows[id]; !ok || r[1].(int) < 3 {
						return false
					}
				}
				return true
			})
			// Back, but answering 503 for a while.
			tc.refuse(e, orders)
			*ts = up()
			for _, id := range ids {
				if o := e.waitState(t, id, api.StateShipped); o.Reason != "" {
					t.Fatalf("order %s shipped with reason %q", id, o.Reason)
				}
				e.waitJobs(t, id)
			}
			e.noViolations(t)

			rows := e.outboxRows(t, tc.kind)
			log.mu.Lock()
			defer log.mu.Unlock()
			var jitters [][]time.Duration
			for id, rets := range log.returns {
				key := log.keys[id]
				if r := rows[key]; r[0] != "done" || r[1].(int) < 4 || r[1].(int) != len(rets) {
					t.Fatalf("job %s: %v, %d attempts seen", key, r, len(rets))
				}
				next := log.nextAt[id]
				if len(next) != len(rets)-1 {
					t.Fatalf("job %s: %d next_at values for %d attempts", key, len(next), len(rets))
				}
				var jit []time.Duration
				for n := range next {
					base := min(minBackoff<<n, maxBackoff)
					chosen := next[n].Sub(rets[n])
					// next_at has millisecond resolution; the runner reads its clock a moment after the handler returns.
					if chosen < base-2*time.Millisecond || chosen > base+base/4+50*time.Millisecond {
						t.Fatalf("job %s, attempt %d: backoff %v, want %v plus up to 25%%", key, n+1, chosen, base)
					}
					// The backoff chosen after each attempt grows: it doubles and the
					// jitter adds at most a quarter. (Gaps between next_at values
					// also hold how long each attempt took, which an outage varies.)
					if n >= 1 && base < maxBackoff {
						if prev := next[n-1].Sub(rets[n-1]); chosen <= prev {
							t.Fatalf("job %s: backoff %v after %v: not growing", key, chosen, prev)
						}
					}
					jit = append(jit, chosen-base)
				}
				jitters = append(jitters, jit)
			}
			if len(jitters) != orders {
				t.Fatalf("%d jobs observed, want %d", len(jitters), orders)
			}
			if allSame(jitters) {
				t.Fatalf("every job chose the same backoffs %v: no jitter", jitters)
			}
		})
	}
}

// allSame reports whether every job's jitter at every shared attempt lies
// within 2 ms of the first job's.
func allSame(js [][]time.Duration) bool {
	for _, j := range js[1:] {
		for n := range min(len(j), len(js[0])) {
			if d := j[n] - js[0][n]; d > 2*time.Millisecond || d < -2*time.Millisecond {
				return false
			}
		}
	}
	return true
}

// TestDeadLetters: a relay that can never succeed — refused for good, or
// unanswered until its bundle expired — ends as a failed job (the dead letter) and a failed
// order whose reason the cardholder sees, its hold voided; it is not tried
// again, and 'merchant outbox -state failed' lists it without its payload.
func TestDeadLetters(t *testing.T) {
	const maxAttempts = 4
	tests := []struct {
		name     string
		issuer   []issuerStep
		carrier  []carrierStep
		kind     string
		attempts int
		reason   string
		jobs     map[string]string
	}{
		{name: "issuer refuses the bundle", issuer: []issuerStep{{status: 422, code: issuerapi.CodeSectionRefused}},
			kind: "authorize", attempts: 1, reason: issuerapi.CodeSectionRefused,
			jobs: map[string]string{"authorize": "failed"}},
		{name: "issuer unavailable until the bundle expires", issuer: append(repeat(issuerStep{status: 503, code: "unavailable"}, maxAttempts-1),
			issuerStep{status: 503, code: "unavailable", expire: true}),
			kind: "authorize", attempts: maxAttempts, reason: "unavailable",
			jobs: map[string]string{"authorize": "failed", "void": "done"}},
		{name: "carrier refuses the booking", carrier: []carrierStep{{status: 422, code: carrierapi.CodeNoDestination}},
			kind: "book", attempts: 1, reason: carrierapi.CodeNoDestination,
			jobs: map[string]string{"authorize": "done", "book": "failed", "void": "done"}},
		{name: "carrier unavailable until the bundle expires", carrier: append(repeat(carrierStep{status: 503, code: carrierapi.CodeVaultDeposit}, maxAttempts-1),
			carrierStep{status: 503, code: carrierapi.CodeVaultDeposit, expire: true}),
			kind: "book", attempts: maxAttempts, reason: carrierapi.CodeVaultDeposit,
			jobs: map[string]string{"authorize": "done", "book": "failed", "void": "done"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.reopen(func(r *outbox.Runner) {
				r.Poll, r.MinBackoff, r.MaxBackoff, r.Timeout, r.MaxAttempts = 10*time.Millisecond, 5*time.Millisecond, 20*time.Millisecond, 5*time.Second, maxAttempts
			})
			e.issuer.script(tc.issuer...)
			e.carrier.script(tc.carrier...)
			e.run()
			b := e.submit(t)
			o := e.waitState(t, b.OrderID, api.StateFailed)
			e.waitJobs(t, b.OrderID)
			if o.Reason != tc.reason {
				t.Fatalf("reason %q, want %q", o.Reason, tc.reason)
			}
			calls := func() int {
				ireqs, _, _ := e.issuer.snapshot()
				creqs, _ := e.carrier.snapshot()
				if tc.kind == "book" {
					return len(creqs)
				}
				return len(ireqs)
			}
			// Many backoff periods later, nothing was tried again.
			settled := calls()
			time.Sleep(300 * time.Millisecond)
			wantJobs(t, e.jobs(t, b.OrderID), tc.jobs)
			if r := e.outboxRows(t, tc.kind)[b.OrderID]; r[0] != "failed" || r[1].(int) != tc.attempts {
				t.Fatalf("%s job %v, want failed after %d attempts", tc.kind, r, tc.attempts)
			}
			if n := calls(); n != tc.attempts || n != settled {
				t.Fatalf("the peer saw %d %s calls (%d when the order failed), want %d", n, tc.kind, settled, tc.attempts)
			}
			st, err := e.client(t, keys.Alice).Status(context.Background(), b.OrderID)
			if err != nil || st.State != api.StateFailed || st.Reason != tc.reason {
				t.Fatalf("the cardholder sees %+v %v", st, err)
			}

			// The operator's view of the dead letters.
			code, out, errs := runCLI(t, context.Background(), "", "outbox", "-db", e.dbPath, "-state", "failed", "-json")
			if code != 0 {
				t.Fatalf("merchant outbox: %d %s", code, errs)
			}
			var jobs []merchant.OutboxJob
			if err := json.Unmarshal([]byte(out), &jobs); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if len(jobs) != 1 || jobs[0].Kind != tc.kind || jobs[0].OrderID != b.OrderID || jobs[0].Attempts != tc.attempts ||
				jobs[0].State != "failed" || jobs[0].NextAttempt != "" || jobs[0].LastError == "" {
				t.Fatalf("merchant outbox -state failed: %+v", jobs)
			}
		})
	}
}

// TestOutageThenKill: orders stalled by an issuer outage survive a merchant
// restart in the middle of it and complete once the issuer is back.
func TestOutageThenKill(t *testing.T) {
	e := newEnv(t)
	up := down(t, e.issuer.ts)
	var ids []string
	for range 3 {
		ids = append(ids, e.submit(t).OrderID)
	}
	e.run()
	waitFor(t, "failed attempts", func() bool {
		for _, r := range e.outboxRows(t, "authorize") {
			if r[1].(int) < 1 {
				return false
			}
		}
		return len(e.outboxRows(t, "authorize")) == len(ids)
	})
	e.restart()
	e.issuer.ts = up()
	e.run()
	for _, id := range ids {
		e.waitState(t, id, api.StateShipped)
		e.waitJobs(t, id)
	}
	e.noViolations(t)
	if n := e.count(t, "orders"); n != len(ids) {
		t.Fatalf("%d orders, want %d", n, len(ids))
	}
	ireqs, _, _ := e.issuer.snapshot()
	seen := map[string]bool{}
	for _, r := range ireqs {
		seen[r.orderID] = true
	}
	if len(seen) != len(ids) {
		t.Fatalf("the issuer authorized %d orders, want %d", len(seen), len(ids))
	}
}

// TestLongPeerOutage is issue 22 item 2: the issuer is down for 30 minutes
// of the merchant's clock (a controlled clock, 15 s a step), the relay runs
// with its production backoff (250 ms doubling, capped at a minute), and no
// order is given up while its bundle is valid: 'merchant outbox' shows the
// reason and the next attempt meanwhile, and every accepted order ships
// once the issuer is back, each authorized once.
func TestLongPeerOutage(t *testing.T) {
	const orders = 20
	e := newEnv(t)
	e.reopen(func(r *outbox.Runner) { r.Poll, r.Timeout = 5*time.Millisecond, 5*time.Second })
	up := down(t, e.issuer.ts)
	var ids []string
	for range orders {
		ids = append(ids, e.submit(t).OrderID)
	}
	e.run()
	// caughtUp reports whether the relay has tried every job due on the
	// merchant's clock.
	caughtUp := func() bool {
		now := time.Now().Add(time.Duration(e.skew.Load()))
		es, err := e.st.Outbox().List(context.Background(), outbox.StatePending)
		if err != nil {
			return false
		}
		for _, j := range es {
			if !j.NextAt.After(now) {
				return false
			}
		}
		return true
	}
	// advance moves the merchant's clock on by step each time the relay has
	// caught up with it, until it is until ahead or stop is closed.
	advance := func(step time.Duration, until time.Duration, stop <-chan struct{}) {
		for time.Duration(e.skew.Load()) < until {
			for deadline := time.Now().Add(5 * time.Second); !caughtUp() && time.Now().Before(deadline); {
				time.Sleep(2 * time.Millisecond)
			}
			select {
			case <-stop:
				return
			default:
			}
			e.skew.Add(int64(step))
		}
	}
	advance(15*time.Second, 15*time.Minute, nil)

	// Halfway: every job pending, with its reason and next attempt shown.
	code, out, errs := runCLI(t, context.Background(), "", "outbox", "-db", e.dbPath, "-state", "pending", "-json")
	if code != 0 {
		t.Fatalf("merchant outbox: %d %s", code, errs)
	}
	var jobs []merchant.OutboxJob
	if err := json.Unmarshal([]byte(out), &jobs); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(jobs) != orders {
		t.Fatalf("%d pending jobs halfway through the outage, want %d: %s", len(jobs), orders, out)
	}
	for _, j := range jobs {
		if j.Kind != "authorize" || j.Attempts < 5 || j.NextAttempt == "" || j.RetryUntil == "" || !strings.Contains(j.LastError, "refused") {
			t.Fatalf("pending job halfway through the outage: %+v", j)
		}
	}

	advance(15*time.Second, 30*time.Minute, nil)
	for id, r := range e.outboxRows(t, "authorize") {
		// The old relay gave up after 12 attempts, about 12 minutes in.
		if r[0] != "pending" || r[1].(int) <= 12 {
			t.Fatalf("authorize %s after a 30-minute outage: %v, want pending after more than 12 attempts", id, r)
		}
	}
	e.issuer.ts = up()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { advance(5*time.Second, 40*time.Minute, stop); close(done) }()
	for _, id := range ids {
		if o := e.waitState(t, id, api.StateShipped); o.Reason != "" {
			t.Fatalf("order %s shipped with reason %q", id, o.Reason)
		}
		e.waitJobs(t, id)
	}
	close(stop)
	<-done
	e.noViolations(t)
	ireqs, voids, _ := e.issuer.snapshot()
	seen := map[string]int{}
	for _, r := range ireqs {
		seen[r.orderID]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("the issuer saw order %s %d times, want once", id, seen[id])
		}
	}
	if len(voids) != 0 {
		t.Fatalf("voids %v after an outage the relay outlasted", voids)
	}
}

// TestOutboxRetry: 'merchant outbox retry' puts dead letters back to
// pending and a running merchant delivers them: a void the issuer never
// took within its patience is re-driven and releases the hold; a dead
// authorize of an order that has failed is skipped, named with its state.
func TestOutboxRetry(t *testing.T) {
	e := newEnv(t)
	e.reopen(func(r *outbox.Runner) {
		r.Poll, r.MinBackoff, r.MaxBackoff, r.Timeout = 10*time.Millisecond, 5*time.Millisecond, 20*time.Millisecond, 5*time.Second
	})
	e.issuer.script(append(repeat(issuerStep{status: 503, code: "unavailable"}, 2), issuerStep{status: 503, code: "unavailable", expire: true})...)
	e.run()
	b := e.submit(t)
	e.waitState(t, b.OrderID, api.StateFailed)
	e.waitJobs(t, b.OrderID)
	// The void went through; make it a dead letter as a week-long issuer
	// outage would have, and retry it.
	e.stop()
	raw, err := sqlitex.Open(e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`UPDATE outbox SET state = 'failed', last_error = 'issuer unreachable' WHERE kind = 'void'`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	_, voidsBefore, _ := e.issuer.snapshot()
	e.run()

	code, out, errs := runCLI(t, context.Background(), "", "outbox", "retry", "-db", e.dbPath)
	if code != 0 {
		t.Fatalf("merchant outbox retry: %d\n%s%s", code, out, errs)
	}
	if !strings.Contains(out, "void\t"+b.OrderID+"\tre-driven (was: issuer unreachable)") ||
		!strings.Contains(out, "authorize\t"+b.OrderID+"\tskipped: the order is failed (unavailable)") ||
		!strings.Contains(errs, "1 dead letters re-driven, 1 skipped") {
		t.Fatalf("merchant outbox retry:\n%s%s", out, errs)
	}
	waitFor(t, "the re-driven void", func() bool {
		_, voids, _ := e.issuer.snapshot()
		return len(voids) == len(voidsBefore)+1
	})
	e.waitJobs(t, b.OrderID)
	if r := e.outboxRows(t, "void")[b.OrderID]; r[0] != "done" {
		t.Fatalf("re-driven void: %v", r)
	}
	code, _, errs = runCLI(t, context.Background(), "", "outbox", "retry", "-db", e.dbPath, "-kind", "void")
	if code != 1 || !strings.Contains(errs, "no dead letter matches") {
		t.Fatalf("retry with nothing to do: %d %s", code, errs)
	}
}
