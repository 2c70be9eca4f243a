package postgres_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"orderseal/internal/dsn"
	"orderseal/tstest/pgtest"
	"orderseal/vault/store"
	"orderseal/vault/store/postgres"
	"orderseal/vault/store/sqlite"
	"orderseal/vault/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestStore(t *testing.T) {
	storetest.Run(t, newVault)
}

// vault is a vault's databases, each owned by its own role (pgtest.New),
// and its pending file on local disk.
type vault struct {
	index, data, backup *pgtest.DB
	pending             string
}

func newVault(t testing.TB, withBackup bool) storetest.Vault {
	v := &vault{index: pgtest.New(t), data: pgtest.New(t), pending: filepath.Join(t.TempDir(), "pending.db")}
	if withBackup {
		v.backup = pgtest.New(t)
	}
	return v
}

func (v *vault) Open(t testing.TB, check []byte) (b store.Backends, err error) {
	ctx := context.Background()
	defer func() {
		if err != nil {
			for _, c := range []interface{ Close() error }{b.Primary, b.Backup, b.Pending, b.Index} {
				if c != nil {
					c.Close()
				}
			}
			b = store.Backends{}
		}
	}()
	idx, err := postgres.OpenIndex(ctx, v.index.URL())
	if err != nil {
		return b, err
	}
	b.Index = idx
	pend, err := sqlite.OpenPending(ctx, v.pending, check)
	if err != nil {
		return b, err
	}
	b.Pending = pend
	primary, err := postgres.OpenData(ctx, v.data.URL(), "primary", check, nil)
	if err != nil {
		return b, err
	}
	b.Primary = primary
	if v.backup != nil {
		backup, err := postgres.OpenData(ctx, v.backup.URL(), "backup", check, nil)
		if err != nil {
			return b, err
		}
		b.Backup = backup
	}
	return b, nil
}

func (v *vault) Outage(t testing.TB, name string) (restore func()) {
	t.Helper()
	if name == "backup" {
		return v.backup.Outage(t)
	}
	return v.data.Outage(t)
}

// TestRoleSeparation: the index and the data are two databases under two
// roles with separate passwords. Neither role can connect to the other's
// database, and even granted CONNECT (a cluster set up carelessly) neither
// can read the other's tables.
func TestRoleSeparation(t *testing.T) {
	ctx := context.Background()
	index, data := pgtest.New(t), pgtest.New(t)
	dk, err := store.CreateDataKey(filepath.Join(t.TempDir(), "data.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(ctx, postgres.Config{Index: index.URL(), Data: data.URL(), Pending: filepath.Join(t.TempDir(), "pending.db"), DataKey: dk})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if index.Owner.Password == data.Owner.Password {
		t.Fatal("the two roles share a password")
	}
	tests := []struct {
		name  string
		url   string // a role's DSN into the other's database
		table string
	}{
		{"index role reads the data", data.URLAs(index.Owner), "records"},
		{"index role reads the data's key check", data.URLAs(index.Owner), "key_check"},
		{"data role reads the index", index.URLAs(data.Owner), "entries"},
		{"data role reads the grants", index.URLAs(data.Owner), "grants"},
		{"data role reads the audit log", index.URLAs(data.Owner), "audit"},
	}
	for _, grantConnect := range []bool{false, true} {
		if grantConnect {
			data.Exec(t, "GRANT CONNECT ON DATABASE "+data.Name+" TO "+index.Owner.Name)
			index.Exec(t, "GRANT CONNECT ON DATABASE "+index.Name+" TO "+data.Owner.Name)
		}
		for _, tt := range tests {
			c, err := pgx.Connect(ctx, tt.url)
			if err == nil {
				_, err = c.Exec(ctx, "SELECT * FROM "+tt.table)
				c.Close(ctx)
			}
			want := map[bool]string{false: "permission denied for database", true: "permission denied for table " + tt.table}[grantConnect]
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s (CONNECT granted: %v): %v, want %q", tt.name, grantConnect, err, want)
			}
		}
	}
	// Each role reads its own.
	for _, own := range []struct{ url, table string }{{index.URL(), "entries"}, {data.URL(), "records"}} {
		c, err := pgx.Connect(ctx, own.url)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Exec(ctx, "SELECT * FROM "+own.table); err != nil {
			t.Errorf("the owner cannot read %s: %v", own.table, err)
		}
		c.Close(ctx)
	}
}

// TestOpenConfig: every store on PostgreSQL, each its own database, and a
// pending file named.
func TestOpenConfig(t *testing.T) {
	ctx := context.Background()
	index, data := pgtest.New(t), pgtest.New(t)
	dk, err := store.CreateDataKey(filepath.Join(t.TempDir(), "data.key"))
	if err != nil {
		t.Fatal(err)
	}
	pending := filepath.Join(t.TempDir(), "pending.db")
	tests := []struct {
		name string
		cfg  postgres.Config
		want error
	}{
		{"no pending file", postgres.Config{Index: index.URL(), Data: data.URL()}, store.ErrInvalid},
		{"index and data one database", postgres.Config{Index: index.URL(), Data: index.URL(), Pending: pending}, store.ErrInvalid},
		{"data on SQLite", postgres.Config{Index: index.URL(), Data: "sqlite:x.db", Pending: pending}, dsn.ErrDSN},
	}
	for _, tt := range tests {
		tt.cfg.DataKey = dk
		st, err := postgres.Open(ctx, tt.cfg)
		if err == nil {
			st.Close()
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestOpenUnreachable: a data store whose database refuses connections at
// start fails Open with ErrStoreUnreachable, naming the store and why (not
// a bare "<nil>"), unless the vault may start degraded.
func TestOpenUnreachable(t *testing.T) {
	ctx := context.Background()
	index, data := pgtest.New(t), pgtest.New(t)
	dk, err := store.CreateDataKey(filepath.Join(t.TempDir(), "data.key"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := postgres.Config{Index: index.URL(), Data: data.URL(), Pending: filepath.Join(t.TempDir(), "pending.db"), DataKey: dk}
	data.Outage(t)
	st, err := postgres.Open(ctx, cfg)
	if err == nil {
		st.Close()
		t.Fatal("opened with the data store down")
	}
	if msg := err.Error(); !errors.Is(err, postgres.ErrStoreUnreachable) || !strings.Contains(msg, "vault primary data store ") ||
		strings.Contains(msg, "<nil>") || !strings.Contains(msg, "unavailable: ") {
		t.Fatalf("Open: %v", err)
	}
	cfg.AllowDegraded = true
	st, err = postgres.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open degraded: %v", err)
	}
	st.Close()
}
