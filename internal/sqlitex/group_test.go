package sqlitex

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"orderseal/internal/sqldb"
)

func openGroupDB(t *testing.T) (sqldb.DB, func() (int64, int64), func(string) int) {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "g.db"), Immediate())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	w := Wrap(db)
	t.Cleanup(func() { w.Close() })
	stats := func() (int64, int64) { return GroupStats(db) }
	rows := func(q string) int { return count(t, db, q) }
	return w, stats, rows
}

// Concurrent transactions share commits, each keeps its own outcome: a
// failing one rolls back alone, a panicking one panics in its caller, the
// others commit.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	w, stats, rows := openGroupDB(t)
	errRefused := errors.New("refused")
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	panics := make([]any, n)
	for i := range n {
		wg.Go(func() {
			defer func() { panics[i] = recover() }()
			errs[i] = w.Tx(ctx, func(tx sqldb.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO t (k, n) VALUES ($1, $2)`, fmt.Sprint(i), i); err != nil {
					return err
				}
				switch i % 10 {
				case 3:
					return errRefused // after its write: the write must go
				case 7:
					panic("boom")
				}
				// A read inside the batch sees this call's own write.
				var got int
				if err := tx.QueryRow(ctx, `SELECT n FROM t WHERE k = $1`, fmt.Sprint(i)).Scan(&got); err != nil || got != i {
					return fmt.Errorf("read back %d, %v", got, err)
				}
				return nil
			})
		})
	}
	wg.Wait()
	kept := 0
	for i := range n {
		switch i % 10 {
		case 3:
			if !errors.Is(errs[i], errRefused) || panics[i] != nil {
				t.Errorf("call %d: err %v, panic %v; want its own error", i, errs[i], panics[i])
			}
		case 7:
			if panics[i] != "boom" {
				t.Errorf("call %d: panic %v, err %v; want its panic raised in the caller", i, panics[i], errs[i])
			}
		default:
			kept++
			if errs[i] != nil || panics[i] != nil {
				t.Errorf("call %d: err %v, panic %v", i, errs[i], panics[i])
			}
		}
	}
	if got := rows(`SELECT COUNT(*) FROM t`); got != kept {
		t.Fatalf("%d rows committed, want %d", got, kept)
	}
	for _, k := range []int{3, 7, 13, 17} {
		if got := rows(fmt.Sprintf(`SELECT COUNT(*) FROM t WHERE k = '%d'`, k)); got != 0 {
			t.Errorf("the write of failed call %d committed", k)
		}
	}
	batches, calls := stats()
	if calls != n {
		t.Fatalf("%d calls counted, want %d", calls, n)
	}
	if batches >= calls {
		t.Fatalf("%d commits for %d concurrent transactions: nothing was grouped", batches, calls)
	}
	t.Logf("%d transactions in %d commits", calls, batches)
}

// A call whose context has ended is not run; Exec outside a Tx is a write
// of the group too.
func TestGroupCancelledAndExec(t *testing.T) {
	w, _, rows := openGroupDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := w.Tx(ctx, func(sqldb.Tx) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("cancelled call: err %v, ran %v", err, ran)
	}
	n, err := w.Exec(context.Background(), `INSERT INTO t (k, n) VALUES ($1, $2), ($3, $4)`, "a", 1, "b", 2)
	if err != nil || n != 2 {
		t.Fatalf("Exec: %d rows, %v", n, err)
	}
	if _, err := w.Exec(context.Background(), `INSERT INTO t (k, n) VALUES ($1, $2)`, "a", 3); !w.IsUnique(err) {
		t.Fatalf("duplicate insert: %v, want a unique violation", err)
	}
	if got := rows(`SELECT COUNT(*) FROM t`); got != 2 {
		t.Fatalf("%d rows", got)
	}
}
