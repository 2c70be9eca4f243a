package pgtest_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"orderseal/tstest/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestNew: each test's database is its own, reached by its owner only; a
// wrong password and a role without CONNECT are refused.
func TestNew(t *testing.T) {
	ctx := context.Background()
	a, b := pgtest.New(t), pgtest.New(t)
	if a.Name == b.Name || a.Owner == b.Owner {
		t.Fatalf("two tests share a database or role: %+v %+v", a, b)
	}
	c, err := pgx.Connect(ctx, a.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `CREATE TABLE t (x int); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatalf("the owner cannot create a table: %v", err)
	}
	stranger := a.NewRole(t)
	tests := []struct {
		name, url, want string
	}{
		{"owner", a.URL(), ""},
		{"wrong password", a.URLAs(pgtest.Role{Name: a.Owner.Name, Password: "nope"}), "password authentication failed"},
		{"another test's owner", a.URLAs(b.Owner), "permission denied for database"},
		{"a role without CONNECT", a.URLAs(stranger), "permission denied for database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := pgx.Connect(ctx, tt.url)
			if err == nil {
				defer c.Close(ctx)
				var n int
				err = c.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n)
			}
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
	// The other database is empty.
	cb, err := pgx.Connect(ctx, b.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var n int
	if err := cb.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("a fresh database has %d tables (%v)", n, err)
	}
}

// TestGrant: rights granted by the superuser through Exec take effect.
func TestGrant(t *testing.T) {
	ctx := context.Background()
	d := pgtest.New(t)
	r := d.NewRole(t)
	d.Exec(t, `CREATE TABLE secret (x int)`)
	for _, grant := range []bool{false, true} {
		if grant {
			d.Exec(t, "GRANT CONNECT ON DATABASE "+d.Name+" TO "+r.Name)
			d.Exec(t, "GRANT SELECT ON secret TO "+r.Name)
		}
		c, err := pgx.Connect(ctx, d.URLAs(r))
		if err == nil {
			_, err = c.Exec(ctx, `SELECT * FROM secret`)
			c.Close(ctx)
		}
		if (err == nil) != grant {
			t.Fatalf("granted %v: %v", grant, err)
		}
	}
}

// TestServerDown: while the server is down nothing connects; once it is up
// again on the same address, every committed row is there.
func TestServerDown(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	c, err := pgx.Connect(ctx, db.URL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, `CREATE TABLE t (x int); INSERT INTO t VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	up := db.ServerDown(t)
	if _, err := c.Exec(ctx, `SELECT 1`); err == nil {
		t.Fatal("a connection opened before the crash still answers")
	}
	if c2, err := pgx.Connect(ctx, db.URL()); err == nil {
		c2.Close(ctx)
		t.Fatal("connected to a server that is down")
	}
	up()
	c3, err := pgx.Connect(ctx, db.URL())
	if err != nil {
		t.Fatalf("after up: %v", err)
	}
	defer c3.Close(ctx)
	var x int
	if err := c3.QueryRow(ctx, `SELECT x FROM t`).Scan(&x); err != nil || x != 42 {
		t.Fatalf("after the crash: x = %d, %v; want the committed 42", x, err)
	}
}

// TestServer: a program's own server makes databases that only their owner
// reaches, syncs its commits when Durable, and Stop ends it.
func TestServer(t *testing.T) {
	ctx := context.Background()
	s, err := pgtest.Start(pgtest.Durable())
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.NewDatabase()
	if err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(ctx, a.URL)
	if err != nil {
		t.Fatal(err)
	}
	var fsync string
	if err := c.QueryRow(ctx, `SHOW fsync`).Scan(&fsync); err != nil || fsync != "on" {
		t.Errorf("a Durable server: fsync %q, %v; want on", fsync, err)
	}
	// PID is the postmaster: the connection's backend is its child.
	var backend int
	if err := c.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		t.Fatal(err)
	}
	pid, err := s.PID()
	if err != nil {
		t.Fatal(err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", backend))
	if err != nil {
		t.Fatal(err)
	}
	if f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:])); len(f) < 2 || f[1] != strconv.Itoa(pid) {
		t.Errorf("PID %d: the backend's stat %q names another parent", pid, stat)
	}
	c.Close(ctx)
	other := strings.Replace(a.URL, a.Owner.Name+":"+a.Owner.Password, b.Owner.Name+":"+b.Owner.Password, 1)
	if c, err := pgx.Connect(ctx, other); err == nil || !strings.Contains(err.Error(), "permission denied for database") {
		if err == nil {
			c.Close(ctx)
		}
		t.Fatalf("another database's owner: %v, want permission denied", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if c, err := pgx.Connect(ctx, a.URL); err == nil {
		c.Close(ctx)
		t.Fatal("connected after Stop")
	}
}
