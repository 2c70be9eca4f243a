// Package noncepg keeps nonce.Store in a daemon's PostgreSQL database, so
// replay protection survives restarts and holds across every node of a
// role sharing that database (DESIGN.md §5 "Hardening", §9). Each role's
// PostgreSQL backend appends Migration to its migrations and hands out
// New(pool, quota) as its store's Nonces.
//
// A record is one statement: the function Migration creates locks the
// caller's row of counts (so the records of one caller, from any node,
// queue on it while other callers' go on), then refuses a live nonce or a
// full quota, or records the nonce. Like the SQLite backend's batches it
// commits without waiting for the WAL flush (synchronous_commit off for
// that transaction alone): the request's own durable write, before it is
// answered, flushes the WAL up to and past it. (A read-only request may be
// replayed after a crash of the server; it changes nothing either.)
package noncepg

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"orderseal/internal/signedhttp/nonce"
)

// Migration creates the tables, the nonces and each caller's count of the
// rows it holds (one row read for the quota, and the lock that orders a
// caller's records), and the functions that record and prune.
const Migration = `
CREATE TABLE signed_nonces (
	caller  TEXT   NOT NULL,
	nonce   TEXT   NOT NULL,
	expires BIGINT NOT NULL, -- unix milliseconds
	PRIMARY KEY (caller, nonce)
);
CREATE INDEX signed_nonces_caller_expiry ON signed_nonces (caller, expires);
CREATE INDEX signed_nonces_expiry ON signed_nonces (expires);
CREATE TABLE signed_nonce_callers (
	caller TEXT    PRIMARY KEY,
	held   INTEGER NOT NULL -- rows of signed_nonces with this caller, expired ones not yet pruned among them
);

-- 0: recorded, 1: replayed, 2: over quota.
CREATE FUNCTION signed_nonce_record(p_caller TEXT, p_nonce TEXT, p_now BIGINT, p_expires BIGINT, p_quota INTEGER)
RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
	v_held INTEGER;
	v_exp  BIGINT;
	v_freed INTEGER;
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	LOOP
		SELECT held INTO v_held FROM signed_nonce_callers WHERE caller = p_caller FOR UPDATE;
		EXIT WHEN FOUND;
		INSERT INTO signed_nonce_callers (caller, held) VALUES (p_caller, 0) ON CONFLICT (caller) DO NOTHING;
	END LOOP;
	SELECT expires INTO v_exp FROM signed_nonces WHERE caller = p_caller AND nonce = p_nonce;
	IF FOUND THEN
		IF v_exp > p_now THEN
			RETURN 1;
		END IF;
		-- Expired but not yet pruned: no longer a replay; the row is counted already.
		UPDATE signed_nonces SET expires = p_expires WHERE caller = p_caller AND nonce = p_nonce;
		RETURN 0;
	END IF;
	IF v_held >= p_quota THEN
		-- At its quota: first give the caller back the room its own expired
		-- nonces hold; the others' are untouched.
		DELETE FROM signed_nonces WHERE caller = p_caller AND expires <= p_now;
		GET DIAGNOSTICS v_freed = ROW_COUNT;
		IF v_freed > 0 THEN
			v_held := v_held - v_freed;
			UPDATE signed_nonce_callers SET held = v_held WHERE caller = p_caller;
		END IF;
		IF v_held >= p_quota THEN
			RETURN 2;
		END IF;
	END IF;
	INSERT INTO signed_nonces (caller, nonce, expires) VALUES (p_caller, p_nonce, p_expires);
	UPDATE signed_nonce_callers SET held = v_held + 1 WHERE caller = p_caller;
	RETURN 0;
END $$;

-- Deletes every nonce expired at p_now and the counts they held. The
-- callers' rows are locked first, in order, as a record locks its one, so
-- pruning and recording never deadlock.
CREATE FUNCTION signed_nonce_prune(p_now BIGINT) RETURNS INTEGER LANGUAGE plpgsql AS $$
DECLARE
	v_callers TEXT[];
	v_n INTEGER;
BEGIN
	SELECT array_agg(caller) INTO v_callers FROM (
		SELECT caller FROM signed_nonce_callers
		WHERE caller IN (SELECT DISTINCT caller FROM signed_nonces WHERE expires <= p_now)
		ORDER BY caller FOR UPDATE) locked;
	IF v_callers IS NULL THEN
		RETURN 0;
	END IF;
	WITH gone AS (
		DELETE FROM signed_nonces WHERE caller = ANY (v_callers) AND expires <= p_now RETURNING caller
	), counts AS (
		SELECT caller, COUNT(*) AS n FROM gone GROUP BY caller
	)
	UPDATE signed_nonce_callers c SET held = c.held - counts.n FROM counts WHERE c.caller = counts.caller;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	RETURN v_n;
END $$;
`

// PruneEvery is how often a node's records also delete every expired nonce.
const PruneEvery = time.Minute

// Store is nonce.Store over a database that ran Migration.
type Store struct {
	pool  *pgxpool.Pool
	quota nonce.Quota

	mu        sync.Mutex
	lastPrune time.Time
}

// New returns the store over pool, each caller holding at most
// quota(caller) live nonces; quota nil means nonce.DefaultQuota.
func New(pool *pgxpool.Pool, quota nonce.Quota) *Store {
	if quota == nil {
		quota = nonce.DefaultQuota
	}
	return &Store{pool: pool, quota: quota}
}

// Record implements nonce.Store.
func (s *Store) Record(ctx context.Context, caller, n string, now, expires time.Time) error {
	s.mu.Lock()
	prune := now.Sub(s.lastPrune) >= PruneEvery
	if prune {
		s.lastPrune = now
	}
	s.mu.Unlock()
	if prune {
		if err := s.Prune(ctx, now); err != nil {
			return err
		}
	}
	var outcome int
	if err := s.pool.QueryRow(ctx, `SELECT signed_nonce_record($1, $2, $3, $4, $5)`,
		caller, n, now.UnixMilli(), expires.UnixMilli(), s.quota(caller)).Scan(&outcome); err != nil {
		return fmt.Errorf("nonce store: %w", err)
	}
	switch outcome {
	case 0:
		return nil
	case 1:
		return nonce.ErrReplayed
	case 2:
		return nonce.ErrQuota
	}
	return fmt.Errorf("nonce store: unknown outcome %d", outcome)
}

// Prune deletes every nonce expired at now, and the counts they held.
// Records prune by themselves every PruneEvery; Prune is for tests and tools.
func (s *Store) Prune(ctx context.Context, now time.Time) error {
	if _, err := s.pool.Exec(ctx, `SELECT signed_nonce_prune($1)`, now.UnixMilli()); err != nil {
		return fmt.Errorf("nonce store: prune: %w", err)
	}
	return nil
}

// Held is how many nonces the store holds, expired ones not yet pruned
// among them (tests, benchmarks).
func (s *Store) Held(ctx context.Context) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT COUNT(*) FROM signed_nonces`).Scan(&n)
	return n, err
}
