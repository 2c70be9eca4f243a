package outbox_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orderseal/internal/outbox"
	"orderseal/internal/outbox/sqlite"
	"orderseal/internal/sqlitex"
)

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sqlitex.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := sqlitex.Migrate(context.Background(), db, []string{sqlite.Migration}); err != nil {
		t.Fatal(err)
	}
	return db
}

// state returns the job's state and attempts as the Store lists them.
func state(t *testing.T, db *sql.DB, key string) (string, int) {
	t.Helper()
	es, err := sqlite.New(db).List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Key == key {
			return e.State, e.Attempts
		}
	}
	t.Fatalf("no job %s", key)
	return "", 0
}

// waitFor polls until cond holds or fails the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunner(t *testing.T) {
	errTransient := errors.New("peer unavailable")
	tests := []struct {
		name      string
		failFirst int   // transient failures before the outcome
		final     error // outcome after them
		wantState string
		wantTries int
		wantGive  bool
	}{
		{"succeeds at once", 0, nil, "done", 1, false},
		{"succeeds after retries", 3, nil, "done", 4, false},
		{"permanent failure is not retried", 0, outbox.Permanent(errors.New("refused")), "failed", 1, true},
		{"retries run out", 10, nil, "failed", 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openDB(t, filepath.Join(t.TempDir(), "o.db"))
			var calls atomic.Int32
			var gaveUp atomic.Bool
			r := &outbox.Runner{Store: sqlite.New(db), MaxAttempts: 5, Poll: 5 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
				Handlers: map[string]outbox.Handler{"send": func(ctx context.Context, j outbox.Job) error {
					if string(j.Payload) != "body" {
						t.Errorf("payload %q", j.Payload)
					}
					if n := int(calls.Add(1)); n <= tt.failFirst {
						return errTransient
					}
					return tt.final
				}},
				GiveUp: func(ctx context.Context, j outbox.Job, err error) { gaveUp.Store(true) },
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := sqlite.Enqueue(ctx, db, "send", "k1", []byte("body"), time.Now()); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { r.Run(ctx); close(done) }()
			waitFor(t, "job to settle", func() bool { s, _ := state(t, db, "k1"); return s != "pending" })
			cancel()
			<-done
			s, n := state(t, db, "k1")
			if s != tt.wantState || n != tt.wantTries || int(calls.Load()) != tt.wantTries || gaveUp.Load() != tt.wantGive {
				t.Fatalf("state %s after %d attempts (%d calls, gave up %v); want %s after %d (gave up %v)",
					s, n, calls.Load(), gaveUp.Load(), tt.wantState, tt.wantTries, tt.wantGive)
			}
		})
	}
}

// A job left pending by a stopped process is delivered by the next one, and
// a job is never run by two workers at once.
func TestResumeAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.db")
	db := openDB(t, path)
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		if err := sqlite.Enqueue(ctx, db, "send", k, nil, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	db2 := openDB(t, path)
	var mu sync.Mutex
	running := map[string]bool{}
	seen := map[string]int{}
	r := &outbox.Runner{Store: sqlite.New(db2), Poll: time.Millisecond, Workers: 3, Handlers: map[string]outbox.Handler{"send": func(ctx context.Context, j outbox.Job) error {
		mu.Lock()
		if running[j.Key] {
			t.Errorf("job %s run twice at once", j.Key)
		}
		running[j.Key] = true
		seen[j.Key]++
		mu.Unlock()
		time.Sleep(20 * time.Millisecond) // longer than Poll: the runner polls while it runs
		mu.Lock()
		running[j.Key] = false
		mu.Unlock()
		return nil
	}}}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(rctx); close(done) }()
	waitFor(t, "all jobs done", func() bool { s, _ := sqlite.New(db2).Count(ctx, ""); return s.Done == 3 })
	cancel()
	<-done
	for _, k := range []string{"a", "b", "c"} {
		if seen[k] != 1 {
			t.Errorf("job %s ran %d times, want 1", k, seen[k])
		}
	}
}

func TestBackoffGrowsAndCaps(t *testing.T) {
	r := &outbox.Runner{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	prev := time.Duration(0)
	for n := 1; n <= 10; n++ {
		d := r.Backoff(n)
		if d < prev*3/4 || d > time.Second*5/4 {
			t.Fatalf("backoff(%d) = %v after %v", n, d, prev)
		}
		prev = d
	}
	if d := r.Backoff(1); d < 100*time.Millisecond || d > 125*time.Millisecond {
		t.Fatalf("backoff(1) = %v", d)
	}
}

// TestDeadline: a job with a deadline is retried past MaxAttempts for as
// long as its next attempt falls before the deadline, with the backoff
// capped, then given up with the deadline in its error.
func TestDeadline(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "o.db"))
	var clock atomic.Int64 // a controlled clock: the runner sees only this
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock.Store(start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	deadline := start.Add(2 * time.Hour)
	var calls atomic.Int32
	var gaveUp atomic.Value
	r := &outbox.Runner{Store: sqlite.New(db), MaxAttempts: 3, Poll: 2 * time.Millisecond, MinBackoff: time.Second, MaxBackoff: time.Minute, Now: now,
		Handlers: map[string]outbox.Handler{"send": func(ctx context.Context, j outbox.Job) error {
			calls.Add(1)
			return errors.New("connection refused")
		}},
		Deadline: func(ctx context.Context, j outbox.Job) time.Time { return deadline },
		GiveUp:   func(ctx context.Context, j outbox.Job, err error) { gaveUp.Store(err.Error()) },
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := sqlite.Enqueue(ctx, db, "send", "k1", nil, start); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	// The clock moves on only once the runner has tried the job due at it,
	// however slowly it runs (the race detector, a loaded machine).
	tried := func() bool {
		es, err := sqlite.New(db).List(context.Background(), "")
		return err == nil && len(es) == 1 && (es[0].State != "pending" || es[0].NextAt.After(now()))
	}
	for now().Before(deadline.Add(2 * time.Minute)) {
		waitFor(t, "the due attempt", tried)
		if s, _ := state(t, db, "k1"); s != "pending" {
			break
		}
		clock.Add(int64(5 * time.Second))
	}
	waitFor(t, "the job to be given up", func() bool { s, _ := state(t, db, "k1"); return s == "failed" })
	cancel()
	<-done
	_, n := state(t, db, "k1")
	// Two hours at a one-minute cap (and jitter, and 5 s clock steps) is
	// about a hundred attempts; without the deadline it was MaxAttempts, 3.
	if n < 60 || int(calls.Load()) != n {
		t.Fatalf("%d attempts (%d calls) before giving up, want at least 60", n, calls.Load())
	}
	if msg, _ := gaveUp.Load().(string); msg == "" || !strings.Contains(msg, "2030-01-01T02:00:00Z") {
		t.Fatalf("given up with %q, want the deadline named", msg)
	}
}
