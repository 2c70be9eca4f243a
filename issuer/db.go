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
	return dsn.Open(d,
		func() (store.Store, error) { return sqlite.Open(ctx, dsnString, opt) },
		func() (store.Store, error) { return postgres.Open(ctx, dsnString, opt) })
}
