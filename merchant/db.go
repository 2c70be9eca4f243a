package merchant

import (
	"context"
	"time"

	"orderseal/internal/dsn"
	outboxpg "orderseal/internal/outbox/postgres"
	"orderseal/merchant/store"
	"orderseal/merchant/store/postgres"
	"orderseal/merchant/store/sqlite"
)

// OpenStore opens (creating and migrating if need be) the merchant store a
// DSN names: sqlite:PATH or a bare path, or postgres://… for a database
// several merchant nodes share. now nil is time.Now.
func OpenStore(ctx context.Context, dsnString string, now func() time.Time) (store.Store, error) {
	return openStore(ctx, dsnString, false, now)
}

// OpenNodeStore is OpenStore for a serving node: on PostgreSQL the node
// claims relay jobs under leases of lease (0: outboxpg.DefaultLease), the
// longest a killed node's jobs wait before another node takes them over.
// SQLite has one node and no leases.
func OpenNodeStore(ctx context.Context, dsnString string, now func() time.Time, lease time.Duration) (store.Store, error) {
	var opts []outboxpg.Option
	if lease > 0 {
		opts = append(opts, outboxpg.Lease(lease))
	}
	return openStore(ctx, dsnString, false, now, opts...)
}

// OpenReader opens an existing merchant store for reading only, for the
// CLIs that must never create or change one.
func OpenReader(ctx context.Context, dsnString string) (store.Reader, error) {
	return openStore(ctx, dsnString, true, nil)
}

// openStore is the one place a backend is picked by the DSN's scheme.
func openStore(ctx context.Context, dsnString string, readOnly bool, now func() time.Time, opts ...outboxpg.Option) (store.Store, error) {
	d, err := dsn.Parse(dsnString)
	if err != nil {
		return nil, err
	}
	return dsn.Open(d, func() (store.Store, error) {
		if readOnly {
			return sqlite.OpenReadOnly(ctx, dsnString)
		}
		return sqlite.Open(ctx, dsnString, now)
	}, func() (store.Store, error) {
		if readOnly {
			return postgres.OpenReadOnly(ctx, dsnString)
		}
		return postgres.Open(ctx, dsnString, now, opts...)
	})
}
