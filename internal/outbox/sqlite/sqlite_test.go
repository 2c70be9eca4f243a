package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	modernc "modernc.org/sqlite"

	"orderseal/internal/outbox/outboxtest"
	"orderseal/internal/outbox/sqlite"
	"orderseal/internal/outbox/sqlout"
	"orderseal/internal/sqldb"
	"orderseal/internal/sqlitex"
)

// TestConformance runs the suite with jobs enqueued both ways a daemon
// does: on its *sql.Tx (Enqueue) and in a sqldb transaction (sqlout.Enqueue).
func TestConformance(t *testing.T) {
	t.Run("driver", func(t *testing.T) {
		outboxtest.Run(t, func(t *testing.T) outboxtest.Backend {
			db := open(t)
			return outboxtest.Backend{Store: sqlite.New(db), DB: sqlitex.Wrap(db),
				Enqueue: func(ctx context.Context, kind, key string, payload []byte, now time.Time) error {
					return sqlite.Enqueue(ctx, db, kind, key, payload, now)
				}}
		})
	})
	t.Run("sqldb", func(t *testing.T) {
		outboxtest.Run(t, func(t *testing.T) outboxtest.Backend {
			db := open(t)
			w := sqlitex.Wrap(db)
			return outboxtest.Backend{Store: sqlite.New(db), DB: w,
				Enqueue: func(ctx context.Context, kind, key string, payload []byte, now time.Time) error {
					return w.Tx(ctx, func(tx sqldb.Tx) error { return sqlout.Enqueue(ctx, tx, kind, key, payload, now) })
				}}
		})
	})
}

// open returns a fresh database holding only the outbox table, opened as the
// daemons open theirs.
func open(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sqlitex.Open(filepath.Join(t.TempDir(), "o.db"), sqlitex.Immediate(), sqlitex.Serialized())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := sqlitex.Migrate(context.Background(), db, []string{sqlite.Migration}); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestEnqueueRollsBack: a job enqueued in a transaction that rolls back is
// not there; one in a committed transaction is — on a *sql.Tx and in a
// sqldb transaction alike.
func TestEnqueueRollsBack(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	st := sqlite.New(db)
	w := sqlitex.Wrap(db)
	want := 0
	for _, commit := range []bool{false, true} {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := sqlite.Enqueue(ctx, tx, "send", "k", nil, time.Now()); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit()
			want++
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
		errRollBack := sqldb.ErrNoRows // any error rolls the transaction back
		err = w.Tx(ctx, func(tx sqldb.Tx) error {
			if err := sqlout.Enqueue(ctx, tx, "send", "k2", nil, time.Now()); err != nil {
				return err
			}
			if !commit {
				return errRollBack
			}
			return nil
		})
		if commit {
			want++
		}
		if (err != nil) == commit {
			t.Fatalf("commit %v: sqldb transaction: %v", commit, err)
		}
		s, err := st.Count(ctx, "")
		if err != nil || s.Pending != want {
			t.Fatalf("commit %v: %+v %v, want %d pending", commit, s, err, want)
		}
	}
}

// TestClaimCompilesOnce: Claim's statement is compiled once for every
// limit it is asked for. The Runner claims as many jobs as it has free
// workers; with the limit bound as a bare parameter SQLite recompiled the
// statement whenever that number changed (2.4 times the cost of a claim).
// SQLite calls a connection's authorizer for every table it reads while it
// compiles, so the count of reads of the outbox table is the count of
// compilations.
func TestClaimCompilesOnce(t *testing.T) {
	ctx := context.Background()
	db := open(t) // one connection: every claim runs on it
	st := sqlite.New(db)
	now := time.Now()
	for i := range 8 {
		if err := sqlite.Enqueue(ctx, db, "send", fmt.Sprint(i), nil, now); err != nil {
			t.Fatal(err)
		}
	}
	var compiles atomic.Int32
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = conn.Raw(func(dc any) error {
		r, ok := dc.(modernc.AuthorizerRegisterer)
		if !ok {
			return fmt.Errorf("%T has no authorizer", dc)
		}
		return r.RegisterAuthorizer(func(action modernc.AuthorizerActionCode, table, _, _, _ string) modernc.AuthorizerReturnCode {
			if action == modernc.AuthSelect {
				compiles.Add(1)
			}
			return modernc.AuthorizerOK
		})
	})
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 3, 2, 8, 1, 5, 64, 4} {
		jobs, err := st.Claim(ctx, now, limit)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(limit, 8); len(jobs) != want {
			t.Fatalf("limit %d: %d jobs, want %d", limit, len(jobs), want)
		}
	}
	if n := compiles.Load(); n != 1 {
		t.Errorf("the claim was compiled %d times for 8 claims with 7 different limits, want once", n)
	}
}
