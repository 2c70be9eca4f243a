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
package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Migration creates the outbox table; a daemon appends it to its own
// numbered migrations.
const Migration = `
CREATE TABLE outbox (
	id         INTEGER PRIMARY KEY,
	kind       TEXT    NOT NULL,
	key        TEXT    NOT NULL,
	payload    BLOB,
	attempts   INTEGER NOT NULL DEFAULT 0,
	next_at    INTEGER NOT NULL,          -- unix ms
	last_error TEXT,
	state      TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','done','failed')),
	created    INTEGER NOT NULL,
	UNIQUE (kind, key)
);
CREATE INDEX outbox_due ON outbox (state, next_at);
`

// Job is one unit of work for another party.
type Job struct {
	ID       int64
	Kind     string
	Key      string // idempotency key, unique per kind
	Payload  []byte
	Attempts int // attempts made before this one
}

// Execer is a *sql.Tx or *sql.DB.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Enqueue records a job due at once. A job with the same kind and key is
// left as it is: enqueueing is idempotent.
func Enqueue(ctx context.Context, tx Execer, kind, key string, payload []byte, now time.Time) error {
	if kind == "" || key == "" {
		panic("outbox: empty kind or key")
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO outbox (kind, key, payload, next_at, created) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (kind, key) DO NOTHING`, kind, key, payload, now.UnixMilli(), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("outbox: enqueue %s: %w", kind, err)
	}
	return nil
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

// Runner delivers due jobs. Its zero value is not usable: set DB and Handlers.
type Runner struct {
	DB       *sql.DB
	Handlers map[string]Handler
	// GiveUp is called once when a job fails for good (a permanent error, or
	// MaxAttempts reached), so the owner can record the outcome.
	GiveUp      func(ctx context.Context, job Job, err error)
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
		jobs, err := r.due(ctx, 64)
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
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
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

func (r *Runner) due(ctx context.Context, limit int) ([]Job, error) {
	rows, err := r.DB.QueryContext(ctx, `SELECT id, kind, key, payload, attempts FROM outbox
		WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?`, r.Now().UnixMilli(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		var j Job
		if err := rows.Scan(&j.ID, &j.Kind, &j.Key, &j.Payload, &j.Attempts); err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// attempt runs one job and records the outcome.
func (r *Runner) attempt(ctx context.Context, j Job) {
	h := r.Handlers[j.Kind]
	var err error
	if h == nil {
		err = Permanent(fmt.Errorf("no handler for job kind %q", j.Kind))
	} else {
		actx, cancel := context.WithTimeout(ctx, r.Timeout)
		err = safeRun(actx, h, j)
		cancel()
	}
	if ctx.Err() != nil {
		return // shutting down: the attempt does not count; the job stays due
	}
	n := j.Attempts + 1
	switch {
	case err == nil:
		r.mark(ctx, j, `UPDATE outbox SET state = 'done', attempts = ?, last_error = NULL WHERE id = ?`, n, j.ID)
	case IsPermanent(err) || n >= r.MaxAttempts:
		r.Logger.Warn("outbox: job failed for good", "kind", j.Kind, "key", j.Key, "attempts", n, "err", err)
		r.mark(ctx, j, `UPDATE outbox SET state = 'failed', attempts = ?, last_error = ? WHERE id = ?`, n, err.Error(), j.ID)
		if r.GiveUp != nil {
			j.Attempts = n
			r.GiveUp(ctx, j, err)
		}
	default:
		next := r.Now().Add(r.Backoff(n))
		r.Logger.Info("outbox: job will be retried", "kind", j.Kind, "key", j.Key, "attempts", n, "err", err)
		r.mark(ctx, j, `UPDATE outbox SET attempts = ?, last_error = ?, next_at = ? WHERE id = ?`, n, err.Error(), next.UnixMilli(), j.ID)
	}
}

func (r *Runner) mark(ctx context.Context, j Job, q string, args ...any) {
	if _, err := r.DB.ExecContext(ctx, q, args...); err != nil && ctx.Err() == nil {
		// The job stays pending and runs again: handlers are idempotent.
		r.Logger.Error("outbox: recording job outcome", "kind", j.Kind, "key", j.Key, "err", err)
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

// Count returns the outbox's job counts.
func Count(ctx context.Context, db *sql.DB) (Stats, error) {
	var s Stats
	rows, err := db.QueryContext(ctx, `SELECT state, COUNT(*) FROM outbox GROUP BY state`)
	if err != nil {
		return s, err
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return s, err
		}
		switch state {
		case "pending":
			s.Pending = n
		case "done":
			s.Done = n
		case "failed":
			s.Failed = n
		}
	}
	return s, rows.Err()
}

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

// List returns the jobs in state ("" : every state), oldest first. Payloads
// are not read.
func List(ctx context.Context, db *sql.DB, state string) ([]Entry, error) {
	switch state {
	case "", StatePending, StateDone, StateFailed:
	default:
		return nil, fmt.Errorf("outbox: unknown state %q", state)
	}
	rows, err := db.QueryContext(ctx, `SELECT id, kind, key, attempts, state, next_at, COALESCE(last_error, ''), created
		FROM outbox WHERE ? = '' OR state = ? ORDER BY id`, state, state)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var next, created int64
		if err := rows.Scan(&e.ID, &e.Kind, &e.Key, &e.Attempts, &e.State, &next, &e.LastError, &created); err != nil {
			return nil, err
		}
		e.NextAt, e.Created = time.UnixMilli(next).UTC(), time.UnixMilli(created).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
