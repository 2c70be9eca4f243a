// Package postgres is the PostgreSQL backend of the vault store (DESIGN.md
// §7, §9): the index and each data store are databases of their own,
// reached under roles of their own with separate passwords, so the index's
// credential can never read PII, not even sealed, and a data store's
// credential sees no owner, grant or audit entry.
//
//   - Index: entries, grants, the audit log and the replay memory of signed
//     requests, shared by every vault node; Update holds an advisory lock.
//     Its statements are vault/store/sqlstore's, shared with SQLite; this
//     package keeps the schema and how the databases are reached.
//   - Data (primary, and the optional backup): token → dedupe hash, nonce,
//     sealed value, created; plus a key check and the audit checkpoint.
//   - Pending stays a SQLite file on the vault host's own disk
//     (vault/store/sqlite.OpenPending), so it is writable when a data
//     store's server is not.
package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"orderseal/internal/dsn"
	"orderseal/vault/store"
	"orderseal/vault/store/sqlite"
	"orderseal/vault/store/sqlstore"
)

// Config says where the vault's stores are. Index, Data and Backup are
// postgres:// DSNs, each under its own role; Pending is a SQLite DSN or
// path on the vault host. Index, Data, Pending and DataKey are required.
type Config struct {
	Index, Data string
	Backup      string                               // optional backup data store, written through
	Pending     string                               // the pending table's SQLite file
	DataKey     *store.DataKey                       // never stored in any database
	Now         func() time.Time                     // nil: time.Now
	Logger      *slog.Logger                         // nil: discard; never given PII or keys
	Fold        func(store.TokenType, []byte) []byte // store.Options.Fold
	Observe     store.Observer                       // store.Options.Observe
	// AllowDegraded starts the store when a data store cannot be reached,
	// writes going to the pending table; without it Open fails.
	AllowDegraded bool
}

// ErrStoreUnreachable is a configured data store that could not be reached at start.
var ErrStoreUnreachable = sqlite.ErrStoreUnreachable

// Open connects to the index and data stores, runs their migrations, opens
// the pending file and returns the vault Store over them. A data store
// that cannot be reached is an outage (with AllowDegraded) or an error;
// one sealed under another key, or two roles naming one database, is an error.
func Open(ctx context.Context, cfg Config) (*store.Store, error) {
	if cfg.Index == "" || cfg.Data == "" {
		return nil, fmt.Errorf("%w: the index and data databases are required", store.ErrInvalid)
	}
	if cfg.Pending == "" {
		return nil, fmt.Errorf("%w: a vault on PostgreSQL keeps its pending table in a SQLite file on its own disk: name it (sqlite:PATH)", store.ErrInvalid)
	}
	seen := map[string]string{}
	for _, s := range []struct{ name, dsn string }{{"index", cfg.Index}, {"data", cfg.Data}, {"backup", cfg.Backup}} {
		if s.dsn == "" {
			continue
		}
		d, err := dsn.Parse(s.dsn)
		if err != nil || d.Scheme != dsn.Postgres {
			return nil, fmt.Errorf("vault %s: %w: want postgres://… (every store of a vault on PostgreSQL is on PostgreSQL)", s.name, dsn.ErrDSN)
		}
		where, err := database(d)
		if err != nil {
			return nil, fmt.Errorf("vault %s: %w", s.name, err)
		}
		if other, dup := seen[where]; dup {
			return nil, fmt.Errorf("%w: %s and %s are the same database", store.ErrInvalid, s.name, other)
		}
		seen[where] = s.name
	}
	check, err := store.KeyCheck(cfg.DataKey)
	if err != nil {
		return nil, err
	}
	return sqlstore.Open(ctx, sqlstore.Openers{
		Index:   func(ctx context.Context) (store.Index, error) { return OpenIndex(ctx, cfg.Index) },
		Pending: func(ctx context.Context) (store.Pending, error) { return sqlite.OpenPending(ctx, cfg.Pending, check) },
		Data: func(ctx context.Context, name, dsn string) (*Data, error) {
			return OpenData(ctx, dsn, name, check, cfg.Logger)
		},
		Primary:       cfg.Data,
		Backup:        cfg.Backup,
		AllowDegraded: cfg.AllowDegraded,
	}, store.Options{DataKey: cfg.DataKey, Now: cfg.Now, Logger: cfg.Logger, Fold: cfg.Fold, Observe: cfg.Observe})
}

// database names the server and database a DSN reaches, whatever its role.
func database(d dsn.DSN) (string, error) {
	cfg, err := pgxParse(d.URL)
	if err != nil {
		return "", fmt.Errorf("%w: %s cannot be parsed", dsn.ErrDSN, d)
	}
	return fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database), nil
}

var pgxParse = pgconn.ParseConfig
