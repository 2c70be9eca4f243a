package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"orderseal/carrier/store"
	"orderseal/carrier/store/sqlite"
	"orderseal/carrier/store/storetest"
	"orderseal/internal/dsn"
	"orderseal/internal/sqlitex"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opt store.Options) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "carrier.db"), opt)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func sample(orderID string) store.Shipment {
	return store.Shipment{Merchant: "merchant:shop.example", OrderID: orderID, HeaderHash: [32]byte{1, 2, 3},
		ShipToken: "tok_abc_adr", Source: store.Granted, Invoice: "INV-1", EventsURL: "http://127.0.0.1:1/events"}
}

func TestOpenModes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "c.db")
	if _, err := sqlite.Open(ctx, path, store.Options{MustExist: true}); err == nil {
		t.Fatal("MustExist created a database")
	}
	if _, err := sqlite.Open(ctx, path, store.Options{Country: "de"}); err == nil {
		t.Fatal("lower-case country accepted")
	}
	w, err := sqlite.Open(ctx, "sqlite:"+path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sh, _, err := w.Book(ctx, sample("ord-ro"))
	if err != nil {
		t.Fatal(err)
	}
	ro, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if got, err := ro.Lookup(ctx, sh.Tracking); err != nil || got != sh {
		t.Fatalf("read-only lookup %+v %v", got, err)
	}
	if _, _, err := ro.Book(ctx, sample("ord-ro2")); err == nil {
		t.Fatal("a read-only store booked")
	}
	// A database that is not the carrier's is refused read-only.
	other := filepath.Join(dir, "other.db")
	o, err := sqlite.Open(ctx, other, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	db, err := sqlitex.Open(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM schema_version WHERE version = (SELECT MAX(version) FROM schema_version)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := sqlite.OpenReadOnly(ctx, other); !errors.Is(err, store.ErrNotMigrated) {
		t.Fatalf("read-only open of an old schema: %v", err)
	}
}

// TestDSN: only SQLite DSNs open here.
func TestDSN(t *testing.T) {
	ctx := context.Background()
	for _, s := range []string{"postgres://u@h/db", "", "file:x.db"} {
		if _, err := sqlite.Open(ctx, s, store.Options{}); !errors.Is(err, dsn.ErrDSN) {
			t.Errorf("Open(%q): %v, want ErrDSN", s, err)
		}
		if _, err := sqlite.OpenReadOnly(ctx, s); !errors.Is(err, dsn.ErrDSN) {
			t.Errorf("OpenReadOnly(%q): %v, want ErrDSN", s, err)
		}
	}
}
