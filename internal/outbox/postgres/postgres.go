// Package postgres keeps the outbox (package outbox, DESIGN.md §8, §9) in a
// PostgreSQL database shared by every node of a daemon: the table migration
// a daemon appends to its own, Enqueue for use inside the daemon's
// transactions, and the outbox.Store the Runner and the CLIs read.
//
// Several nodes claim from one table. A claim takes due jobs with FOR
// UPDATE SKIP LOCKED and leases them to the claiming node until now plus
// Lease; no other node claims a leased job until the lease expires, so the
// jobs of a node that was killed are taken over by another once their
// lease runs out. A node's own claims renew its leases (the Runner polls
// every second and skips the jobs it is running). Jobs are unique per
// (kind, key) by a constraint, never by a process-local check.
package postgres

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"orderseal/internal/outbox"
)

// Migration creates the outbox table; a daemon appends it to its own
// numbered migrations. Times are unix milliseconds, as in the SQLite backend.
const Migration = `
CREATE TABLE outbox (
	id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind        TEXT    NOT NULL,
	key         TEXT    NOT NULL,
	payload     BYTEA,
	attempts    INTEGER NOT NULL DEFAULT 0,
	next_at     BIGINT  NOT NULL,
	last_error  TEXT,
	state       TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','done','failed')),
	created     BIGINT  NOT NULL,
	lease_owner TEXT,   -- the node that claimed the job
	lease_until BIGINT, -- no other node claims it before then
	UNIQUE (kind, key)
);
CREATE INDEX outbox_due ON outbox (next_at, id) WHERE state = 'pending';
CREATE INDEX outbox_state ON outbox (state);
`

// DefaultLease is how long a claim keeps a job from other nodes: longer
// than the Runner's 30 s per attempt, so a live node's job is never taken
// over while it runs, short enough that a dead node's jobs resume soon.
const DefaultLease = 2 * time.Minute

// Execer is a pgx.Tx, *pgx.Conn or *pgxpool.Pool.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Enqueue records a job due at once, inside tx so it commits or rolls back
// with the state change that calls for it. A job with the same kind and key
// is left as it is: enqueueing is idempotent.
func Enqueue(ctx context.Context, tx Execer, kind, key string, payload []byte, now time.Time) error {
	if kind == "" || key == "" {
		panic("outbox: empty kind or key")
	}
	_, err := tx.Exec(ctx, `INSERT INTO outbox (kind, key, payload, next_at, created) VALUES ($1, $2, $3, $4, $4)
		ON CONFLICT (kind, key) DO NOTHING`, kind, key, payload, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("outbox: enqueue %s: %w", kind, err)
	}
	return nil
}

// Store is the outbox table as one node sees it. Safe for concurrent use.
type Store struct {
	pool  *pgxpool.Pool
	node  string
	lease time.Duration
}

var _ outbox.Store = (*Store)(nil)

// Option tunes New.
type Option func(*Store)

// Node names the node in its leases (default: host name and a random suffix,
// unique per process).
func Node(name string) Option { return func(s *Store) { s.node = name } }

// Lease sets how long a claim holds a job (default DefaultLease).
func Lease(d time.Duration) Option { return func(s *Store) { s.lease = d } }

// New serves the outbox table of pool, which the owner has migrated with
// Migration and keeps open while the Store is used.
func New(pool *pgxpool.Pool, opts ...Option) *Store {
	s := &Store{pool: pool, lease: DefaultLease}
	for _, o := range opts {
		o(s)
	}
	if s.node == "" {
		host, _ := os.Hostname()
		b := make([]byte, 6)
		rand.Read(b)
		s.node = host + "/" + hex.EncodeToString(b)
	}
	return s
}

// NodeName is the name this Store leases jobs under.
func (s *Store) NodeName() string { return s.node }

// Claim leases up to limit pending jobs due at now, earliest due first:
// those no node holds, those whose lease expired at now, and this node's
// own (renewed). Rows another transaction is claiming are skipped.
func (s *Store) Claim(ctx context.Context, now time.Time, limit int) ([]outbox.Job, error) {
	ms := now.UnixMilli()
	rows, err := s.pool.Query(ctx, `WITH due AS (
			SELECT id FROM outbox
			WHERE state = 'pending' AND next_at <= $1
				AND (lease_until IS NULL OR lease_until <= $1 OR lease_owner = $2)
			ORDER BY next_at, id LIMIT $3
			FOR UPDATE SKIP LOCKED)
		UPDATE outbox o SET lease_owner = $2, lease_until = $4 FROM due WHERE o.id = due.id
		RETURNING o.id, o.kind, o.key, o.payload, o.attempts, o.next_at`,
		ms, s.node, limit, ms+s.lease.Milliseconds())
	if err != nil {
		return nil, err
	}
	type due struct {
		job outbox.Job
		at  int64
	}
	var ds []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.job.ID, &d.job.Kind, &d.job.Key, &d.job.Payload, &d.job.Attempts, &d.at); err != nil {
			rows.Close()
			return nil, err
		}
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// RETURNING keeps no order.
	slices.SortFunc(ds, func(a, b due) int {
		return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.job.ID, b.job.ID))
	})
	out := make([]outbox.Job, len(ds))
	for i, d := range ds {
		out[i] = d.job
	}
	return out, nil
}

// Done marks a job delivered, whichever node delivered it.
func (s *Store) Done(ctx context.Context, id int64, attempts int) error {
	_, err := s.pool.Exec(ctx, `UPDATE outbox SET state = 'done', attempts = $1, last_error = NULL,
		lease_owner = NULL, lease_until = NULL WHERE id = $2`, attempts, id)
	return err
}

// Retry records a failed attempt and the next due time, and releases the
// lease. A node whose lease another node took over records nothing: the
// job is that node's now.
func (s *Store) Retry(ctx context.Context, id int64, attempts int, lastErr string, next time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE outbox SET attempts = $1, last_error = $2, next_at = $3,
		lease_owner = NULL, lease_until = NULL
		WHERE id = $4 AND state = 'pending' AND (lease_owner IS NULL OR lease_owner = $5)`,
		attempts, lastErr, next.UnixMilli(), id, s.node)
	return err
}

// Fail gives a pending job up for good; a job already done stays done.
func (s *Store) Fail(ctx context.Context, id int64, attempts int, lastErr string) error {
	_, err := s.pool.Exec(ctx, `UPDATE outbox SET state = 'failed', attempts = $1, last_error = $2,
		lease_owner = NULL, lease_until = NULL WHERE id = $3 AND state = 'pending'`, attempts, lastErr, id)
	return err
}

// Redrive puts a dead letter back to pending, due at now, attempts reset.
func (s *Store) Redrive(ctx context.Context, id int64, now time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE outbox SET state = 'pending', attempts = 0, next_at = $1,
		lease_owner = NULL, lease_until = NULL WHERE id = $2 AND state = 'failed'`, now.UnixMilli(), id)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// List returns the jobs in state ("": every state), oldest first. Payloads
// are not read.
func (s *Store) List(ctx context.Context, state string) ([]outbox.Entry, error) {
	if err := outbox.CheckState(state); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT id, kind, key, attempts, state, next_at, COALESCE(last_error, ''), created
		FROM outbox WHERE $1 = '' OR state = $1 ORDER BY id`, state)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (outbox.Entry, error) {
		var e outbox.Entry
		var next, created int64
		err := r.Scan(&e.ID, &e.Kind, &e.Key, &e.Attempts, &e.State, &next, &e.LastError, &created)
		e.NextAt, e.Created = time.UnixMilli(next).UTC(), time.UnixMilli(created).UTC()
		return e, err
	})
}

// Count counts the jobs of kind ("": every kind) by state.
func (s *Store) Count(ctx context.Context, kind string) (outbox.Stats, error) {
	var st outbox.Stats
	rows, err := s.pool.Query(ctx, `SELECT state, COUNT(*) FROM outbox WHERE $1 = '' OR kind = $1 GROUP BY state`, kind)
	if err != nil {
		return st, err
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return st, err
		}
		switch state {
		case outbox.StatePending:
			st.Pending = n
		case outbox.StateDone:
			st.Done = n
		case outbox.StateFailed:
			st.Failed = n
		}
	}
	return st, rows.Err()
}

// OldestPending returns when the oldest pending job was enqueued.
func (s *Store) OldestPending(ctx context.Context) (time.Time, bool, error) {
	var created *int64
	if err := s.pool.QueryRow(ctx, `SELECT MIN(created) FROM outbox WHERE state = 'pending'`).Scan(&created); err != nil {
		return time.Time{}, false, err
	}
	if created == nil {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(*created).UTC(), true, nil
}
