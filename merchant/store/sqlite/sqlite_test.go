package sqlite_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"orderseal/internal/dsn"
	"orderseal/merchant/store"
	"orderseal/merchant/store/sqlite"
	"orderseal/merchant/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "merchant.db"), func() time.Time { return storetest.Now })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	})
}

func newOrder(id string) *store.Order {
	return &store.Order{ID: id, Cardholder: "cardholder:alice@example.org", HeaderHash: []byte{1, 2, 3},
		Bundle: []byte(`{"sealed":true}`), Issuer: "issuer:bank.example", Carrier: "carrier:parcel.example",
		Items: []byte(`[]`), Total: 100, Currency: "EUR", State: "received"}
}

// TestDurable: a new Store on the same file, as a sqlite: DSN, sees the
// order and its job.
func TestDurable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "merchant.db")
	st, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Insert(ctx, newOrder("ord_1"), "authorize"); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st2, err := sqlite.Open(ctx, "sqlite:"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	got, err := st2.Get(ctx, "ord_1")
	if err != nil || string(got.HeaderHash) != string([]byte{1, 2, 3}) || got.Created.IsZero() {
		t.Fatalf("after reopening: %+v %v", got, err)
	}
	if s, err := st2.Outbox().Count(ctx, ""); err != nil || s.Pending != 1 {
		t.Fatalf("outbox after reopening: %+v %v", s, err)
	}
}

// TestOpenReadOnly: a read-only store reads the daemon's database, writes
// nothing, never creates a database, and refuses one this version did not
// make.
func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "merchant.db")
	if _, err := sqlite.OpenReadOnly(ctx, path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing database: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a read-only open created %s", path)
	}
	w, err := sqlite.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, _, err := w.Insert(ctx, newOrder("ord_ro"), "authorize"); err != nil {
		t.Fatal(err)
	}
	ro, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if o, err := ro.Get(ctx, "ord_ro"); err != nil || o.State != "received" {
		t.Fatalf("read-only get %+v %v", o, err)
	}
	if _, _, err := ro.Insert(ctx, newOrder("ord_ro2"), "authorize"); err == nil {
		t.Fatal("a read-only store inserted")
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlite.OpenReadOnly(ctx, empty); !errors.Is(err, store.ErrNotMigrated) {
		t.Fatalf("an empty file: %v", err)
	}
}

// TestDSN: only SQLite DSNs open here.
func TestDSN(t *testing.T) {
	ctx := context.Background()
	for _, s := range []string{"postgres://u@h/db", "", "file:x.db", "mysql://h/db"} {
		if _, err := sqlite.Open(ctx, s, nil); !errors.Is(err, dsn.ErrDSN) {
			t.Errorf("Open(%q): %v, want ErrDSN", s, err)
		}
		if _, err := sqlite.OpenReadOnly(ctx, s); !errors.Is(err, dsn.ErrDSN) {
			t.Errorf("OpenReadOnly(%q): %v, want ErrDSN", s, err)
		}
	}
}
