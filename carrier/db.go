package carrier

import (
	"context"

	"orderseal/carrier/store"
	"orderseal/carrier/store/postgres"
	"orderseal/carrier/store/sqlite"
	"orderseal/internal/dsn"
)

// OpenStore opens (creating and migrating if need be, unless opt.MustExist)
// the carrier store a DSN names: sqlite:PATH or a bare path, or
// postgres://… for a database several carrier nodes share.
func OpenStore(ctx context.Context, dsnString string, opt store.Options) (store.Store, error) {
	return openStore(ctx, dsnString, opt, false)
}

// OpenReader opens an existing carrier store for reading only (labels,
// listings); it refuses one this version did not create (store.ErrNotMigrated).
func OpenReader(ctx context.Context, dsnString string) (store.Reader, error) {
	return openStore(ctx, dsnString, store.Options{}, true)
}

// openStore is the one place a backend is picked by the DSN's scheme.
func openStore(ctx context.Context, dsnString string, opt store.Options, readOnly bool) (store.Store, error) {
	d, err := dsn.Parse(dsnString)
	if err != nil {
		return nil, err
	}
	return dsn.Open(d, func() (store.Store, error) {
		if readOnly {
			return sqlite.OpenReadOnly(ctx, dsnString)
		}
		return sqlite.Open(ctx, dsnString, opt)
	}, func() (store.Store, error) {
		if readOnly {
			return postgres.OpenReadOnly(ctx, dsnString)
		}
		return postgres.Open(ctx, dsnString, opt)
	})
}
