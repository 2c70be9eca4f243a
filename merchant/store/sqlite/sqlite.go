// Package sqlite keeps the merchant's store (package store, DESIGN.md §6.4,
// §8) in one SQLite database: WAL, synchronous=FULL, one connection so
// transactions queue in order, and the outbox table beside the orders so a
// relay job commits with the state change that calls for it. The store's
// queries are package sqlstore's; here are the schema, Open and Close.
package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"time"

	"orderseal/internal/dsn"
	outboxsql "orderseal/internal/outbox/sqlite"
	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncesql"
	"orderseal/internal/sqlitex"
	"orderseal/merchant/store"
	"orderseal/merchant/store/sqlstore"
)

var migrations = []string{`
CREATE TABLE catalog (
	sku        TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	unit_price INTEGER NOT NULL CHECK (unit_price >= 0),
	currency   TEXT NOT NULL,
	updated    INTEGER NOT NULL
);
CREATE TABLE orders (
	order_id    TEXT PRIMARY KEY,
	cardholder  TEXT NOT NULL,
	header_hash BLOB NOT NULL,
	bundle      BLOB NOT NULL,     -- as received: every section still sealed
	issuer      TEXT NOT NULL,
	carrier     TEXT NOT NULL,
	vault       TEXT NOT NULL DEFAULT '',
	ship_token  TEXT NOT NULL DEFAULT '',
	buyer_name  TEXT NOT NULL DEFAULT '',
	buyer_email TEXT NOT NULL DEFAULT '',
	items       TEXT NOT NULL,     -- JSON of the merchant section's items
	total       INTEGER NOT NULL,
	currency    TEXT NOT NULL,
	state       TEXT NOT NULL,
	reason      TEXT NOT NULL DEFAULT '',
	auth_code   TEXT NOT NULL DEFAULT '',
	invoice     TEXT NOT NULL DEFAULT '',
	tracking    TEXT NOT NULL DEFAULT '',
	created     INTEGER NOT NULL,
	updated     INTEGER NOT NULL
);
CREATE INDEX orders_cardholder ON orders (cardholder, created);
CREATE TABLE timeline (
	id          INTEGER PRIMARY KEY,
	order_id    TEXT NOT NULL REFERENCES orders (order_id),
	at          INTEGER NOT NULL,
	state       TEXT NOT NULL,
	detail      TEXT NOT NULL DEFAULT '',
	carrier_seq INTEGER,           -- set for carrier events: dedupes retries
	UNIQUE (order_id, carrier_seq)
);
CREATE INDEX timeline_order ON timeline (order_id, id);
`, outboxsql.Migration, assistedMigration,
	// Retention (DESIGN.md §8): once the issuer has answered, the bundle
	// loses its issuer section; this is the SHA-256 of its ciphertext.
	`ALTER TABLE orders ADD COLUMN issuer_section_sha256 BLOB;`,
	deviceKeyMigration, noncesql.Migration,
	// The issuer's word on each order's payment after authorization (DESIGN.md §6.8).
	paymentsMigration, operatorsMigration,
	// The replay memory's counts kept in memory (noncesql).
	noncesql.Migration2}

// Store is the merchant database. Safe for concurrent use.
type Store struct {
	*sqlstore.Store
	writer bool
	db     *sql.DB
}

var _ store.Store = (*Store)(nil)

// path returns the file a DSN names, refusing any other scheme (the
// parameters named dsn hide the package).
var path = dsn.SQLitePath

// Open opens (creating if need be) and migrates the database dsn names
// (sqlite:PATH or a bare path); now nil is time.Now.
func Open(ctx context.Context, dsn string, now func() time.Time) (*Store, error) {
	p, err := path(dsn)
	if err != nil {
		return nil, err
	}
	// secure_delete: a dropped issuer section is zeroed, not left in free space.
	db, err := sqlitex.Open(p, sqlitex.Immediate(), sqlitex.SecureDelete())
	if err != nil {
		return nil, err
	}
	if err := sqlitex.Migrate(ctx, db, migrations); err != nil {
		db.Close()
		return nil, err
	}
	st := newStore(db, now)
	st.writer = true
	return st, nil
}

// OpenReadOnly opens an existing database for reading only: nothing is
// created or migrated. A missing file is its os.Stat error (fs.ErrNotExist),
// a database at a newer schema version, or none, store.ErrNotMigrated. A
// database at an older version — written by an earlier build still serving
// from it, during an upgrade — is read as it is: what its tables do not
// hold yet fails with the database's own error.
func OpenReadOnly(ctx context.Context, dsn string) (*Store, error) {
	p, err := path(dsn)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(p); err != nil {
		return nil, err
	}
	db, err := sqlitex.Open(p, sqlitex.ReadOnly(), sqlitex.MustExist())
	if err != nil {
		return nil, err
	}
	v, err := sqlitex.Version(ctx, db)
	if err == nil && (v < 1 || v > len(migrations)) {
		err = fmt.Errorf("%w (schema version %d, want 1 to %d)", store.ErrNotMigrated, v, len(migrations))
	} else if err != nil {
		err = fmt.Errorf("%w: %w", store.ErrNotMigrated, err)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return newStore(db, nil), nil
}

// newStore serves db. Its one writer in the process (sqlitex.Wrap's group
// commit) and BEGIN IMMEDIATE (sqlitex.Immediate) make every write
// transaction exclusive, so the shared code's row and advisory locks, not
// needed here, do nothing; reads use the pool's other connections.
func newStore(db *sql.DB, now func() time.Time) *Store {
	return &Store{Store: sqlstore.New(sqlitex.Wrap(db), outboxsql.New(db), now), db: db}
}

// Close closes the database. A writer first checkpoints and truncates the
// WAL, whose older frames still hold bundles as received (issuer sections
// included) even when other processes keep the database open.
func (s *Store) Close() error {
	if s.writer {
		s.db.ExecContext(context.Background(), `PRAGMA wal_checkpoint(TRUNCATE)`) // best effort: a reader mid-transaction keeps the WAL
	}
	return sqlitex.Close(s.db) // the nonce store writes its last rows first
}

// Nonces is the signed requests' replay memory in this database (store.Store).
func (s *Store) Nonces(quota nonce.Quota) nonce.Store {
	return noncesql.New(s.db, quota)
}
