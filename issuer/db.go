package issuer

import (
	"context"
	"fmt"

	"orderseal/internal/dsn"
	"orderseal/issuer/store"
	"orderseal/issuer/store/postgres"
	"orderseal/issuer/store/sqlite"
)

// OpenStore opens the issuer's store dsnString names ("sqlite:PATH" or a
// bare path, or postgres://… for a database several issuer nodes share).
// It is the one place a backend is picked by scheme.
func OpenStore(ctx context.Context, dsnString string, opt store.Options) (store.Store, error) {
	d, err := dsn.Parse(dsnString)
	if err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	switch d.Scheme {
	case dsn.SQLite:
		st, err := sqlite.Open(ctx, dsnString, opt)
		if err != nil {
			return nil, err // a nil *sqlite.Store must not become a non-nil store.Store
		}
		return st, nil
	case dsn.Postgres:
		st, err := postgres.Open(ctx, dsnString, opt)
		if err != nil {
			return nil, err
		}
		return st, nil
	default:
		return nil, fmt.Errorf("issuer database: %w: %s has no issuer backend (use sqlite:PATH, a file path or postgres://…)", dsn.ErrDSN, d)
	}
}
