package sqlitex

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

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

// testRider writes its pending keys into table r; fail makes its next
// Stage write one and then fail.
type testRider struct {
	mu       sync.Mutex
	pending  []string
	fail     bool
	outcomes []error
}

func (r *testRider) Pending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending) > 0
}

func (r *testRider) Stage(tx *sql.Tx) (func(error), error) {
	r.mu.Lock()
	keys, fail := r.pending, r.fail
	r.pending, r.fail = nil, false
	r.mu.Unlock()
	done := func(err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.outcomes = append(r.outcomes, err)
		if err != nil {
			r.pending = append(keys, r.pending...)
		}
	}
	for _, k := range keys {
		if _, err := tx.Exec(`INSERT INTO r (k) VALUES (?)`, k); err != nil {
			return done, err
		}
		if fail {
			return done, errors.New("rider refused")
		}
	}
	return done, nil
}

// TestRider: a rider's rows commit with the batch that carries them; a
// rider that fails is undone alone — the batch's own writes commit — and
// keeps its rows for the next batch; Close runs the OnClose functions.
func TestRider(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "r.db"), Immediate())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER NOT NULL); CREATE TABLE r (k TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	r := &testRider{}
	OnCommit(db, r)
	closed := false
	OnClose(db, func() { closed = true })
	w := Wrap(db)
	write := func(k string) {
		t.Helper()
		if _, err := w.Exec(ctx, `INSERT INTO t (k, n) VALUES ($1, 1)`, k); err != nil {
			t.Fatalf("write %s: %v", k, err)
		}
	}
	r.pending, r.fail = []string{"a", "b"}, true
	write("1") // the rider fails: its rows are undone, the write commits
	if got := count(t, db, `SELECT COUNT(*) FROM r`); got != 0 {
		t.Fatalf("a failed rider left %d rows", got)
	}
	if got := count(t, db, `SELECT COUNT(*) FROM t`); got != 1 {
		t.Fatalf("the batch's write was failed with its rider: %d rows", got)
	}
	write("2") // the rider's rows ride again, and commit
	if got := count(t, db, `SELECT COUNT(*) FROM r`); got != 2 {
		t.Fatalf("%d rider rows after the next batch, want 2", got)
	}
	if _, err := w.Exec(ctx, `INSERT INTO t (k, n) VALUES ('2', 1)`); err == nil {
		t.Fatal("a duplicate key committed")
	}
	r.mu.Lock()
	outcomes := r.outcomes
	r.mu.Unlock()
	if len(outcomes) != 2 || outcomes[0] == nil || outcomes[1] != nil {
		t.Fatalf("rider outcomes %v, want a failure then a commit (and nothing staged for a failed batch)", outcomes)
	}
	if err := w.Close(); err != nil || !closed {
		t.Fatalf("Close: %v, OnClose ran: %v", err, closed)
	}
}

// TestCommitSizes: each group commit counts its transactions in
// CommitSizes under the database's file name.
func TestCommitSizes(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "sizes.db"), Immediate())
	if err != nil {
		t.Fatal(err)
	}
	w := Wrap(db)
	defer w.Close()
	if _, err := db.Exec(`CREATE TABLE t (k INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	observed := func() (uint64, float64) {
		var m dto.Metric
		if err := CommitSizes.WithLabelValues("sizes.db").(prometheus.Metric).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
	}
	n0, sum0 := observed() // the histogram is the process's: other runs of this test count too
	for i := range 3 {
		if _, err := w.Exec(ctx, `INSERT INTO t (k) VALUES ($1)`, i); err != nil {
			t.Fatal(err)
		}
	}
	if n, sum := observed(); n-n0 != 3 || sum-sum0 != 3 {
		t.Fatalf("%d commits of %v transactions observed, want 3 of 3", n-n0, sum-sum0)
	}
}
