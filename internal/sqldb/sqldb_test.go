package sqldb_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"orderseal/internal/pgdb"
	"orderseal/internal/sqldb"
	"orderseal/internal/sqlitex"
	"orderseal/tstest/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// backends opens an empty database of each dialect with table t.
func backends(t *testing.T) map[string]sqldb.DB {
	t.Helper()
	ctx := context.Background()
	schema := `CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT NOT NULL, b BYTEA, ok BOOLEAN NOT NULL DEFAULT false)`
	db, err := sqlitex.Open(filepath.Join(t.TempDir(), "t.db"), sqlitex.Immediate())
	if err != nil {
		t.Fatal(err)
	}
	lite := sqlitex.Wrap(db)
	pool, err := pgdb.Open(ctx, pgtest.New(t).URL(), 4)
	if err != nil {
		t.Fatal(err)
	}
	pg := pgdb.Wrap(pool)
	out := map[string]sqldb.DB{"sqlite": lite, "postgres": pg}
	for name, d := range out {
		if _, err := d.Exec(ctx, schema); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { d.Close() })
	}
	return out
}

func TestDialects(t *testing.T) {
	ctx := context.Background()
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) {
			// A number used twice binds the same value in both spellings.
			n, err := db.Exec(ctx, `INSERT INTO t (id, n, b, ok) VALUES ($1, $2, $3, $4), ($2 || '-' || $1, $2 + 1, NULL, $4)`, "a", 7, []byte{1}, true)
			if err != nil || n != 2 {
				t.Fatalf("insert: %d rows, %v", n, err)
			}
			var id string
			var v int64
			var b []byte
			var ok bool
			if err := db.QueryRow(ctx, `SELECT id, n, b, ok FROM t WHERE n = $1 AND id <> '$1'`, 8).Scan(&id, &v, &b, &ok); err != nil {
				t.Fatal(err)
			}
			if id != "7-a" || v != 8 || b != nil || !ok {
				t.Fatalf("got %q %d %v %v", id, v, b, ok)
			}
			if err := db.QueryRow(ctx, `SELECT id FROM t WHERE id = $1`, "none").Scan(&id); !errors.Is(err, sqldb.ErrNoRows) {
				t.Fatalf("missing row: %v, want ErrNoRows", err)
			}
			_, err = db.Exec(ctx, `INSERT INTO t (id, n) VALUES ($1, $2)`, "a", 1)
			if !db.IsUnique(err) {
				t.Fatalf("duplicate key: %v, want a unique violation", err)
			}
			if db.IsUnique(errors.New("other")) || db.IsUnique(nil) {
				t.Fatal("IsUnique of a non-database error")
			}

			// A failed transaction leaves nothing behind.
			boom := errors.New("boom")
			err = db.Tx(ctx, func(tx sqldb.Tx) error {
				if _, err := tx.Exec(ctx, `UPDATE t SET n = n + 100`); err != nil {
					return err
				}
				return boom
			})
			if !errors.Is(err, boom) {
				t.Fatalf("tx: %v", err)
			}
			got, err := sqldb.Collect(ctx, db, func(r sqldb.Row) (int64, error) {
				var n int64
				return n, r.Scan(&n)
			}, `SELECT n FROM t ORDER BY n`)
			if err != nil || len(got) != 2 || got[0] != 7 || got[1] != 8 {
				t.Fatalf("after rollback: %v %v", got, err)
			}

			// In list placeholders after other arguments.
			ids := []string{"a", "7-a", "zz"}
			var count int
			if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM t WHERE n > $1 AND id IN (`+sqldb.Placeholders(2, len(ids))+`)`,
				append([]any{0}, sqldb.Args(ids)...)...).Scan(&count); err != nil || count != 2 {
				t.Fatalf("in list: %d %v", count, err)
			}
			cond, args := sqldb.In(db, "id", 2, ids)
			if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM t WHERE n > $1 AND `+cond, append([]any{0}, args...)...).Scan(&count); err != nil || count != 2 {
				t.Fatalf("In: %d %v", count, err)
			}
		})
	}
}

// TestTxExcludes: two transactions that read a row FOR UPDATE (or hold the
// same Lock) and write it back never lose an increment, in either dialect.
func TestTxExcludes(t *testing.T) {
	ctx := context.Background()
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) {
			if _, err := db.Exec(ctx, `INSERT INTO t (id, n) VALUES ('c', 0)`); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			for i := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- db.Tx(ctx, func(tx sqldb.Tx) error {
						if i%2 == 0 {
							if err := tx.Lock(ctx, "counter c"); err != nil {
								return err
							}
						}
						var n int64
						if err := tx.QueryRow(ctx, `SELECT n FROM t WHERE id = 'c'`+sqldb.ForUpdate(tx)).Scan(&n); err != nil {
							return err
						}
						time.Sleep(time.Millisecond)
						_, err := tx.Exec(ctx, `UPDATE t SET n = $1 WHERE id = 'c'`, n+1)
						return err
					})
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			var n int64
			if err := db.QueryRow(ctx, `SELECT n FROM t WHERE id = 'c'`).Scan(&n); err != nil || n != 16 {
				t.Fatalf("counter %d, %v; want 16", n, err)
			}
		})
	}
}

func TestSQLiteQuery(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT $1, $12`, `SELECT ?1, ?12`},
		{`SELECT '$1', "$2", $3`, `SELECT '$1', "$2", ?3`},
		{`SELECT 'it''s $1', $2`, `SELECT 'it''s $1', ?2`},
		{`SELECT $a, $`, `SELECT $a, $`},
	} {
		if got := sqldb.SQLiteQuery(c.in); got != c.want {
			t.Errorf("SQLiteQuery(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestPlaceholders(t *testing.T) {
	if got := sqldb.Placeholders(3, 3); got != "$3, $4, $5" {
		t.Fatalf("got %q", got)
	}
	if got := sqldb.Placeholders(1, 0); got != "" {
		t.Fatalf("got %q", got)
	}
}

func TestTimes(t *testing.T) {
	at := time.Date(2026, 12, 7, 16, 20, 0, 123456789, time.FixedZone("KST", 9*3600))
	for _, c := range []struct {
		name       string
		enc        func(time.Time) int64
		dec        func(int64) time.Time
		want       time.Time
		wantStored int64
	}{
		{"nanos", sqldb.UnixNano, sqldb.FromUnixNano, at.UTC(), at.UnixNano()},
		{"millis", sqldb.UnixMilli, sqldb.FromUnixMilli, at.Truncate(time.Millisecond).UTC(), at.UnixMilli()},
	} {
		if got := c.enc(at); got != c.wantStored {
			t.Errorf("%s: stored %d, want %d", c.name, got, c.wantStored)
		}
		if got := c.dec(c.enc(at)); !got.Equal(c.want) || got.Location() != time.UTC {
			t.Errorf("%s: round trip %v, want %v in UTC", c.name, got, c.want)
		}
		if c.enc(time.Time{}) != 0 || !c.dec(0).IsZero() {
			t.Errorf("%s: the zero time is not stored as 0", c.name)
		}
	}
}
