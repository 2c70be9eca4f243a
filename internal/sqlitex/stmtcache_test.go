package sqlitex

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"orderseal/internal/sqldb"
)

func TestStatementCache(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "c.db"), Serialized())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)`); err != nil {
		t.Fatal(err)
	}
	stmts := func() int {
		t.Helper()
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var n int
		if err := conn.Raw(func(dc any) error { n = len(dc.(*cachingConn).stmts); return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}

	for i := range 10 {
		if _, err := db.Exec(`INSERT INTO t (id, v) VALUES (?, ?)`, i, fmt.Sprint("v", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := stmts(); n != 1 {
		t.Fatalf("after 10 inserts of one query: %d statements cached, want 1", n)
	}
	// A failing run leaves its statement reset and usable.
	if _, err := db.Exec(`INSERT INTO t (id, v) VALUES (?, ?)`, 99, "v1"); err == nil {
		t.Fatal("duplicate value inserted")
	}
	if _, err := db.Exec(`INSERT INTO t (id, v) VALUES (?, ?)`, 10, "v10"); err != nil {
		t.Fatalf("after a failed run: %v", err)
	}

	// A query run again while its first result set is open (in one
	// transaction, so on one connection) runs uncached and both read right.
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	const q = `SELECT id, v FROM t WHERE id < ? ORDER BY id`
	outer, err := tx.Query(q, 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for outer.Next() {
		var id int
		var v string
		if err := outer.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		inner, err := tx.Query(q, 2)
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for inner.Next() {
			k++
		}
		if err := inner.Close(); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s/%d", v, k))
	}
	if err := outer.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[v0/2 v1/2 v2/2]" {
		t.Fatalf("nested reads: %v", got)
	}

	// A schema change under a cached statement: SQLite prepares it again.
	var v string
	if err := db.QueryRow(`SELECT v FROM t WHERE id = ?`, 1).Scan(&v); err != nil || v != "v1" {
		t.Fatalf("select: %q %v", v, err)
	}
	if _, err := db.Exec(`ALTER TABLE t ADD COLUMN w TEXT NOT NULL DEFAULT 'x'`); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT v FROM t WHERE id = ?`, 2).Scan(&v); err != nil || v != "v2" {
		t.Fatalf("select after ALTER: %q %v", v, err)
	}

	// Queries built at run time do not grow the cache without bound.
	for i := range stmtCacheSize + 20 {
		if err := db.QueryRow(sqldb.SQLiteQuery(fmt.Sprintf(`SELECT count(*) FROM t WHERE id IN (%s)`, sqldb.Placeholders(1, i+1))), sqldb.Args(make([]int, i+1))...).Scan(new(int)); err != nil {
			t.Fatal(err)
		}
	}
	if n := stmts(); n > stmtCacheSize {
		t.Fatalf("%d statements cached, bound %d", n, stmtCacheSize)
	}
}

// TestExecUnsynced: the statement commits, and the connection goes back
// to the pool at synchronous=FULL.
func TestExecUnsynced(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "u.db"), Serialized())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (v INTEGER)`); err != nil {
		t.Fatal(err)
	}
	if _, err := ExecUnsynced(ctx, db, `INSERT INTO t VALUES (?)`, 7); err != nil {
		t.Fatal(err)
	}
	var v, sync int
	if err := db.QueryRow(`SELECT v FROM t`).Scan(&v); err != nil || v != 7 {
		t.Fatalf("row: %d %v", v, err)
	}
	if err := db.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("synchronous after ExecUnsynced: %d %v, want 2 (FULL)", sync, err)
	}
	if _, err := ExecUnsynced(ctx, db, `INSERT INTO nowhere VALUES (?)`, 1); err == nil {
		t.Fatal("insert into a missing table succeeded")
	}
	if err := db.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
		t.Fatalf("synchronous after a failed ExecUnsynced: %d %v, want 2 (FULL)", sync, err)
	}
}
