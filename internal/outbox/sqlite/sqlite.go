// Package sqlite keeps the outbox (package outbox, DESIGN.md §8) in a
// daemon's own SQLite database: the table migration a daemon appends to its
// own, Enqueue for use inside the daemon's transactions, and the
// outbox.Store the Runner and the CLIs read. What SQLite and PostgreSQL
// share is package sqlout; here are the claim and the unsynced done-marks.
package sqlite

import (
	"context"
	"database/sql"
	"time"

	"orderseal/internal/outbox"
	"orderseal/internal/outbox/sqlout"
	"orderseal/internal/sqldb"
	"orderseal/internal/sqlitex"
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

// Execer is a *sql.Tx or *sql.DB.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Enqueue records a job due at once, inside tx so it commits or rolls back
// with the state change that calls for it. A job with the same kind and key
// is left as it is: enqueueing is idempotent. Code written against sqldb
// calls sqlout.Enqueue instead.
func Enqueue(ctx context.Context, tx Execer, kind, key string, payload []byte, now time.Time) error {
	_, err := tx.ExecContext(ctx, sqldb.SQLiteQuery(sqlout.EnqueueQuery), sqlout.EnqueueArgs(kind, key, payload, now)...)
	return sqlout.EnqueueError(kind, err)
}

// Store is the outbox table of one database. Safe for concurrent use.
type Store struct{ *sqlout.Store }

var _ outbox.Store = (*Store)(nil)

// New serves the outbox table of db, which the owner has migrated with
// Migration and keeps open while the Store is used.
//
// Done's mark is committed unsynced (sqlitex.ExecUnsynced): it survives a
// kill of the daemon at once, and a power cut with the daemon's next
// durable write; a mark lost to a power cut before that runs the job
// again, which handlers take (they are idempotent), and costs no fsync per
// job.
func New(db *sql.DB) *Store {
	return &Store{sqlout.New(sqlitex.Wrap(db), "", sqlout.MarkDone(func(ctx context.Context, q string, args ...any) error {
		_, err := sqlitex.ExecUnsynced(ctx, db, sqldb.SQLiteQuery(q), args...)
		return err
	}))}
}

// Claim returns up to limit pending jobs due at now, earliest due first. One
// process owns a SQLite database, so no lease is needed: the Runner itself
// keeps a job from running twice at once.
//
// The limit is bound as CAST($2 AS INTEGER), not as a bare parameter:
// SQLite reads a bare LIMIT parameter's value while it plans the statement
// and recompiles the statement whenever the value bound to it changes, and
// the Runner asks for as many jobs as it has free workers, a different
// number from one poll to the next (TestClaimCompilesOnce).
func (s *Store) Claim(ctx context.Context, now time.Time, limit int) ([]outbox.Job, error) {
	return sqldb.Collect(ctx, s.DB(), func(r sqldb.Row) (outbox.Job, error) {
		var j outbox.Job
		err := r.Scan(&j.ID, &j.Kind, &j.Key, &j.Payload, &j.Attempts)
		return j, err
	}, `SELECT id, kind, key, payload, attempts FROM outbox
		WHERE state = 'pending' AND next_at <= $1 ORDER BY next_at, id LIMIT CAST($2 AS INTEGER)`, now.UnixMilli(), limit)
}
