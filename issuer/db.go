package issuer

import (
	"context"
	"fmt"

	"orderseal/internal/dsn"
	"orderseal/issuer/store"
	"orderseal/issuer/store/sqlite"
)

// OpenStore opens the issuer's store dsnString names ("sqlite:PATH" or a
// bare path). It is the one place a backend is picked by scheme.
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
	default:
		return nil, fmt.Errorf("issuer database: %w: %s has no issuer backend yet (use sqlite:PATH or a file path)", dsn.ErrDSN, d)
	}
}
