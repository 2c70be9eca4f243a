package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"orderseal/internal/outbox/outboxtest"
	"orderseal/internal/outbox/sqlite"
	"orderseal/internal/sqlitex"
)

func TestConformance(t *testing.T) {
	outboxtest.Run(t, func(t *testing.T) outboxtest.Backend {
		db := open(t)
		return outboxtest.Backend{Store: sqlite.New(db),
			Enqueue: func(ctx context.Context, kind, key string, payload []byte, now time.Time) error {
				return sqlite.Enqueue(ctx, db, kind, key, payload, now)
			}}
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
// not there; one in a committed transaction is.
func TestEnqueueRollsBack(t *testing.T) {
	ctx := context.Background()
	db := open(t)
	st := sqlite.New(db)
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
		} else {
			err = tx.Rollback()
		}
		if err != nil {
			t.Fatal(err)
		}
		s, err := st.Count(ctx, "")
		if want := map[bool]int{false: 0, true: 1}[commit]; err != nil || s.Pending != want {
			t.Fatalf("commit %v: %+v %v, want %d pending", commit, s, err, want)
		}
	}
}
