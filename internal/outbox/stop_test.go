package outbox_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"orderseal/internal/outbox"
	"orderseal/internal/outbox/sqlite"
)

// TestStopMidJob: a Runner stopped while a handler runs waits for it, then
// leaves the job pending with the attempt not counted and nothing given up,
// whatever the interrupted handler returned; a new Runner on the reopened
// database delivers it at once.
func TestStopMidJob(t *testing.T) {
	tests := []struct {
		name string
		// interrupted is what the handler returns once the runner's context ends.
		interrupted func(ctx context.Context) error
	}{
		{"handler honours the context", func(ctx context.Context) error { return ctx.Err() }},
		{"handler reports a transient error", func(context.Context) error { return errors.New("connection reset") }},
		{"handler reports a permanent error", func(context.Context) error { return outbox.Permanent(errors.New("refused")) }},
		{"handler ignores the context and succeeds late", func(context.Context) error {
			time.Sleep(100 * time.Millisecond)
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "o.db")
			db := openDB(t, path)
			ctx := context.Background()
			if err := sqlite.Enqueue(ctx, db, "send", "k1", []byte("body"), time.Now()); err != nil {
				t.Fatal(err)
			}
			// A job that failed once before, so the attempt count is visible.
			jobs, err := sqlite.New(db).Claim(ctx, time.Now(), 1)
			if err != nil || len(jobs) != 1 {
				t.Fatalf("claim %v %v", jobs, err)
			}
			if err := sqlite.New(db).Retry(ctx, jobs[0].ID, 1, "earlier", time.Now()); err != nil {
				t.Fatal(err)
			}

			started := make(chan struct{})
			var returned atomic.Bool
			var gaveUp atomic.Bool
			r := &outbox.Runner{Store: sqlite.New(db), Poll: 5 * time.Millisecond, MinBackoff: time.Millisecond,
				Handlers: map[string]outbox.Handler{"send": func(hctx context.Context, j outbox.Job) error {
					close(started)
					<-hctx.Done()
					defer returned.Store(true)
					return tt.interrupted(hctx)
				}},
				GiveUp: func(context.Context, outbox.Job, error) { gaveUp.Store(true) },
			}
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan struct{})
			go func() { r.Run(rctx); close(done) }()
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				t.Fatal("the job never started")
			}
			cancel()
			<-done
			if !returned.Load() {
				t.Fatal("Run returned while a handler was still running")
			}
			s, n := state(t, db, "k1")
			if s != "pending" || n != 1 || gaveUp.Load() {
				t.Fatalf("after the stop: %s, %d attempts, gave up %v; want pending, 1, false", s, n, gaveUp.Load())
			}
			db.Close()

			// The next process.
			db2 := openDB(t, path)
			var calls atomic.Int32
			r2 := &outbox.Runner{Store: sqlite.New(db2), Poll: 5 * time.Millisecond,
				Handlers: map[string]outbox.Handler{"send": func(_ context.Context, j outbox.Job) error {
					calls.Add(1)
					if j.Attempts != 1 || string(j.Payload) != "body" {
						t.Errorf("resumed job %+v", j)
					}
					return nil
				}}}
			rctx2, cancel2 := context.WithCancel(ctx)
			done2 := make(chan struct{})
			go func() { r2.Run(rctx2); close(done2) }()
			waitFor(t, "the resumed job", func() bool { s, _ := state(t, db2, "k1"); return s == "done" })
			cancel2()
			<-done2
			if s, n := state(t, db2, "k1"); s != "done" || n != 2 || calls.Load() != 1 {
				t.Fatalf("resumed: %s after %d attempts, %d calls", s, n, calls.Load())
			}
		})
	}
}
