package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncesql"
	"orderseal/internal/sqlitex"
	"orderseal/vault/store"
	"orderseal/vault/store/sqlstore"
)

var indexMigrations = []string{
	`CREATE TABLE entries (
		token       TEXT PRIMARY KEY,
		owner       TEXT NOT NULL,
		type        TEXT NOT NULL,
		label       TEXT NOT NULL,
		epoch       INTEGER NOT NULL,
		created     INTEGER NOT NULL, -- unix nanoseconds
		expires     INTEGER NOT NULL, -- unix nanoseconds; 0: never
		shareable   INTEGER NOT NULL CHECK (shareable IN (0, 1)),
		replaced_by TEXT NOT NULL DEFAULT ''
	) STRICT;
	CREATE INDEX entries_owner ON entries(owner, created);
	CREATE INDEX entries_current ON entries(created) WHERE replaced_by = '';

	CREATE TABLE grants (
		id       TEXT PRIMARY KEY,
		token    TEXT NOT NULL REFERENCES entries(token),
		merchant TEXT NOT NULL,
		carrier  TEXT NOT NULL,
		order_id TEXT NOT NULL,
		invoice  TEXT NOT NULL,
		expires  INTEGER NOT NULL,
		max_uses INTEGER NOT NULL CHECK (max_uses > 0),
		uses     INTEGER NOT NULL DEFAULT 0,
		created  INTEGER NOT NULL,
		UNIQUE (token, carrier, order_id)
	) STRICT;

	CREATE TABLE audit (
		seq      INTEGER PRIMARY KEY,
		time     INTEGER NOT NULL, -- unix nanoseconds
		kind     TEXT NOT NULL,
		actor    TEXT NOT NULL,
		token    TEXT NOT NULL,
		order_id TEXT NOT NULL,
		outcome  TEXT NOT NULL,
		prev     BLOB NOT NULL,
		hash     BLOB NOT NULL
	) STRICT;`,
	// Grant states (DESIGN.md §7): grants made before them were usable at
	// once, so they stay active; new ones start pending.
	`ALTER TABLE grants ADD COLUMN state TEXT NOT NULL DEFAULT 'active'
		CHECK (state IN ('pending', 'active', 'revoked'));
	CREATE INDEX grants_order ON grants(merchant, order_id);
	CREATE INDEX grants_carrier ON grants(carrier);`,

	// The replay memory of signed requests (DESIGN.md §5 "Hardening").
	noncesql.Migration,
	// Its counts kept in memory (noncesql).
	noncesql.Migration2,
}

// Index is the index database (store.Index): entries, grants and the audit
// log (vault/store/sqlstore), in one SQLite file whose transactions are all
// BEGIN IMMEDIATE.
type Index struct {
	*sqlstore.Index
	db *sql.DB
}

var _ store.Index = (*Index)(nil)

// newIndex serves db. Its writes (Update, UseGrant, the nonce store's
// flushes) hold db's write lock (sqlitex.WriteLock), so they queue in Go,
// group-committed, rather than in SQLite's sleeping busy handler; readers
// need no lock (WAL).
func newIndex(db *sql.DB) *Index {
	return &Index{Index: sqlstore.NewIndex(sqlitex.Wrap(db)), db: db}
}

// OpenIndex opens (creating when absent) the index at dsn and runs its migrations.
func OpenIndex(ctx context.Context, dsnString string) (*Index, error) {
	path, err := sqlitePath(dsnString)
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	db, err := sqlitex.Open(path, sqlitex.Immediate())
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	if err := sqlitex.Migrate(ctx, db, indexMigrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("vault index: %w", err)
	}
	return newIndex(db), nil
}

// OpenIndexReadOnly opens the existing index at dsn read-only: it never
// creates a file and no statement can write (for 'vault audit verify' and
// the test harness, which may run beside the serving vault).
func OpenIndexReadOnly(ctx context.Context, dsnString string) (*Index, error) {
	path, err := sqlitePath(dsnString)
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	db, err := sqlitex.Open(path, sqlitex.ReadOnly(), sqlitex.MaxConns(1))
	if err != nil {
		return nil, err
	}
	return newIndex(db), nil
}

// Nonces is the signed requests' replay memory in the index (store.Index).
func (x *Index) Nonces(quota nonce.Quota) nonce.Store {
	return noncesql.New(x.db, quota)
}
