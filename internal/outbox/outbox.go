// Package outbox is the durable work queue every orderseal daemon uses for
// calls to another party (DESIGN.md §8: "work between daemons goes through an
// outbox with retries and idempotency keys, so a killed daemon resumes where
// it was").
//
// A job is written in the same transaction as the state change that calls
// for it, so acknowledged work is never lost; a Runner then delivers due jobs
// with exponential backoff until the handler succeeds, fails permanently, or
// the attempts run out. Jobs are unique per (kind, key): the key is the
// idempotency key, so enqueueing twice is harmless, and handlers must be safe
// to run again (a crash between a handler's success and the job being marked
// done replays it), which the daemons get from idempotent PUTs on the far side.
// The jobs live behind Store; internal/outbox/sqlite is the SQLite backend,
// internal/outbox/postgres the PostgreSQL one, shared by several nodes; what
// they share is written once in internal/outbox/sqlout.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Job is one unit of work for another party.
type Job struct {
	ID       int64
	Kind     string
	Key      string // idempotency key, unique per kind
	Payload  []byte
	Attempts int // attempts made before this one
}

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so the Runner gives the job up at once instead of
// retrying it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err was wrapped by Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// Handler delivers one job. nil: done; Permanent(err): failed for good;
// any other error: retried after a backoff.
type Handler func(ctx context.Context, job Job) error

// Store is where jobs wait. A backend (internal/outbox/sqlite) keeps them in
// the daemon's own database and enqueues inside the daemon's transactions,
// so a job is written atomically with the state change that calls for it.
type Store interface {
	// Claim returns up to limit pending jobs due at now, earliest due first;
	// a backend shared by several nodes leases them so no other node claims them meanwhile.
	Claim(ctx context.Context, now time.Time, limit int) ([]Job, error)
	// Done marks a job delivered after attempts attempts.
	Done(ctx context.Context, id int64, attempts int) error
	// Retry records a failed attempt and when the job is next due.
	Retry(ctx context.Context, id int64, attempts int, lastErr string, next time.Time) error
	// Fail gives a job up for good (a dead letter, never retried).
	Fail(ctx context.Context, id int64, attempts int, lastErr string) error
	// Redrive puts a failed job (a dead letter) back to pending, due at now, with its attempts reset; it reports whether the job was failed.
	Redrive(ctx context.Context, id int64, now time.Time) (bool, error)
	// List returns the jobs in state ("": every state; see CheckState), oldest first, without payloads.
	List(ctx context.Context, state string) ([]Entry, error)
	// Count counts the jobs of kind ("": every kind) by state.
	Count(ctx context.Context, kind string) (Stats, error)
	// OldestPending returns when the oldest pending job was enqueued; ok is false when none is pending.
	OldestPending(ctx context.Context) (created time.Time, ok bool, err error)
}

// Runner delivers due jobs. Its zero value is not usable: set Store and Handlers.
type Runner struct {
	Store    Store
	Handlers map[string]Handler
	// GiveUp is called once when a job fails for good (a permanent error, or
	// MaxAttempts reached), so the owner can record the outcome.
	GiveUp func(ctx context.Context, job Job, err error)
	// Deadline, when set and not zero for a job, replaces MaxAttempts: a
	// retryable failure is retried, with capped backoff, until the next
	// attempt would fall past it (the job's work is valid until then: an
	// order's bundle, a grant, a hold).
	Deadline    func(ctx context.Context, job Job) time.Time
	MaxAttempts int           // 0: 12
	Poll        time.Duration // 0: 1 s; Kick wakes the runner sooner
	MinBackoff  time.Duration // 0: 250 ms
	MaxBackoff  time.Duration // 0: 1 min
	Workers     int           // 0: 4 jobs at a time
	Timeout     time.Duration // per attempt; 0: 30 s
	Logger      *slog.Logger
	Now         func() time.Time

	once sync.Once
	kick chan struct{}
}

func (r *Runner) init() {
	r.once.Do(func() {
		r.kick = make(chan struct{}, 1)
		if r.MaxAttempts == 0 {
			r.MaxAttempts = 12
		}
		if r.Poll == 0 {
			r.Poll = time.Second
		}
		if r.MinBackoff == 0 {
			r.MinBackoff = 250 * time.Millisecond
		}
		if r.MaxBackoff == 0 {
			r.MaxBackoff = time.Minute
		}
		if r.Workers == 0 {
			r.Workers = 4
		}
		if r.Timeout == 0 {
			r.Timeout = 30 * time.Second
		}
		if r.Logger == nil {
			r.Logger = slog.New(slog.DiscardHandler)
		}
		if r.Now == nil {
			r.Now = time.Now
		}
	})
}

// Kick asks the runner to look for due jobs now (after an Enqueue).
func (r *Runner) Kick() {
	r.init()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Backoff is the delay before attempt n+1 after n failures: exponential from
// MinBackoff, capped at MaxBackoff, with up to 25% jitter so retries of many
// jobs against one recovering peer spread out.
func (r *Runner) Backoff(n int) time.Duration {
	r.init()
	d := r.MinBackoff
	for i := 1; i < n && d < r.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.MaxBackoff)
	return d + time.Duration(rand.Int64N(int64(d)/4+1))
}

// Run delivers jobs until ctx ends. Jobs left pending by a previous process
// are picked up at once.
func (r *Runner) Run(ctx context.Context) {
	r.init()
	sem := make(chan struct{}, r.Workers)
	// A job stays in inflight until a poll that starts after its outcome
	// was written: a query begun while it ran may still list it as due.
	var (
		mu       sync.Mutex
		inflight = map[int64]bool{}
		finished []int64
		wg       sync.WaitGroup
	)
	defer wg.Wait()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.kick:
		}
		mu.Lock()
		for _, id := range finished {
			delete(inflight, id)
		}
		finished = finished[:0]
		mu.Unlock()
		// Claim only what free workers start at once: a lease runs from
		// its claim, so a job left waiting for a worker could outlive it
		// and be claimed, and run, by another node too. Only this loop
		// takes workers, so the free ones can only grow meanwhile; a
		// worker that finishes kicks the next poll.
		free := r.Workers - len(sem)
		if free == 0 {
			t.Reset(r.Poll)
			continue
		}
		jobs, err := r.Store.Claim(ctx, r.Now(), min(free, 64))
		if err != nil && ctx.Err() == nil {
			r.Logger.Error("outbox: reading due jobs", "err", err)
		}
		for _, j := range jobs {
			mu.Lock()
			busy := inflight[j.ID]
			inflight[j.ID] = true
			mu.Unlock()
			if busy {
				continue
			}
			sem <- struct{}{}
			wg.Add(1)
			go func(j Job) {
				defer wg.Done()
				r.attempt(ctx, j)
				mu.Lock()
				finished = append(finished, j.ID)
				mu.Unlock()
				<-sem
				r.Kick() // the job may have enqueued a follow-up
			}(j)
		}
		t.Reset(r.Poll)
	}
}

// attempt runs one job and records the outcome.
func (r *Runner) attempt(ctx context.Context, j Job) {
	h := r.Handlers[j.Kind]
	run := &running{id: j.ID, attempts: j.Attempts + 1}
	var err error
	if h == nil {
		err = Permanent(fmt.Errorf("no handler for job kind %q", j.Kind))
	} else {
		actx, cancel := context.WithTimeout(context.WithValue(ctx, runningKey{}, run), r.Timeout)
		err = safeRun(actx, h, j)
		cancel()
	}
	if ctx.Err() != nil {
		return // shutting down: the attempt does not count; the job stays due
	}
	n := run.attempts
	if err == nil {
		if !run.finished.Load() {
			r.mark(ctx, j, r.Store.Done(ctx, j.ID, n))
		}
		return
	}
	next := r.Now().Add(r.Backoff(n))
	if !IsPermanent(err) && !r.exhausted(ctx, j, n, next, &err) {
		r.Logger.Info("outbox: job will be retried", "kind", j.Kind, "key", j.Key, "attempts", n, "next", next.UTC().Format(time.RFC3339), "err", err)
		r.mark(ctx, j, r.Store.Retry(ctx, j.ID, n, err.Error(), next))
		return
	}
	r.Logger.Warn("outbox: job failed for good", "kind", j.Kind, "key", j.Key, "attempts", n, "err", err)
	r.mark(ctx, j, r.Store.Fail(ctx, j.ID, n, err.Error()))
	if r.GiveUp != nil {
		j.Attempts = n
		r.GiveUp(ctx, j, err)
	}
}

// exhausted reports whether a job that failed its nth attempt may not be
// tried at next: past its Deadline, or (without one) out of attempts. It
// says so in *err.
func (r *Runner) exhausted(ctx context.Context, j Job, n int, next time.Time, err *error) bool {
	if r.Deadline != nil {
		if d := r.Deadline(ctx, j); !d.IsZero() {
			if next.Before(d) {
				return false
			}
			*err = fmt.Errorf("%w (no answer until %s, after %d attempts)", *err, d.UTC().Format(time.RFC3339), n)
			return true
		}
	}
	return n >= r.MaxAttempts
}

// mark logs a failure to record a job's outcome.
func (r *Runner) mark(ctx context.Context, j Job, err error) {
	if err != nil && ctx.Err() == nil {
		// The job stays pending and runs again: handlers are idempotent.
		r.Logger.Error("outbox: recording job outcome", "kind", j.Kind, "key", j.Key, "err", err)
	}
}

// running is the attempt a handler's context carries (Running).
type running struct {
	id       int64
	attempts int // this one included
	finished atomic.Bool
}

type runningKey struct{}

// Running returns the job a handler's ctx is running and the attempts made
// with this one, for a store that marks it done in the transaction of the
// state change that finishes it (Finished): the change and the mark then
// commit together, one commit instead of two. ok is false outside a
// handler.
func Running(ctx context.Context) (id int64, attempts int, ok bool) {
	r, ok := ctx.Value(runningKey{}).(*running)
	if !ok {
		return 0, 0, false
	}
	return r.id, r.attempts, true
}

// Finished tells the Runner that the job ctx runs was marked done inside
// the handler's own transaction, so it writes no mark of its own when the
// handler succeeds. A handler that fails after all is retried as usual —
// a retry changes only a pending job, so a job whose mark committed stays
// done — which is why a handler marks its job only with its last write.
func Finished(ctx context.Context) {
	if r, ok := ctx.Value(runningKey{}).(*running); ok {
		r.finished.Store(true)
	}
}

// safeRun turns a handler panic into a permanent failure of that job rather
// than a crash of the daemon.
func safeRun(ctx context.Context, h Handler, j Job) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = Permanent(fmt.Errorf("handler panic: %v", p))
		}
	}()
	return h(ctx, j)
}

// Stats counts jobs by state.
type Stats struct{ Pending, Done, Failed int }

// States of a job.
const (
	StatePending = "pending"
	StateDone    = "done"
	StateFailed  = "failed" // the dead letters: given up for good, never retried
)

// Entry is a job as an operator sees it: never its payload.
type Entry struct {
	ID        int64
	Kind      string
	Key       string
	Attempts  int
	State     string
	NextAt    time.Time // when a pending job is next tried
	LastError string
	Created   time.Time
}

// CheckState refuses a state List does not know; "" (every state) is known.
func CheckState(state string) error {
	switch state {
	case "", StatePending, StateDone, StateFailed:
		return nil
	}
	return fmt.Errorf("outbox: unknown state %q", state)
}
