// Package noncesql keeps nonce.Store in a daemon's own SQLite database, so
// replay protection survives restarts (DESIGN.md §5 "Hardening"). Each
// role's SQLite backend appends Migration and Migration2 to its migrations
// and hands out New(db, quota) as its store's Nonces. One process owns a
// SQLite database (as the outbox assumes too); the nodes of a role that
// share a store run on PostgreSQL (noncepg).
//
// The replay check is decided in memory: the owning process holds every
// nonce it recorded while it lives, and the expiry of each nonce the
// database held when the store first read it (for the quota), and looks a
// nonce up in the database only while a caller still has live nonces from
// before that. The rows reach the database without a commit of their own:
//
//   - They ride on the database's group commits (sqlitex.OnCommit). A
//     request is recorded before its handler runs, so its nonce is in the
//     same transaction as the handler's change, or in one before it, and
//     is on disk when the change is: whatever a daemon acknowledges has its
//     nonce on disk too.
//   - What no group commit took within FlushEvery — the nonces of reads —
//     is written by the store itself, unsynced (synchronous=NORMAL), as
//     sqlitex.ExecUnsynced would: it survives a kill of the process once
//     written, and a power cut with the next synchronous commit. A read
//     replayed after a crash in that window is answered again; it changes
//     nothing.
//   - Closing the database (sqlitex.Close) writes what is left.
package noncesql

import (
	"container/heap"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/sqlitex"
)

// Migration creates the tables (the first version: each caller's count of
// rows was kept in signed_nonce_callers, read and written per record).
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

// Migration2 drops what the counts in memory replaced: the per-caller
// counts and the index that found a caller's expired rows when it reached
// its quota. A row now costs the table and the expiry index the prune uses.
const Migration2 = `
DROP TABLE signed_nonce_callers;
DROP INDEX signed_nonces_caller_expiry;
`

// PruneEvery is how often the rows written also delete every expired nonce.
const PruneEvery = time.Minute

// FlushEvery is how long a recorded nonce waits for a group commit to
// carry it before the store writes it itself.
const FlushEvery = 20 * time.Millisecond

// Store is nonce.Store over a database that ran Migration and Migration2.
type Store struct {
	db         *sql.DB
	quota      nonce.Quota
	flushEvery time.Duration

	mu        sync.Mutex
	loaded    bool
	callers   map[string]*caller
	exp       expiryHeap // this process's live nonces, soonest expiry first
	pending   []row      // recorded, not yet in the database
	staged    bool       // pending was handed to a commit not yet answered
	timer     bool       // a flush is scheduled
	closed    bool       // the database closed: no more flushes
	newest    int64      // the latest clock reading recorded with (unix ms)
	lastPrune int64
}

// caller is one caller's nonces.
type caller struct {
	live map[string]int64 // this process's nonces → expiry (unix ms)
	// before holds the expiries of the caller's rows in the database when
	// the store first read it, ascending, those past trimmed as time
	// passes; while any is left, a nonce not in live is looked up.
	before []int64
}

type row struct {
	caller, nonce string
	expires       int64
}

// Option tunes New.
type Option func(*Store)

// WithFlushEvery replaces FlushEvery (tests).
func WithFlushEvery(d time.Duration) Option { return func(s *Store) { s.flushEvery = d } }

// New returns the store over db, each caller holding at most quota(caller)
// live nonces; quota nil means nonce.DefaultQuota. Its rows ride on db's
// group commits (sqlitex.Wrap) and are written when db closes through
// sqlitex.Close.
func New(db *sql.DB, quota nonce.Quota, opts ...Option) *Store {
	if quota == nil {
		quota = nonce.DefaultQuota
	}
	s := &Store{db: db, quota: quota, flushEvery: FlushEvery, callers: make(map[string]*caller)}
	for _, o := range opts {
		o(s)
	}
	sqlitex.OnCommit(db, s)
	sqlitex.OnClose(db, s.close)
	return s
}

// Record implements nonce.Store.
func (s *Store) Record(ctx context.Context, callerID, n string, now, expires time.Time) error {
	at, exp := now.UnixMilli(), expires.UnixMilli()
	s.mu.Lock()
	if err := s.load(ctx); err != nil {
		s.mu.Unlock()
		return err
	}
	s.expire(at)
	c := s.callers[callerID]
	if c != nil {
		if e, ok := c.live[n]; ok && e > at {
			s.mu.Unlock()
			return nonce.ErrReplayed
		}
		c.trim(at)
		if len(c.before) > 0 {
			// The database may hold n from before this store read it.
			s.mu.Unlock()
			if replayed, err := s.recorded(ctx, callerID, n, at); err != nil || replayed {
				if err == nil {
					err = nonce.ErrReplayed
				}
				return err
			}
			s.mu.Lock()
			if c = s.callers[callerID]; c != nil {
				if e, ok := c.live[n]; ok && e > at {
					s.mu.Unlock()
					return nonce.ErrReplayed // recorded meanwhile
				}
			}
		}
	}
	if c == nil {
		c = &caller{live: make(map[string]int64)}
		s.callers[callerID] = c
	}
	if len(c.live)+len(c.before) >= s.quota(callerID) {
		s.mu.Unlock()
		return nonce.ErrQuota
	}
	c.live[n] = exp
	heap.Push(&s.exp, expiry{at: exp, caller: callerID, nonce: n})
	s.pending = append(s.pending, row{callerID, n, exp})
	s.newest = max(s.newest, at)
	s.later()
	s.mu.Unlock()
	return nil
}

// recorded looks (caller, n) up in the database: a row live at now is a replay.
func (s *Store) recorded(ctx context.Context, callerID, n string, now int64) (bool, error) {
	var exp int64
	err := s.db.QueryRowContext(ctx, `SELECT expires FROM signed_nonces WHERE caller = ? AND nonce = ?`, callerID, n).Scan(&exp)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("nonce store: %w", err)
	}
	return exp > now, nil
}

// load reads the expiries of the rows the database holds, once. s.mu is held.
func (s *Store) load(ctx context.Context) error {
	if s.loaded {
		return nil
	}
	rows, err := s.db.QueryContext(ctx, `SELECT caller, expires FROM signed_nonces`)
	if err != nil {
		return fmt.Errorf("nonce store: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var exp int64
		if err := rows.Scan(&id, &exp); err != nil {
			return fmt.Errorf("nonce store: %w", err)
		}
		c := s.callers[id]
		if c == nil {
			c = &caller{live: make(map[string]int64)}
			s.callers[id] = c
		}
		c.before = append(c.before, exp)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("nonce store: %w", err)
	}
	for _, c := range s.callers {
		slices.Sort(c.before)
	}
	s.loaded = true
	return nil
}

// expire forgets this process's nonces expired at now. s.mu is held.
func (s *Store) expire(now int64) {
	for len(s.exp) > 0 && s.exp[0].at <= now {
		e := heap.Pop(&s.exp).(expiry)
		c := s.callers[e.caller]
		if c == nil {
			continue
		}
		if c.live[e.nonce] == e.at {
			delete(c.live, e.nonce)
		}
		if len(c.live) == 0 && len(c.before) == 0 {
			delete(s.callers, e.caller)
		}
	}
}

// trim drops the expiries from before that passed at now.
func (c *caller) trim(now int64) {
	i := 0
	for i < len(c.before) && c.before[i] <= now {
		i++
	}
	if i > 0 {
		c.before = slices.Clone(c.before[i:])
	}
}

// Pending implements sqlitex.Rider.
func (s *Store) Pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending) > 0 && !s.staged
}

// Stage implements sqlitex.Rider: the pending rows go into tx, the
// transaction of a group commit; done puts them back when it fails.
func (s *Store) Stage(tx *sql.Tx) (done func(error), err error) {
	rows, prune, ok := s.take()
	if !ok {
		return nil, nil
	}
	done = func(err error) { s.answer(rows, prune, err) }
	return done, write(context.Background(), tx, rows, prune)
}

// take hands the pending rows to one writer at a time; prune (unix ms,
// 0: none) is when to delete expired rows as of, every PruneEvery.
func (s *Store) take() (rows []row, prune int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 || s.staged {
		return nil, 0, false
	}
	rows, s.pending, s.staged = s.pending, nil, true
	if s.newest-s.lastPrune >= PruneEvery.Milliseconds() {
		prune = s.newest
	}
	return rows, prune, true
}

// answer records the outcome of a write of rows: failed, they are pending
// again, before any recorded since.
func (s *Store) answer(rows []row, prune int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.staged = false
	if err != nil {
		s.pending = append(rows, s.pending...)
	} else if prune > 0 {
		s.lastPrune = prune
	}
	s.later()
}

// later schedules a flush of what is pending, unless one is. s.mu is held.
func (s *Store) later() {
	if len(s.pending) > 0 && !s.timer && !s.closed {
		s.timer = true
		time.AfterFunc(s.flushEvery, s.flushLater)
	}
}

// write inserts rows (a nonce expired but not yet pruned takes the new
// expiry) and, when prune is set, deletes the nonces expired at it.
func write(ctx context.Context, tx *sql.Tx, rows []row, prune int64) error {
	if prune > 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM signed_nonces WHERE expires <= ?`, prune); err != nil {
			return fmt.Errorf("nonce store: prune: %w", err)
		}
	}
	for _, r := range rows {
		if _, err := tx.ExecContext(ctx, `INSERT INTO signed_nonces (caller, nonce, expires) VALUES (?, ?, ?)
			ON CONFLICT (caller, nonce) DO UPDATE SET expires = excluded.expires`, r.caller, r.nonce, r.expires); err != nil {
			return fmt.Errorf("nonce store: %w", err)
		}
	}
	return nil
}

// flushLater is the timer's flush: what no group commit carried is
// written now.
func (s *Store) flushLater() {
	s.mu.Lock()
	s.timer = false
	closed := s.closed
	s.mu.Unlock()
	if !closed {
		_ = s.Flush(context.Background()) // failed, the rows stay pending and the next write retries
	}
}

// close writes what is pending as the database closes; the timer stops.
func (s *Store) close() {
	_ = s.Flush(context.Background())
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// Flush writes the pending rows now, in a transaction of its own at
// synchronous=NORMAL (sqlitex.TxUnsynced, queued behind the group commits).
func (s *Store) Flush(ctx context.Context) error {
	if !s.Pending() {
		return nil
	}
	var (
		rows  []row
		prune int64
		taken bool
	)
	err := sqlitex.TxUnsynced(ctx, s.db, func(tx *sql.Tx) error {
		// Taken under the write lock: no group commit stages them meanwhile.
		if rows, prune, taken = s.take(); !taken {
			return nil
		}
		return write(ctx, tx, rows, prune)
	})
	switch {
	case taken:
		s.answer(rows, prune, err) // after the commit: a failed one keeps them pending, and tries again
	case err != nil:
		s.mu.Lock()
		s.later()
		s.mu.Unlock()
	}
	return err
}

// Prune writes the pending rows, then deletes every nonce expired at now.
// The writes prune by themselves every PruneEvery; Prune is for tests and
// tools.
func (s *Store) Prune(ctx context.Context, now time.Time) error {
	if err := s.Flush(ctx); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM signed_nonces WHERE expires <= ?`, now.UnixMilli()); err != nil {
		return fmt.Errorf("nonce store: prune: %w", err)
	}
	return nil
}

// Held is how many nonces the database holds once the pending ones are
// written, expired ones not yet pruned among them (tests, benchmarks).
func (s *Store) Held(ctx context.Context) (int, error) {
	if err := s.Flush(ctx); err != nil {
		return 0, err
	}
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM signed_nonces`).Scan(&n)
	return n, err
}

type expiry struct {
	at            int64
	caller, nonce string
}

// expiryHeap is a min-heap on expiry time.
type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = expiry{}
	*h = old[:len(old)-1]
	return e
}
