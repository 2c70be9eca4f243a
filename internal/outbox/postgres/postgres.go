// Package postgres keeps the outbox (package outbox, DESIGN.md §8, §9) in a
// PostgreSQL database shared by every node of a daemon: the table migration
// a daemon appends to its own, Enqueue for use inside the daemon's
// transactions, and the outbox.Store the Runner and the CLIs read. What
// PostgreSQL and SQLite share is package sqlout; here is the leased claim.
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
	"os"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"orderseal/internal/outbox"
	"orderseal/internal/outbox/sqlout"
	"orderseal/internal/pgdb"
	"orderseal/internal/sqldb"
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
// is left as it is: enqueueing is idempotent. Code written against sqldb
// calls sqlout.Enqueue instead.
func Enqueue(ctx context.Context, tx Execer, kind, key string, payload []byte, now time.Time) error {
	_, err := tx.Exec(ctx, sqlout.EnqueueQuery, sqlout.EnqueueArgs(kind, key, payload, now)...)
	return sqlout.EnqueueError(kind, err)
}

// Store is the outbox table as one node sees it. Safe for concurrent use.
type Store struct {
	*sqlout.Store
	lease time.Duration
}

var _ outbox.Store = (*Store)(nil)

type config struct {
	node  string
	lease time.Duration
}

// Option tunes New.
type Option func(*config)

// Node names the node in its leases (default: host name and a random suffix,
// unique per process).
func Node(name string) Option { return func(c *config) { c.node = name } }

// Lease sets how long a claim holds a job (default DefaultLease).
func Lease(d time.Duration) Option { return func(c *config) { c.lease = d } }

// New serves the outbox table of pool, which the owner has migrated with
// Migration and keeps open while the Store is used.
func New(pool *pgxpool.Pool, opts ...Option) *Store {
	c := config{lease: DefaultLease}
	for _, o := range opts {
		o(&c)
	}
	if c.node == "" {
		host, _ := os.Hostname()
		b := make([]byte, 6)
		rand.Read(b)
		c.node = host + "/" + hex.EncodeToString(b)
	}
	return &Store{Store: sqlout.New(pgdb.Wrap(pool), c.node), lease: c.lease}
}

// NodeName is the name this Store leases jobs under.
func (s *Store) NodeName() string { return s.Node() }

// Claim leases up to limit pending jobs due at now, earliest due first:
// those no node holds, those whose lease expired at now, and this node's
// own (renewed). Rows another transaction is claiming are skipped.
func (s *Store) Claim(ctx context.Context, now time.Time, limit int) ([]outbox.Job, error) {
	type due struct {
		job outbox.Job
		at  int64
	}
	ms := now.UnixMilli()
	ds, err := sqldb.Collect(ctx, s.DB(), func(r sqldb.Row) (due, error) {
		var d due
		err := r.Scan(&d.job.ID, &d.job.Kind, &d.job.Key, &d.job.Payload, &d.job.Attempts, &d.at)
		return d, err
	}, `WITH due AS (
			SELECT id FROM outbox
			WHERE state = 'pending' AND next_at <= $1
				AND (lease_until IS NULL OR lease_until <= $1 OR lease_owner = $2)
			ORDER BY next_at, id LIMIT $3
			FOR UPDATE SKIP LOCKED)
		UPDATE outbox o SET lease_owner = $2, lease_until = $4 FROM due WHERE o.id = due.id
		RETURNING o.id, o.kind, o.key, o.payload, o.attempts, o.next_at`,
		ms, s.Node(), limit, ms+s.lease.Milliseconds())
	if err != nil {
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
