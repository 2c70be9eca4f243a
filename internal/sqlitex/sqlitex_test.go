package sqlitex

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testMigrations = []string{
	`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);
	 INSERT INTO t(v) VALUES ('first');`,
	`CREATE TABLE u (id INTEGER PRIMARY KEY, t_id INTEGER NOT NULL REFERENCES t(id));`,
}

func count(t *testing.T, db *sql.DB, q string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")

	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, db, testMigrations[:1]); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, db, testMigrations[:1]); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM t`); n != 1 {
		t.Fatalf("migration 1 applied %d times", n)
	}
	db.Close()

	// Reopen with one more migration: only the new one runs.
	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, db, testMigrations); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, db, testMigrations); err != nil {
		t.Fatal(err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM t`); n != 1 {
		t.Fatalf("migration 1 re-applied: %d rows", n)
	}
	if v, err := Version(ctx, db); err != nil || v != 2 {
		t.Fatalf("version %d, %v", v, err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM schema_version`); n != 2 {
		t.Fatalf("schema_version rows %d", n)
	}
	db.Close()

	// Code that knows fewer migrations refuses the newer database.
	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := Migrate(ctx, db, testMigrations[:1]); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("want ErrSchemaTooNew, got %v", err)
	}
}

func TestMigrateFailureRollsBack(t *testing.T) {
	ctx := context.Background()
	db, err := Open(filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	bad := []string{testMigrations[0], `CREATE TABLE w (id INTEGER); CREATE TABLE oops (`}
	if err := Migrate(ctx, db, bad); err == nil || !strings.Contains(err.Error(), "migration 2") {
		t.Fatalf("want migration 2 error, got %v", err)
	}
	if v, _ := Version(ctx, db); v != 1 {
		t.Fatalf("version %d after failed migration 2", v)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM sqlite_schema WHERE name = 'w'`); n != 0 {
		t.Fatal("half of migration 2 was kept")
	}
}

func TestPragmasOnEveryConnection(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "p.db")
	db, err := Open(path, MaxConns(4))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("database file mode %v, %v", st.Mode(), err)
	}
	// Hold four connections at once so each is a distinct pooled connection.
	var conns []*sql.Conn
	for i := 0; i < 4; i++ {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	want := map[string]string{
		"journal_mode": "wal",
		"synchronous":  "2", // FULL
		"busy_timeout": "5000",
		"foreign_keys": "1",
	}
	for i, c := range conns {
		for p, w := range want {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+p).Scan(&got); err != nil {
				t.Fatalf("conn %d: %s: %v", i, p, err)
			}
			if got != w {
				t.Errorf("conn %d: %s = %s, want %s", i, p, got, w)
			}
		}
	}
	if got := db.Stats().OpenConnections; got != 4 {
		t.Fatalf("%d open connections, want 4", got)
	}
}

func TestReadOnlyAndMustExist(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "r.db")

	if _, err := Open(path, MustExist()); err == nil {
		t.Fatal("MustExist created a database")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("file exists after a refused open: %v", err)
	}

	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, db, testMigrations); err != nil {
		t.Fatal(err)
	}
	db.Close()

	ro, err := Open(path, ReadOnly(), MaxConns(2))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if n := count(t, ro, `SELECT COUNT(*) FROM t`); n != 1 {
		t.Fatalf("read %d rows", n)
	}
	if _, err := ro.Exec(`INSERT INTO t(v) VALUES ('x')`); err == nil {
		t.Fatal("read-only database accepted a write")
	}
	var fk int
	if err := ro.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys %d, %v", fk, err)
	}

	if _, err := Open(filepath.Join(dir, "missing.db"), ReadOnly()); err == nil {
		t.Fatal("read-only open of a missing file succeeded")
	}
}

func TestImmediate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "i.db")
	db, err := Open(path, Immediate())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE c (n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	// An IMMEDIATE transaction holds the write lock before its first write:
	// a second writer cannot begin while it is open.
	other, err := Open(path, MustExist())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), `PRAGMA busy_timeout = 10`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`); err == nil {
		conn.ExecContext(context.Background(), `ROLLBACK`)
		t.Fatal("second writer began while an immediate transaction was open")
	}
}

func TestDSN(t *testing.T) {
	d := DSN("/tmp/a b?c#d.db", ReadOnly())
	if !strings.HasPrefix(d, "file:/tmp/a%20b%3Fc%23d.db?") {
		t.Fatalf("path not escaped: %s", d)
	}
	if strings.Contains(d, "journal_mode") || !strings.Contains(d, "mode=ro") {
		t.Fatalf("read-only DSN: %s", d)
	}
	if _, err := Open("file:x.db"); err == nil {
		t.Fatal("Open accepted a URI")
	}
}
