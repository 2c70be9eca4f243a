// Package sqlout is the outbox (package outbox, DESIGN.md §8, §9) written
// once against internal/sqldb: Enqueue for use inside a daemon's
// transactions, and the statements every backend shares — retries, dead
// letters, redrives, listing and counts. The backend packages
// (internal/outbox/sqlite, internal/outbox/postgres) keep their table
// migration and what is truly theirs: the claim (one process owns a SQLite
// database; PostgreSQL nodes lease jobs with FOR UPDATE SKIP LOCKED) and, on
// SQLite, the unsynced done-marks.
//
// A PostgreSQL outbox table has lease columns (lease_owner, lease_until);
// a SQLite one has none. Every change of a job's state releases its lease
// there, and a retry is recorded only by the node holding the job.
package sqlout

import (
	"context"
	"fmt"
	"time"

	"orderseal/internal/outbox"
	"orderseal/internal/sqldb"
)

// EnqueueQuery is the statement Enqueue runs, in sqldb's numbered form,
// for the backends' own Enqueue on their driver's transaction type; its
// arguments are EnqueueArgs'.
const EnqueueQuery = `INSERT INTO outbox (kind, key, payload, next_at, created) VALUES ($1, $2, $3, $4, $4)
	ON CONFLICT (kind, key) DO NOTHING`

// EnqueueArgs returns EnqueueQuery's arguments. An empty kind or key is a
// programming error: it panics.
func EnqueueArgs(kind, key string, payload []byte, now time.Time) []any {
	if kind == "" || key == "" {
		panic("outbox: empty kind or key")
	}
	return []any{kind, key, payload, now.UnixMilli()}
}

// EnqueueError names the job in an error EnqueueQuery returned (nil stays nil).
func EnqueueError(kind string, err error) error {
	if err != nil {
		return fmt.Errorf("outbox: enqueue %s: %w", kind, err)
	}
	return nil
}

// Enqueue records a job due at once, inside tx so it commits or rolls back
// with the state change that calls for it. A job with the same kind and key
// is left as it is: enqueueing is idempotent.
func Enqueue(ctx context.Context, tx sqldb.Tx, kind, key string, payload []byte, now time.Time) error {
	_, err := tx.Exec(ctx, EnqueueQuery, EnqueueArgs(kind, key, payload, now)...)
	return EnqueueError(kind, err)
}

// FinishIn marks the job the handler's ctx runs (outbox.Running) done
// inside tx, the transaction of the state change that finishes it, and
// tells the Runner so (outbox.Finished); outside a handler it does
// nothing. Call it with a handler's last write only: once its transaction
// commits the job is done, whatever the handler does next.
func FinishIn(ctx context.Context, tx sqldb.Tx) error {
	id, attempts, ok := outbox.Running(ctx)
	if !ok {
		return nil
	}
	if _, err := tx.Exec(ctx, doneQuery(tx.Dialect() == sqldb.Postgres), attempts, id); err != nil {
		return fmt.Errorf("outbox: marking job %d done: %w", id, err)
	}
	outbox.Finished(ctx)
	return nil
}

// doneQuery marks a job done ($1 attempts, $2 id), releasing its lease in
// a table that has one.
func doneQuery(leased bool) string {
	return `UPDATE outbox SET state = 'done', attempts = $1, last_error = NULL` + releaseClause(leased) + ` WHERE id = $2`
}

// releaseClause clears a job's lease in a table that has lease columns.
func releaseClause(leased bool) string {
	if leased {
		return `, lease_owner = NULL, lease_until = NULL`
	}
	return ""
}

// Store is the outbox table of one database, without Claim, which each
// backend adds. Safe for concurrent use.
type Store struct {
	db   sqldb.DB
	node string
	// leased: the table has lease columns (PostgreSQL).
	leased bool
	// markDone runs the done-mark; db.Exec unless the backend commits it
	// otherwise.
	markDone func(ctx context.Context, query string, args ...any) error
	done     string
	retry    string
	fail     string
	redrive  string
}

// Option tunes New.
type Option func(*Store)

// MarkDone makes Done run its statement (sqldb's numbered form) with exec
// instead of the database's Exec: SQLite commits the marks unsynced.
func MarkDone(exec func(ctx context.Context, query string, args ...any) error) Option {
	return func(s *Store) { s.markDone = exec }
}

// New serves the outbox table of db, which the owner has migrated with its
// backend's Migration and keeps open while the Store is used. On
// PostgreSQL node is the name this node's leases carry; SQLite's table has
// no leases and ignores it.
func New(db sqldb.DB, node string, opts ...Option) *Store {
	s := &Store{db: db, node: node, leased: db.Dialect() == sqldb.Postgres}
	s.markDone = func(ctx context.Context, q string, args ...any) error {
		_, err := db.Exec(ctx, q, args...)
		return err
	}
	for _, o := range opts {
		o(s)
	}
	release := releaseClause(s.leased)
	s.done = doneQuery(s.leased)
	s.retry = `UPDATE outbox SET attempts = $1, last_error = $2, next_at = $3` + release + ` WHERE id = $4 AND state = 'pending'`
	if s.leased {
		s.retry += ` AND (lease_owner IS NULL OR lease_owner = $5)`
	}
	s.fail = `UPDATE outbox SET state = 'failed', attempts = $1, last_error = $2` + release + ` WHERE id = $3 AND state = 'pending'`
	s.redrive = `UPDATE outbox SET state = 'pending', attempts = 0, next_at = $1` + release + ` WHERE id = $2 AND state = 'failed'`
	return s
}

// DB is the database the Store serves, for the backend's Claim.
func (s *Store) DB() sqldb.DB { return s.db }

// Node is the name this Store leases jobs under ("" on SQLite).
func (s *Store) Node() string { return s.node }

// Done marks a job delivered, whichever node delivered it.
func (s *Store) Done(ctx context.Context, id int64, attempts int) error {
	return s.markDone(ctx, s.done, attempts, id)
}

// Retry records a failed attempt and the next due time of a pending job,
// and releases its lease. A node whose lease another node took over
// records nothing: the job is that node's now.
func (s *Store) Retry(ctx context.Context, id int64, attempts int, lastErr string, next time.Time) error {
	args := []any{attempts, lastErr, next.UnixMilli(), id}
	if s.leased {
		args = append(args, s.node)
	}
	_, err := s.db.Exec(ctx, s.retry, args...)
	return err
}

// Fail gives a pending job up for good; a job already done stays done.
func (s *Store) Fail(ctx context.Context, id int64, attempts int, lastErr string) error {
	_, err := s.db.Exec(ctx, s.fail, attempts, lastErr, id)
	return err
}

// Redrive puts a dead letter back to pending, due at now, attempts reset.
func (s *Store) Redrive(ctx context.Context, id int64, now time.Time) (bool, error) {
	n, err := s.db.Exec(ctx, s.redrive, now.UnixMilli(), id)
	return n == 1, err
}

// List returns the jobs in state ("": every state), oldest first. Payloads
// are not read.
func (s *Store) List(ctx context.Context, state string) ([]outbox.Entry, error) {
	if err := outbox.CheckState(state); err != nil {
		return nil, err
	}
	return sqldb.Collect(ctx, s.db, func(r sqldb.Row) (outbox.Entry, error) {
		var e outbox.Entry
		var next, created int64
		err := r.Scan(&e.ID, &e.Kind, &e.Key, &e.Attempts, &e.State, &next, &e.LastError, &created)
		e.NextAt, e.Created = time.UnixMilli(next).UTC(), time.UnixMilli(created).UTC()
		return e, err
	}, `SELECT id, kind, key, attempts, state, next_at, COALESCE(last_error, ''), created
		FROM outbox WHERE $1 = '' OR state = $1 ORDER BY id`, state)
}

// Count counts the jobs of kind ("": every kind) by state.
func (s *Store) Count(ctx context.Context, kind string) (outbox.Stats, error) {
	var st outbox.Stats
	// Two statements so each uses its index: the state index covers the
	// first, (kind, key) narrows the second.
	q, args := `SELECT state, COUNT(*) FROM outbox GROUP BY state`, []any(nil)
	if kind != "" {
		q, args = `SELECT state, COUNT(*) FROM outbox WHERE kind = $1 GROUP BY state`, []any{kind}
	}
	err := sqldb.Each(ctx, s.db, func(r sqldb.Row) error {
		var state string
		var n int
		if err := r.Scan(&state, &n); err != nil {
			return err
		}
		switch state {
		case outbox.StatePending:
			st.Pending = n
		case outbox.StateDone:
			st.Done = n
		case outbox.StateFailed:
			st.Failed = n
		}
		return nil
	}, q, args...)
	return st, err
}

// OldestPending returns when the oldest pending job was enqueued.
func (s *Store) OldestPending(ctx context.Context) (time.Time, bool, error) {
	var created *int64
	if err := s.db.QueryRow(ctx, `SELECT MIN(created) FROM outbox WHERE state = 'pending'`).Scan(&created); err != nil {
		return time.Time{}, false, err
	}
	if created == nil {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(*created).UTC(), true, nil
}
