package pgdb_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"

	"orderseal/internal/cli"
	"orderseal/internal/pgdb"
	"orderseal/tstest/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

var migrations = []string{
	`CREATE TABLE applied (n INTEGER NOT NULL)`,
	`INSERT INTO applied VALUES (2)`,
	`INSERT INTO applied VALUES (3); CREATE TABLE other (x TEXT)`,
}

// TestMigrateConcurrently: eight nodes starting at once apply each
// migration once; a later start applies nothing; a program that knows
// fewer migrations than the database has refuses it.
func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := pgdb.OpenMigrated(ctx, db.URL(), 2, "test", migrations)
			if err == nil {
				pool.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	pool, err := pgdb.OpenMigrated(ctx, db.URL(), 2, "test", migrations)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n, sum int
	if err := pool.QueryRow(ctx, `SELECT count(*), COALESCE(sum(n), 0) FROM applied`).Scan(&n, &sum); err != nil || n != 2 || sum != 5 {
		t.Fatalf("applied rows %d (sum %d, %v), want each data migration once", n, sum, err)
	}
	// Another component in the same database has versions of its own.
	if err := pgdb.Migrate(ctx, pool, "second", migrations[:1:1]); err == nil {
		t.Fatal("a second component re-created a table: its migrations did not run")
	}
	if err := pgdb.Migrate(ctx, pool, "test", migrations[:2]); !errors.Is(err, pgdb.ErrSchemaTooNew) {
		t.Fatalf("older program: %v, want ErrSchemaTooNew", err)
	}
}

// TestOpenErrors: a wrong DSN, an unreachable server, a wrong password, a
// role without CONNECT and one without CREATE each fail with one line, a
// hint, and never the password.
func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	noConnect := db.NewRole(t)
	noCreate := db.NewRole(t)
	db.Exec(t, "GRANT CONNECT ON DATABASE "+db.Name+" TO "+noCreate.Name)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	const secret = "s3cretpw"
	tests := []struct {
		name, url string
		want      error
	}{
		{"wrong scheme", "mysql://u:" + secret + "@127.0.0.1/x", pgdb.ErrDSN},
		{"unparsable", "postgres://u:" + secret + "@127.0.0.1:notaport/x", pgdb.ErrDSN},
		{"unreachable", "postgres://u:" + secret + "@" + closed + "/x?sslmode=disable&connect_timeout=5", pgdb.ErrUnreachable},
		{"wrong password", strings.Replace(db.URL(), db.Owner.Password, secret, 1), pgdb.ErrAuth},
		{"no such database", strings.Replace(db.URL(), "/"+db.Name+"?", "/nosuchdb?", 1), pgdb.ErrNoDatabase},
		{"role without CONNECT", db.URLAs(noConnect), pgdb.ErrRights},
		{"role without CREATE", db.URLAs(noCreate), pgdb.ErrRights},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool, err := pgdb.OpenMigrated(ctx, tt.url, 1, "test", migrations)
			if err == nil {
				pool.Close()
				t.Fatal("opened")
			}
			msg := err.Error()
			var ce *cli.Error
			if !errors.Is(err, tt.want) || !errors.As(err, &ce) || ce.Hint == "" {
				t.Fatalf("%v (%T), want %v with a hint", err, err, tt.want)
			}
			for _, pw := range []string{secret, noConnect.Password, noCreate.Password, db.Owner.Password} {
				if strings.Contains(msg+ce.Hint, pw) {
					t.Fatalf("the error shows a password: %s", msg)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Fatalf("not one line: %q", msg)
			}
			fmt.Fprintf(testWriter{t}, "%s | hint: %s", msg, ce.Hint)
		})
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// TestOpenReadOnly: a read-only pool reads and reports the schema version
// (0 before any migration), and every write through it is refused.
func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	ro, err := pgdb.OpenReadOnly(ctx, db.URL(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if v, err := pgdb.SchemaVersion(ctx, ro, "test"); err != nil || v != 0 {
		t.Fatalf("fresh database: version %d, %v; want 0", v, err)
	}
	pool, err := pgdb.OpenMigrated(ctx, db.URL(), 2, "test", migrations)
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()
	if v, err := pgdb.SchemaVersion(ctx, ro, "test"); err != nil || v != len(migrations) {
		t.Fatalf("migrated: version %d, %v; want %d", v, err, len(migrations))
	}
	if _, err := ro.Exec(ctx, `INSERT INTO applied VALUES (9)`); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("a write through the read-only pool: %v", err)
	}
	if _, err := pgdb.OpenReadOnly(ctx, "postgres://x@127.0.0.1:1/none?connect_timeout=1", 1); !errors.Is(err, pgdb.ErrUnreachable) {
		t.Fatalf("unreachable server: %v", err)
	}
}
