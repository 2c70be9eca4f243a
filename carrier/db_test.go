package carrier_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"orderseal/carrier"
	"orderseal/carrier/store"
	"orderseal/internal/dsn"
	"orderseal/tstest/pgtest"
)

// TestOpenStore: each DSN scheme opens its backend, writer and reader on
// one database; a scheme with no backend is refused without its password.
func TestOpenStore(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct{ name, dsn string }{
		{"sqlite", "sqlite:" + filepath.Join(t.TempDir(), "carrier.db")},
		{"postgres", pgtest.New(t).URL()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, err := carrier.OpenStore(ctx, tt.dsn, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			sh, _, err := st.Book(ctx, store.Shipment{Merchant: "merchant:shop.example", OrderID: "ord_1", HeaderHash: [32]byte{1},
				ShipToken: "tok_abc_adr", Source: store.Granted, Invoice: "INV-1", EventsURL: "http://127.0.0.1:1/events"})
			if err != nil {
				t.Fatal(err)
			}
			r, err := carrier.OpenReader(ctx, tt.dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if got, err := r.Lookup(ctx, sh.Tracking); err != nil || got.OrderID != "ord_1" {
				t.Fatalf("reader: %+v %v", got, err)
			}
		})
	}
	if _, err := carrier.OpenStore(ctx, "mysql://carrier:s3cret@db.example/c", store.Options{}); !errors.Is(err, dsn.ErrDSN) || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("mysql: %v", err)
	}
}
