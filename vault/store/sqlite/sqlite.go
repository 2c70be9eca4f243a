// Package sqlite is the SQLite backend of the vault store (DESIGN.md §7,
// §8): the index, each data store and the pending table are SQLite files
// (internal/sqlitex: WAL, synchronous=FULL, numbered migrations run at
// open), created 0600. Their statements are vault/store/sqlstore's, shared
// with PostgreSQL; this package keeps the schema, how the files are opened
// and reopened, and what only SQLite does (the unsynced checkpoint, the
// pending table).
//
//   - Index: entries, grants and the audit log. No PII at all, not even
//     sealed.
//   - Data (primary, and the optional backup): token → dedupe hash, nonce,
//     sealed value, created; plus a key check, so a file sealed under
//     another data key is refused. A data file is opened lazily and reopened
//     after any error; before each use the backend checks that the file at
//     the path is still the one it opened, so a data file removed or
//     replaced underneath an open connection counts as an outage, not as a
//     silent write into an unlinked file. Open creates a missing data file;
//     afterwards a missing data file is an outage and is never recreated.
//   - Pending: by default the index's path + ".pending". It holds
//     ciphertext, so it is not part of the index database, but it lives
//     beside it, on the vault host's own disk, so it is writable when a data
//     store is not.
package sqlite

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"orderseal/internal/dsn"
	"orderseal/vault/store"
	"orderseal/vault/store/sqlstore"
)

// Config says where the vault's SQLite files are, as DSNs ("sqlite:PATH"
// or a bare path). Index, Data and DataKey are required.
type Config struct {
	Index, Data string
	Backup      string                               // optional backup data store, written through
	Pending     string                               // "": the index's path + ".pending"
	DataKey     *store.DataKey                       // never stored in any database
	Now         func() time.Time                     // nil: time.Now
	Logger      *slog.Logger                         // nil: discard; never given PII or keys
	Fold        func(store.TokenType, []byte) []byte // store.Options.Fold
	// AllowDegraded starts the store when a data file cannot be created or
	// opened, writes going to the pending table; without it Open fails.
	AllowDegraded bool
	Observe       store.Observer // the store's metrics hooks
}

// Open opens (creating when absent) the index, pending and data files, runs
// their migrations and returns the vault Store over them. A data file that
// cannot be opened is an outage, not an error: the store starts with writes
// going to the pending table. A data file sealed under another key, or with
// a newer schema, is an error; so are two roles naming the same file.
func Open(ctx context.Context, cfg Config) (*store.Store, error) {
	if cfg.Index == "" || cfg.Data == "" {
		return nil, fmt.Errorf("%w: the index and data databases are required", store.ErrInvalid)
	}
	paths := map[string]string{}
	for name, s := range map[string]string{"index": cfg.Index, "data": cfg.Data, "backup": cfg.Backup, "pending": cfg.Pending} {
		if s == "" {
			continue
		}
		p, err := sqlitePath(s)
		if err != nil {
			return nil, fmt.Errorf("vault %s: %w", name, err)
		}
		paths[name] = p
	}
	if cfg.Pending == "" {
		paths["pending"] = paths["index"] + ".pending"
	}
	seen := map[string]string{}
	for _, name := range []string{"index", "data", "backup", "pending"} {
		p, ok := paths[name]
		if !ok {
			continue
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		if other, dup := seen[abs]; dup {
			return nil, fmt.Errorf("%w: %s and %s are the same file", store.ErrInvalid, name, other)
		}
		seen[abs] = name
	}
	check, err := store.KeyCheck(cfg.DataKey)
	if err != nil {
		return nil, err
	}

	return sqlstore.Open(ctx, sqlstore.Openers{
		Index: func(ctx context.Context) (store.Index, error) { return OpenIndex(ctx, "sqlite:"+paths["index"]) },
		Pending: func(ctx context.Context) (store.Pending, error) {
			return OpenPending(ctx, "sqlite:"+paths["pending"], check)
		},
		Data: func(ctx context.Context, name, dsn string) (*Data, error) {
			return OpenData(ctx, dsn, name, check, cfg.Logger)
		},
		Primary:       "sqlite:" + paths["data"],
		Backup:        sqliteDSN(paths["backup"]),
		AllowDegraded: cfg.AllowDegraded,
	}, store.Options{DataKey: cfg.DataKey, Now: cfg.Now, Logger: cfg.Logger, Fold: cfg.Fold, Observe: cfg.Observe})
}

// sqliteDSN is the DSN of the file at path, "" for none.
func sqliteDSN(path string) string {
	if path == "" {
		return ""
	}
	return "sqlite:" + path
}

// sqlitePath returns the file a DSN names, refusing any other scheme.
var sqlitePath = dsn.SQLitePath

// ErrStoreUnreachable is a configured data store that could not be created
// or opened at start (issue 22 item 5).
var ErrStoreUnreachable = sqlstore.ErrStoreUnreachable
