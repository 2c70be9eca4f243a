// Package outboxtest is the conformance suite every outbox.Store backend
// passes (DESIGN.md §8, §9): claim order, idempotent enqueue per (kind, key),
// retries with their next due time, dead letters, listing and counts.
package outboxtest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"orderseal/internal/outbox"
	"orderseal/internal/outbox/sqlout"
	"orderseal/internal/sqldb"
)

// Backend is one empty outbox under test.
type Backend struct {
	Store outbox.Store
	// Enqueue writes a job the way a daemon's own transaction does.
	Enqueue func(ctx context.Context, kind, key string, payload []byte, now time.Time) error
	// DB is the outbox's database as a daemon's stores see it, for a
	// handler's own transaction (sqlout.FinishIn).
	DB sqldb.DB
}

// t0 is a whole millisecond: backends keep job times to the millisecond.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 6_000_000, time.UTC)

// Run runs the suite; open returns a fresh, empty outbox for each subtest.
func Run(t *testing.T, open func(t *testing.T) Backend) {
	tests := []struct {
		name string
		run  func(t *testing.T, b Backend)
	}{
		{"claim returns due jobs, earliest due first, up to the limit", testClaimOrder},
		{"enqueue is idempotent per kind and key", testIdempotentEnqueue},
		{"a retried job is due again at its next time", testRetry},
		{"a failed job is never claimed again", testFail},
		{"a done job is never claimed again", testDone},
		{"a done job stays done whatever a late retry or failure says", testDoneStays},
		{"a redriven dead letter is due again, its attempts reset", testRedrive},
		{"a job its handler finished in its own transaction gets no second mark", testFinishedInTx},
		{"list by state, oldest first, never a payload", testList},
		{"count by kind and state", testCount},
		{"the oldest pending job's enqueue time", testOldestPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
}

func enqueue(t *testing.T, b Backend, kind, key, payload string, at time.Time) {
	t.Helper()
	if err := b.Enqueue(context.Background(), kind, key, []byte(payload), at); err != nil {
		t.Fatal(err)
	}
}

func claim(t *testing.T, b Backend, now time.Time, limit int) []outbox.Job {
	t.Helper()
	jobs, err := b.Store.Claim(context.Background(), now, limit)
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

func keys(jobs []outbox.Job) string {
	s := ""
	for _, j := range jobs {
		s += j.Key
	}
	return s
}

// one claims everything due at now and wants exactly the job with key.
func one(t *testing.T, b Backend, now time.Time, key string) outbox.Job {
	t.Helper()
	jobs := claim(t, b, now, 100)
	if len(jobs) != 1 || jobs[0].Key != key {
		t.Fatalf("claim at %v: %q, want %q", now, keys(jobs), key)
	}
	return jobs[0]
}

func testClaimOrder(t *testing.T, b Backend) {
	// Enqueued in this order, due at these times: c is due first, then a and
	// d (same time: enqueue order), then b; e is not due yet.
	enqueue(t, b, "send", "a", "pa", t0)
	enqueue(t, b, "send", "b", "pb", t0.Add(time.Second))
	enqueue(t, b, "send", "c", "pc", t0.Add(-time.Second))
	enqueue(t, b, "void", "d", "", t0)
	enqueue(t, b, "send", "e", "pe", t0.Add(time.Hour))
	if got := keys(claim(t, b, t0.Add(time.Second), 100)); got != "cadb" {
		t.Fatalf("claimed %q, want cadb", got)
	}
	if got := keys(claim(t, b, t0.Add(time.Second), 2)); got != "ca" {
		t.Fatalf("limit 2: %q, want ca", got)
	}
	if got := keys(claim(t, b, t0.Add(-2*time.Second), 100)); got != "" {
		t.Fatalf("before anything is due: %q", got)
	}
	jobs := claim(t, b, t0, 100)
	if keys(jobs) != "cad" {
		t.Fatalf("claimed %q at t0, want cad", keys(jobs))
	}
	for _, j := range jobs {
		if j.ID == 0 || j.Attempts != 0 || (j.Key != "d" && string(j.Payload) != "p"+j.Key) {
			t.Fatalf("job %+v", j)
		}
	}
	if jobs[0].ID == jobs[1].ID || jobs[1].ID == jobs[2].ID {
		t.Fatalf("jobs share an id: %+v", jobs)
	}
	if jobs[2].Kind != "void" || len(jobs[2].Payload) != 0 {
		t.Fatalf("void job %+v", jobs[2])
	}
}

func testIdempotentEnqueue(t *testing.T, b Backend) {
	for i := range 3 {
		enqueue(t, b, "send", "same", "first"[:5-i], t0.Add(time.Duration(i)*time.Minute))
	}
	enqueue(t, b, "other", "same", "x", t0)
	jobs := claim(t, b, t0.Add(time.Hour), 100)
	if len(jobs) != 2 || jobs[0].Kind != "send" || jobs[1].Kind != "other" {
		t.Fatalf("jobs %+v, want one per kind, send first", jobs)
	}
	if string(jobs[0].Payload) != "first" {
		t.Fatalf("a repeated enqueue changed the job: %+v", jobs[0])
	}
	// Enqueueing a job that is done changes nothing either.
	if err := b.Store.Done(context.Background(), jobs[0].ID, 1); err != nil {
		t.Fatal(err)
	}
	enqueue(t, b, "send", "same", "again", t0)
	if got := claim(t, b, t0.Add(time.Hour), 100); len(got) != 1 || got[0].Kind != "other" {
		t.Fatalf("a done job came back: %+v", got)
	}
}

func testRetry(t *testing.T, b Backend) {
	ctx := context.Background()
	enqueue(t, b, "send", "k", "body", t0)
	j := one(t, b, t0, "k")
	next := t0.Add(time.Minute)
	if err := b.Store.Retry(ctx, j.ID, 1, "peer unavailable", next); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, b, next.Add(-time.Millisecond), 100); len(got) != 0 {
		t.Fatalf("claimed before its next time: %+v", got)
	}
	j = one(t, b, next, "k")
	if j.Attempts != 1 || string(j.Payload) != "body" {
		t.Fatalf("retried job %+v", j)
	}
	es, err := b.Store.List(ctx, outbox.StatePending)
	if err != nil || len(es) != 1 {
		t.Fatalf("list: %+v %v", es, err)
	}
	if e := es[0]; e.Attempts != 1 || e.LastError != "peer unavailable" || !e.NextAt.Equal(next) || !e.Created.Equal(t0) {
		t.Fatalf("entry %+v", e)
	}
	// A second retry moves it again, earlier or later.
	if err := b.Store.Retry(ctx, j.ID, 2, "still down", t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if j = one(t, b, t0.Add(time.Second), "k"); j.Attempts != 2 {
		t.Fatalf("attempts %d, want 2", j.Attempts)
	}
}

func testFail(t *testing.T, b Backend) {
	ctx := context.Background()
	enqueue(t, b, "send", "k", "body", t0)
	enqueue(t, b, "send", "other", "", t0)
	j := claim(t, b, t0, 1)[0]
	if err := b.Store.Fail(ctx, j.ID, 3, "refused"); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, b, t0.Add(365*24*time.Hour), 100); len(got) != 1 || got[0].ID == j.ID {
		t.Fatalf("claimed after a failure: %+v", got)
	}
	es, err := b.Store.List(ctx, outbox.StateFailed)
	if err != nil || len(es) != 1 {
		t.Fatalf("dead letters %+v %v", es, err)
	}
	if e := es[0]; e.ID != j.ID || e.Key != j.Key || e.Attempts != 3 || e.LastError != "refused" || e.State != outbox.StateFailed {
		t.Fatalf("dead letter %+v", e)
	}
}

func testRedrive(t *testing.T, b Backend) {
	ctx := context.Background()
	enqueue(t, b, "send", "k", "body", t0)
	enqueue(t, b, "send", "live", "", t0.Add(time.Hour))
	j := one(t, b, t0, "k")
	if err := b.Store.Fail(ctx, j.ID, 7, "peer down"); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(10 * time.Minute)
	if ok, err := b.Store.Redrive(ctx, j.ID, later); err != nil || !ok {
		t.Fatalf("redrive: %v %v", ok, err)
	}
	if got := claim(t, b, later.Add(-time.Millisecond), 100); len(got) != 0 {
		t.Fatalf("claimed before its redrive time: %+v", got)
	}
	got := one(t, b, later, "k")
	if got.ID != j.ID || got.Attempts != 0 || string(got.Payload) != "body" {
		t.Fatalf("redriven job %+v", got)
	}
	// Only a dead letter is redriven: a pending or done job is left as it is.
	if ok, err := b.Store.Redrive(ctx, j.ID, later); err != nil || ok {
		t.Fatalf("redrive of a pending job: %v %v", ok, err)
	}
	if err := b.Store.Done(ctx, j.ID, 1); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.Store.Redrive(ctx, j.ID, later); err != nil || ok {
		t.Fatalf("redrive of a done job: %v %v", ok, err)
	}
}

func testDone(t *testing.T, b Backend) {
	ctx := context.Background()
	enqueue(t, b, "send", "k", "body", t0)
	j := one(t, b, t0, "k")
	if err := b.Store.Retry(ctx, j.ID, 1, "timeout", t0); err != nil {
		t.Fatal(err)
	}
	if err := b.Store.Done(ctx, j.ID, 2); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, b, t0.Add(time.Hour), 100); len(got) != 0 {
		t.Fatalf("claimed after done: %+v", got)
	}
	es, err := b.Store.List(ctx, outbox.StateDone)
	if err != nil || len(es) != 1 {
		t.Fatalf("done jobs %+v %v", es, err)
	}
	if e := es[0]; e.Attempts != 2 || e.LastError != "" || e.State != outbox.StateDone {
		t.Fatalf("done job %+v: want 2 attempts and the last error cleared", e)
	}
}

// testDoneStays: a retry or a failure reported for a job that is done
// already (a late report of an earlier attempt) changes nothing.
func testDoneStays(t *testing.T, b Backend) {
	ctx := context.Background()
	enqueue(t, b, "send", "k", "body", t0)
	j := one(t, b, t0, "k")
	if err := b.Store.Done(ctx, j.ID, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Store.Retry(ctx, j.ID, 2, "late", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := b.Store.Fail(ctx, j.ID, 3, "later"); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, b, t0.Add(time.Hour), 100); len(got) != 0 {
		t.Fatalf("claimed after done: %+v", got)
	}
	es, err := b.Store.List(ctx, "")
	if err != nil || len(es) != 1 {
		t.Fatalf("list %+v %v", es, err)
	}
	if e := es[0]; e.State != outbox.StateDone || e.Attempts != 1 || e.LastError != "" || !e.NextAt.Equal(t0) {
		t.Fatalf("done job after a late retry and failure: %+v", e)
	}
}

func testList(t *testing.T, b Backend) {
	ctx := context.Background()
	for i, k := range []string{"a", "b", "c", "d"} {
		enqueue(t, b, "send", k, "secret payload", t0.Add(time.Duration(-i)*time.Second))
	}
	byKey := map[string]int64{}
	for _, j := range claim(t, b, t0, 100) {
		byKey[j.Key] = j.ID
	}
	if err := b.Store.Fail(ctx, byKey["b"], 12, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := b.Store.Done(ctx, byKey["d"], 1); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ state, keys string }{
		{"", "abcd"},
		{outbox.StatePending, "ac"},
		{outbox.StateFailed, "b"},
		{outbox.StateDone, "d"},
	}
	for _, tt := range tests {
		es, err := b.Store.List(ctx, tt.state)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for i, e := range es {
			got += e.Key
			at := t0.Add(time.Duration(-i) * time.Second)
			if tt.state == "" && (e.Kind != "send" || !e.Created.Equal(at) || !e.NextAt.Equal(at)) {
				t.Fatalf("entry %+v, want created and due at %v", e, at)
			}
		}
		if got != tt.keys {
			t.Fatalf("state %q: %q, want %q", tt.state, got, tt.keys)
		}
	}
	if _, err := b.Store.List(ctx, "stuck"); err == nil {
		t.Fatal("an unknown state listed")
	}
}

func testCount(t *testing.T, b Backend) {
	ctx := context.Background()
	if s, err := b.Store.Count(ctx, ""); err != nil || s != (outbox.Stats{}) {
		t.Fatalf("empty outbox: %+v %v", s, err)
	}
	for _, k := range []string{"a", "b", "c"} {
		enqueue(t, b, "send", k, "", t0)
	}
	enqueue(t, b, "void", "a", "", t0)
	enqueue(t, b, "void", "b", "", t0)
	for _, j := range claim(t, b, t0, 100) {
		switch j.Kind + "/" + j.Key {
		case "send/a", "void/a":
			if err := b.Store.Done(ctx, j.ID, 1); err != nil {
				t.Fatal(err)
			}
		case "void/b":
			if err := b.Store.Fail(ctx, j.ID, 1, "x"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for kind, want := range map[string]outbox.Stats{
		"":     {Pending: 2, Done: 2, Failed: 1},
		"send": {Pending: 2, Done: 1},
		"void": {Done: 1, Failed: 1},
		"book": {},
	} {
		if s, err := b.Store.Count(ctx, kind); err != nil || s != want {
			t.Errorf("count %q: %+v %v, want %+v", kind, s, err, want)
		}
	}
}

func testOldestPending(t *testing.T, b Backend) {
	ctx := context.Background()
	oldest := func() (time.Time, bool) {
		t.Helper()
		at, ok, err := b.Store.OldestPending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return at, ok
	}
	if _, ok := oldest(); ok {
		t.Fatal("an empty outbox has a pending job")
	}
	enqueue(t, b, "k", "a", "", t0)
	enqueue(t, b, "k", "b", "", t0.Add(time.Minute))
	steps := []struct {
		name   string
		act    func(j outbox.Job) error
		want   time.Time
		wantOK bool
	}{
		{"two pending: the first enqueued", nil, t0, true},
		{"the first done: the second", func(j outbox.Job) error { return b.Store.Done(ctx, j.ID, 1) }, t0.Add(time.Minute), true},
		{"the second a dead letter: none pending", func(j outbox.Job) error { return b.Store.Fail(ctx, j.ID, 1, "x") }, time.Time{}, false},
	}
	for _, s := range steps {
		if s.act != nil {
			jobs := claim(t, b, t0.Add(time.Hour), 1)
			if len(jobs) != 1 {
				t.Fatalf("%s: claimed %d jobs", s.name, len(jobs))
			}
			if err := s.act(jobs[0]); err != nil {
				t.Fatal(err)
			}
		}
		at, ok := oldest()
		if ok != s.wantOK || !at.Equal(s.want) {
			t.Fatalf("%s: oldest %v %v, want %v %v", s.name, at, ok, s.want, s.wantOK)
		}
	}
}

// countingStore counts the runner's own done-marks.
type countingStore struct {
	outbox.Store
	done atomic.Int32
}

func (c *countingStore) Done(ctx context.Context, id int64, attempts int) error {
	c.done.Add(1)
	return c.Store.Done(ctx, id, attempts)
}

// testFinishedInTx: a handler that marks its job done in its own
// transaction (sqlout.FinishIn) leaves the runner nothing to write; a
// handler that does not gets the runner's mark. One worker, so the second
// job runs only once the first one's attempt is over.
func testFinishedInTx(t *testing.T, b Backend) {
	if b.DB == nil {
		t.Fatal("the backend gives no DB")
	}
	enqueue(t, b, "finish", "a", "", t0)
	enqueue(t, b, "plain", "b", "", t0.Add(time.Millisecond))
	cs := &countingStore{Store: b.Store}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &outbox.Runner{Store: cs, Workers: 1, Poll: 5 * time.Millisecond, Now: func() time.Time { return t0.Add(time.Second) },
		Handlers: map[string]outbox.Handler{
			"finish": func(ctx context.Context, _ outbox.Job) error {
				return b.DB.Tx(ctx, func(tx sqldb.Tx) error { return sqlout.FinishIn(ctx, tx) })
			},
			"plain": func(context.Context, outbox.Job) error { return nil },
		}}
	stopped := make(chan struct{})
	go func() { defer close(stopped); r.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := b.Store.Count(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		if st.Done == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs not done: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-stopped
	if n := cs.done.Load(); n != 1 {
		t.Fatalf("the runner wrote %d done-marks, want 1 (the plain job's only)", n)
	}
	es, err := b.Store.List(context.Background(), outbox.StateDone)
	if err != nil || len(es) != 2 {
		t.Fatalf("done jobs %+v %v", es, err)
	}
	for _, e := range es {
		if e.Attempts != 1 {
			t.Fatalf("job %s done after %d attempts, want 1", e.Key, e.Attempts)
		}
	}
}
