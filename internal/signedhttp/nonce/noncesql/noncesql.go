// Package noncesql keeps nonce.Store in a daemon's own SQLite database, so
// replay protection survives restarts and holds across every node of a
// role sharing that database (DESIGN.md §5 "Hardening"). Each role's
// SQLite backend appends Migration to its migrations and returns New(db).
package noncesql

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"orderseal/internal/signedhttp/nonce"
)

// Migration creates the tables: the nonces, and each caller's count of live
// ones (kept with them, so the quota costs one row read, not a count).
const Migration = `
CREATE TABLE signed_nonces (
	caller  TEXT NOT NULL,
	nonce   TEXT NOT NULL,
	expires INTEGER NOT NULL, -- unix milliseconds
	PRIMARY KEY (caller, nonce)
) WITHOUT ROWID;
CREATE INDEX signed_nonces_caller_expiry ON signed_nonces (caller, expires);
CREATE INDEX signed_nonces_expiry ON signed_nonces (expires);
CREATE TABLE signed_nonce_callers (
	caller TEXT PRIMARY KEY,
	live   INTEGER NOT NULL
) WITHOUT ROWID;
`

// PruneEvery is how often Record also deletes every expired nonce.
const PruneEvery = time.Minute

// Store is nonce.Store over a database that ran Migration.
type Store struct {
	db    *sql.DB
	quota nonce.Quota
	now   func() time.Time

	mu        sync.Mutex
	lastPrune time.Time
}

// New returns the store over db; quota nil means nonce.DefaultQuota, now
// nil time.Now.
func New(db *sql.DB, quota nonce.Quota, now func() time.Time) *Store {
	if quota == nil {
		quota = nonce.DefaultQuota
	}
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, quota: quota, now: now}
}

// Record implements nonce.Store in one transaction: insert the nonce (a
// conflict is a replay), then count it against the caller's quota; a caller
// at its quota first drops its own expired nonces.
func (s *Store) Record(ctx context.Context, caller, n string, expires time.Time) (err error) {
	now := s.now()
	if err := s.maybePrune(ctx, now); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("nonce store: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	res, err := tx.ExecContext(ctx, `INSERT INTO signed_nonces (caller, nonce, expires) VALUES (?, ?, ?)
		ON CONFLICT DO NOTHING`, caller, n, expires.UnixMilli())
	if err != nil {
		return fmt.Errorf("nonce store: %w", err)
	}
	if k, _ := res.RowsAffected(); k == 0 {
		var exp int64
		if err := tx.QueryRowContext(ctx, `SELECT expires FROM signed_nonces WHERE caller = ? AND nonce = ?`, caller, n).Scan(&exp); err != nil {
			return fmt.Errorf("nonce store: %w", err)
		}
		if exp > now.UnixMilli() {
			return nonce.ErrReplayed
		}
		// Expired but not yet pruned: no longer a replay.
		if _, err := tx.ExecContext(ctx, `UPDATE signed_nonces SET expires = ? WHERE caller = ? AND nonce = ?`,
			expires.UnixMilli(), caller, n); err != nil {
			return fmt.Errorf("nonce store: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE signed_nonce_callers SET live = live - 1 WHERE caller = ?`, caller); err != nil {
			return fmt.Errorf("nonce store: %w", err)
		}
	}
	q := s.quota(caller)
	for attempt := 0; ; attempt++ {
		res, err := tx.ExecContext(ctx, `INSERT INTO signed_nonce_callers (caller, live) VALUES (?, 1)
			ON CONFLICT (caller) DO UPDATE SET live = live + 1 WHERE live < ?`, caller, q)
		if err != nil {
			return fmt.Errorf("nonce store: %w", err)
		}
		if k, _ := res.RowsAffected(); k == 1 {
			break
		}
		if attempt > 0 {
			return nonce.ErrQuota
		}
		res, err = tx.ExecContext(ctx, `DELETE FROM signed_nonces WHERE caller = ? AND expires <= ?`, caller, now.UnixMilli())
		if err != nil {
			return fmt.Errorf("nonce store: %w", err)
		}
		k, _ := res.RowsAffected()
		if k == 0 {
			return nonce.ErrQuota
		}
		if _, err := tx.ExecContext(ctx, `UPDATE signed_nonce_callers SET live = live - ? WHERE caller = ?`, k, caller); err != nil {
			return fmt.Errorf("nonce store: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("nonce store: %w", err)
	}
	return nil
}

// maybePrune deletes every expired nonce at most once per PruneEvery.
func (s *Store) maybePrune(ctx context.Context, now time.Time) error {
	s.mu.Lock()
	due := now.Sub(s.lastPrune) >= PruneEvery
	if due {
		s.lastPrune = now
	}
	s.mu.Unlock()
	if !due {
		return nil
	}
	return s.Prune(ctx)
}

// Prune deletes every expired nonce and the counts they held.
func (s *Store) Prune(ctx context.Context) error {
	now := s.now().UnixMilli()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("nonce store: %w", err)
	}
	defer tx.Rollback()
	for _, q := range []string{
		`UPDATE signed_nonce_callers SET live = live - (SELECT COUNT(*) FROM signed_nonces n
			WHERE n.caller = signed_nonce_callers.caller AND n.expires <= ?1)
			WHERE caller IN (SELECT DISTINCT caller FROM signed_nonces WHERE expires <= ?1)`,
		`DELETE FROM signed_nonces WHERE expires <= ?1`,
		`DELETE FROM signed_nonce_callers WHERE live <= 0`,
	} {
		if _, err := tx.ExecContext(ctx, q, now); err != nil {
			return fmt.Errorf("nonce store: prune: %w", err)
		}
	}
	return tx.Commit()
}
