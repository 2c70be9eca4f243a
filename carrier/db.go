package carrier

import (
	"context"
	"fmt"

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
	switch d.Scheme {
	case dsn.SQLite:
		open := func() (*sqlite.Store, error) { return sqlite.Open(ctx, dsnString, opt) }
		if readOnly {
			open = func() (*sqlite.Store, error) { return sqlite.OpenReadOnly(ctx, dsnString) }
		}
		st, err := open()
		if err != nil {
			return nil, err // a nil *sqlite.Store must not become a non-nil store.Store
		}
		return st, nil
	case dsn.Postgres:
		open := func() (*postgres.Store, error) { return postgres.Open(ctx, dsnString, opt) }
		if readOnly {
			open = func() (*postgres.Store, error) { return postgres.OpenReadOnly(ctx, dsnString) }
		}
		st, err := open()
		if err != nil {
			return nil, err
		}
		return st, nil
	default:
		return nil, fmt.Errorf("%w: the carrier has no %s backend in this build (use sqlite:PATH, a bare path or postgres://…)", dsn.ErrDSN, d.Scheme)
	}
}
