// Package sqlite keeps the outbox (package outbox, DESIGN.md §8) in a
// daemon's own SQLite database: the table migration a daemon appends to its
// own, Enqueue for use inside the daemon's transactions, and the
// outbox.Store the Runner and the CLIs read.
package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"orderseal/internal/outbox"
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
// is left as it is: enqueueing is idempotent.
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

// Store is the outbox table of one database. Safe for concurrent use.
type Store struct{ db *sql.DB }

var _ outbox.Store = (*Store)(nil)

// New serves the outbox table of db, which the owner has migrated with
// Migration and keeps open while the Store is used.
func New(db *sql.DB) *Store { return &Store{db: db} }

// Claim returns up to limit pending jobs due at now, earliest due first. One
// process owns a SQLite database, so no lease is needed: the Runner itself
// keeps a job from running twice at once.
func (s *Store) Claim(ctx context.Context, now time.Time, limit int) ([]outbox.Job, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, kind, key, payload, attempts FROM outbox
		WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?`, now.UnixMilli(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []outbox.Job
	for rows.Next() {
		var j outbox.Job
		if err := rows.Scan(&j.ID, &j.Kind, &j.Key, &j.Payload, &j.Attempts); err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// Done marks a job delivered.
//
// The mark is committed unsynced (sqlitex.ExecUnsynced): it survives a kill
// of the daemon at once, and a power cut with the daemon's next durable
// write; a mark lost to a power cut before that runs the job again, which
// handlers take (they are idempotent), and costs no fsync per job.
func (s *Store) Done(ctx context.Context, id int64, attempts int) error {
	_, err := sqlitex.ExecUnsynced(ctx, s.db, `UPDATE outbox SET state = 'done', attempts = ?, last_error = NULL WHERE id = ?`, attempts, id)
	return err
}

// Retry records a failed attempt and the next due time.
func (s *Store) Retry(ctx context.Context, id int64, attempts int, lastErr string, next time.Time) error {
	_, err := s.db.ExecContext(ctx, `UPDATE outbox SET attempts = ?, last_error = ?, next_at = ? WHERE id = ?`,
		attempts, lastErr, next.UnixMilli(), id)
	return err
}

// Fail gives a job up for good.
func (s *Store) Fail(ctx context.Context, id int64, attempts int, lastErr string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE outbox SET state = 'failed', attempts = ?, last_error = ? WHERE id = ?`,
		attempts, lastErr, id)
	return err
}

// Redrive puts a dead letter back to pending, due at now, attempts reset.
func (s *Store) Redrive(ctx context.Context, id int64, now time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE outbox SET state = 'pending', attempts = 0, next_at = ? WHERE id = ? AND state = 'failed'`,
		now.UnixMilli(), id)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// List returns the jobs in state ("": every state), oldest first. Payloads
// are not read.
func (s *Store) List(ctx context.Context, state string) ([]outbox.Entry, error) {
	if err := outbox.CheckState(state); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, kind, key, attempts, state, next_at, COALESCE(last_error, ''), created
		FROM outbox WHERE ? = '' OR state = ? ORDER BY id`, state, state)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []outbox.Entry
	for rows.Next() {
		var e outbox.Entry
		var next, created int64
		if err := rows.Scan(&e.ID, &e.Kind, &e.Key, &e.Attempts, &e.State, &next, &e.LastError, &created); err != nil {
			return nil, err
		}
		e.NextAt, e.Created = time.UnixMilli(next).UTC(), time.UnixMilli(created).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// Count counts the jobs of kind ("": every kind) by state.
func (s *Store) Count(ctx context.Context, kind string) (outbox.Stats, error) {
	var st outbox.Stats
	// Two statements so each uses its index: (state, next_at) covers the
	// first, (kind, key) narrows the second.
	q, args := `SELECT state, COUNT(*) FROM outbox GROUP BY state`, []any(nil)
	if kind != "" {
		q, args = `SELECT state, COUNT(*) FROM outbox WHERE kind = ? GROUP BY state`, []any{kind}
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
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
	var created sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MIN(created) FROM outbox WHERE state = 'pending'`).Scan(&created); err != nil {
		return time.Time{}, false, err
	}
	if !created.Valid {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(created.Int64).UTC(), true, nil
}
