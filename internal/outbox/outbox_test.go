package outbox

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orderseal/internal/sqlitex"
)

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sqlitex.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := sqlitex.Migrate(context.Background(), db, []string{Migration}); err != nil {
		t.Fatal(err)
	}
	return db
}

func state(t *testing.T, db *sql.DB, key string) (string, int) {
	t.Helper()
	var s string
	var n int
	if err := db.QueryRow(`SELECT state, attempts FROM outbox WHERE key = ?`, key).Scan(&s, &n); err != nil {
		t.Fatal(err)
	}
	return s, n
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
		{"permanent failure is not retried", 0, Permanent(errors.New("refused")), "failed", 1, true},
		{"retries run out", 10, nil, "failed", 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openDB(t, filepath.Join(t.TempDir(), "o.db"))
			var calls atomic.Int32
			var gaveUp atomic.Bool
			r := &Runner{DB: db, MaxAttempts: 5, Poll: 5 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
				Handlers: map[string]Handler{"send": func(ctx context.Context, j Job) error {
					if string(j.Payload) != "body" {
						t.Errorf("payload %q", j.Payload)
					}
					if n := int(calls.Add(1)); n <= tt.failFirst {
						return errTransient
					}
					return tt.final
				}},
				GiveUp: func(ctx context.Context, j Job, err error) { gaveUp.Store(true) },
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := Enqueue(ctx, db, "send", "k1", []byte("body"), time.Now()); err != nil {
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

func TestEnqueueIsIdempotent(t *testing.T) {
	db := openDB(t, filepath.Join(t.TempDir(), "o.db"))
	ctx := context.Background()
	for range 3 {
		if err := Enqueue(ctx, db, "send", "same", []byte("x"), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if err := Enqueue(ctx, db, "other", "same", nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	s, err := Count(ctx, db)
	if err != nil || s.Pending != 2 {
		t.Fatalf("count %+v %v, want 2 pending", s, err)
	}
}

// A job left pending by a stopped process is delivered by the next one, and
// a job is never run by two workers at once.
func TestResumeAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.db")
	db := openDB(t, path)
	ctx := context.Background()
	for _, k := range []string{"a", "b", "c"} {
		if err := Enqueue(ctx, db, "send", k, nil, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	db2 := openDB(t, path)
	var mu sync.Mutex
	running := map[string]bool{}
	seen := map[string]int{}
	r := &Runner{DB: db2, Poll: time.Millisecond, Workers: 3, Handlers: map[string]Handler{"send": func(ctx context.Context, j Job) error {
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
	waitFor(t, "all jobs done", func() bool { s, _ := Count(ctx, db2); return s.Done == 3 })
	cancel()
	<-done
	for _, k := range []string{"a", "b", "c"} {
		if seen[k] != 1 {
			t.Errorf("job %s ran %d times, want 1", k, seen[k])
		}
	}
}

func TestBackoffGrowsAndCaps(t *testing.T) {
	r := &Runner{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
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
