package vault

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"orderseal/internal/cli"
	"orderseal/internal/dsn"
	"orderseal/vault/store"
	"orderseal/vault/store/sqlite"
)

// StoreConfig says where the vault's stores are, as DSNs ("sqlite:PATH" or
// a bare path). Index, Data and DataKey are required.
type StoreConfig struct {
	Index, Data string
	Backup      string           // optional backup data store, written through
	Pending     string           // "": the backend's default, beside the index
	DataKey     *store.DataKey   // never stored in any database
	Now         func() time.Time // nil: time.Now
	Logger      *slog.Logger     // nil: discard
}

// OpenStore opens the vault's stores with the backend the index DSN's
// scheme names: the one place a backend is chosen.
func OpenStore(ctx context.Context, cfg StoreConfig) (*store.Store, error) {
	d, err := dsn.Parse(cfg.Index)
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	switch d.Scheme {
	case dsn.SQLite:
		return sqlite.Open(ctx, sqlite.Config{Index: cfg.Index, Data: cfg.Data, Backup: cfg.Backup, Pending: cfg.Pending,
			DataKey: cfg.DataKey, Now: cfg.Now, Logger: cfg.Logger})
	default:
		return nil, noBackend(d)
	}
}

// OpenIndexReader opens the existing index at indexDSN read-only: it never
// creates one, and needs no data key.
func OpenIndexReader(ctx context.Context, indexDSN string) (store.IndexReader, error) {
	d, err := dsn.Parse(indexDSN)
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	switch d.Scheme {
	case dsn.SQLite:
		idx, err := sqlite.OpenIndexReadOnly(ctx, indexDSN)
		if err != nil {
			return nil, err // a nil *sqlite.Index must not become a non-nil store.IndexReader
		}
		return idx, nil
	default:
		return nil, noBackend(d)
	}
}

// VerifyAudit opens the index at indexDSN read-only and verifies its audit
// chain (store.VerifyAudit).
func VerifyAudit(ctx context.Context, indexDSN string) (int, error) {
	idx, err := OpenIndexReader(ctx, indexDSN)
	if err != nil {
		return 0, err
	}
	defer idx.Close()
	return store.VerifyAudit(ctx, idx)
}

func noBackend(d dsn.DSN) error {
	return cli.WithHint(fmt.Errorf("%w: the vault has no %s backend (%s)", dsn.ErrDSN, d.Scheme, d),
		"use sqlite:PATH or a bare file path")
}
