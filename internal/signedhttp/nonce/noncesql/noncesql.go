// Package noncesql keeps nonce.Store in a daemon's own SQLite database, so
// replay protection survives restarts and holds across every node of a
// role sharing that database (DESIGN.md §5 "Hardening"). Each role's
// SQLite backend appends Migration to its migrations and hands out New(db,
// quota) as its store's Nonces.
//
// Records are group-committed: the requests that arrive while one
// transaction commits are recorded together in the next. A batch commits
// with synchronous=NORMAL (the WAL is not synced at its commit): it
// survives a crash or restart of the process as soon as it commits, and a
// power cut as soon as the next synchronous=FULL commit on the database —
// the request's own durable write, before the request is answered — syncs
// the WAL, whose frames reach the disk in order. So whatever a daemon
// acknowledges has its nonce on disk too, and the replay check costs no
// sync of its own. (A request that writes nothing, a read, may be
// replayed after a power cut; it changes nothing either.)
package noncesql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"

	"orderseal/internal/signedhttp/nonce"
)

// Migration creates the tables: the nonces, and each caller's count of the
// rows it holds (kept with them, so the quota costs one row read, not a
// count).
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
	held   INTEGER NOT NULL -- rows of signed_nonces with this caller, expired ones not yet pruned among them
) WITHOUT ROWID;
`

// PruneEvery is how often a batch also deletes every expired nonce.
const PruneEvery = time.Minute

// maxBatch bounds the records of one transaction.
const maxBatch = 512

// Store is nonce.Store over a database that ran Migration.
type Store struct {
	db     *sql.DB
	quota  nonce.Quota
	writes sync.Locker // nil: none; see WriteLock

	mu        sync.Mutex
	queue     []*record
	leading   bool // a goroutine is committing the queue
	lastPrune time.Time
}

// record is one Record call waiting for its batch.
type record struct {
	caller, nonce string
	now, expires  int64 // unix milliseconds
	quota         int
	done          chan error // buffered: the batch never blocks on a caller that left
}

// Option tunes New.
type Option func(*Store)

// WriteLock makes each batch hold l while it writes: a database whose
// pool has several connections gives the lock its other writers hold, so
// the writers of one process queue in Go, in order, instead of in SQLite's
// busy handler, which sleeps up to 100 ms between retries. (A database
// with one connection, sqlitex.Serialized, queues them already.)
func WriteLock(l sync.Locker) Option { return func(s *Store) { s.writes = l } }

// New returns the store over db, each caller holding at most quota(caller)
// live nonces; quota nil means nonce.DefaultQuota.
func New(db *sql.DB, quota nonce.Quota, opts ...Option) *Store {
	if quota == nil {
		quota = nonce.DefaultQuota
	}
	s := &Store{db: db, quota: quota}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Record implements nonce.Store. It joins the next batch and waits for its
// commit; a failed batch fails every record in it (the requests are then
// refused, and their callers retry with fresh nonces).
func (s *Store) Record(ctx context.Context, caller, n string, now, expires time.Time) error {
	r := &record{caller: caller, nonce: n, now: now.UnixMilli(), expires: expires.UnixMilli(),
		quota: s.quota(caller), done: make(chan error, 1)}
	s.mu.Lock()
	s.queue = append(s.queue, r)
	lead := !s.leading
	s.leading = true
	s.mu.Unlock()
	if lead {
		s.commitNext(context.WithoutCancel(ctx))
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// commitNext commits one batch from the queue; while more wait, another
// goroutine commits the next, so no caller keeps committing for others.
func (s *Store) commitNext(ctx context.Context) {
	s.mu.Lock()
	batch := s.queue[:min(len(s.queue), maxBatch)]
	s.queue = s.queue[len(batch):]
	prune := false
	if now := time.UnixMilli(batch[0].now); now.Sub(s.lastPrune) >= PruneEvery {
		s.lastPrune, prune = now, true
	}
	s.mu.Unlock()

	results, err := s.commit(ctx, batch, prune)
	for i, r := range batch {
		if err != nil {
			r.done <- err
		} else {
			r.done <- results[i]
		}
	}

	s.mu.Lock()
	more := len(s.queue) > 0
	s.leading = more
	s.mu.Unlock()
	if more {
		go s.commitNext(ctx)
	}
}

// commit records batch in one transaction, each record's outcome apart
// (nil, ErrReplayed, ErrQuota); err is a failure of the whole transaction.
func (s *Store) commit(ctx context.Context, batch []*record, prune bool) (results []error, err error) {
	if s.writes != nil {
		s.writes.Lock()
		defer s.writes.Unlock()
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("nonce store: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		return nil, fmt.Errorf("nonce store: %w", err)
	}
	defer func() {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous = FULL`); rerr != nil {
			// A connection left at NORMAL must never carry another
			// write: take it out of the pool.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("nonce store: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if prune {
		if err := pruneTx(ctx, tx, batch[0].now); err != nil {
			return nil, err
		}
	}
	results = make([]error, len(batch))
	for i, r := range batch {
		if results[i], err = recordTx(ctx, tx, r); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("nonce store: %w", err)
	}
	return results, nil
}

// recordTx decides one record inside the batch's transaction. It changes
// nothing for a replay or a refusal, so records never need undoing one by
// one. The outcome is its first result, a database failure its second.
func recordTx(ctx context.Context, tx *sql.Tx, r *record) (error, error) {
	var exp int64
	err := tx.QueryRowContext(ctx, `SELECT expires FROM signed_nonces WHERE caller = ? AND nonce = ?`, r.caller, r.nonce).Scan(&exp)
	switch {
	case err == nil && exp > r.now:
		return nonce.ErrReplayed, nil
	case err == nil:
		// Expired but not yet pruned: no longer a replay; the row is
		// counted already, so the count stays.
		if _, err := tx.ExecContext(ctx, `UPDATE signed_nonces SET expires = ? WHERE caller = ? AND nonce = ?`,
			r.expires, r.caller, r.nonce); err != nil {
			return nil, fmt.Errorf("nonce store: %w", err)
		}
		return nil, nil
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("nonce store: %w", err)
	}
	var held int
	if err := tx.QueryRowContext(ctx, `SELECT held FROM signed_nonce_callers WHERE caller = ?`, r.caller).Scan(&held); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("nonce store: %w", err)
	}
	if held >= r.quota {
		// At its quota: first give the caller back the room its own
		// expired nonces hold; the others' are untouched.
		res, err := tx.ExecContext(ctx, `DELETE FROM signed_nonces WHERE caller = ? AND expires <= ?`, r.caller, r.now)
		if err != nil {
			return nil, fmt.Errorf("nonce store: %w", err)
		}
		k, _ := res.RowsAffected()
		if k == 0 {
			return nonce.ErrQuota, nil
		}
		held -= int(k)
		if held >= r.quota { // the quota was lowered since these were recorded
			if _, err := tx.ExecContext(ctx, `UPDATE signed_nonce_callers SET held = ? WHERE caller = ?`, held, r.caller); err != nil {
				return nil, fmt.Errorf("nonce store: %w", err)
			}
			return nonce.ErrQuota, nil
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO signed_nonces (caller, nonce, expires) VALUES (?, ?, ?)`,
		r.caller, r.nonce, r.expires); err != nil {
		return nil, fmt.Errorf("nonce store: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO signed_nonce_callers (caller, held) VALUES (?, ?)
		ON CONFLICT (caller) DO UPDATE SET held = excluded.held`, r.caller, held+1); err != nil {
		return nil, fmt.Errorf("nonce store: %w", err)
	}
	return nil, nil
}

// Prune deletes every nonce expired at now, and the counts they held. A
// batch prunes by itself every PruneEvery; Prune is for tests and tools.
func (s *Store) Prune(ctx context.Context, now time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("nonce store: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if err := pruneTx(ctx, tx, now.UnixMilli()); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("nonce store: %w", err)
	}
	return nil
}

func pruneTx(ctx context.Context, tx *sql.Tx, now int64) error {
	for _, q := range []string{
		`UPDATE signed_nonce_callers SET held = held - (SELECT COUNT(*) FROM signed_nonces n
			WHERE n.caller = signed_nonce_callers.caller AND n.expires <= ?1)
			WHERE caller IN (SELECT DISTINCT caller FROM signed_nonces WHERE expires <= ?1)`,
		`DELETE FROM signed_nonces WHERE expires <= ?1`,
		`DELETE FROM signed_nonce_callers WHERE held <= 0`,
	} {
		if _, err := tx.ExecContext(ctx, q, now); err != nil {
			return fmt.Errorf("nonce store: prune: %w", err)
		}
	}
	return nil
}

// Held is how many nonces the store holds, expired ones not yet pruned
// among them (tests, benchmarks).
func (s *Store) Held(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM signed_nonces`).Scan(&n)
	return n, err
}
