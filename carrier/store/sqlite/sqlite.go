// Package sqlite keeps the carrier's store (package store, DESIGN.md §6.6,
// §8) in one SQLite database: shipments, their events, and the outbox that
// delivers the events, written in the same transaction as each event. The
// store's logic and queries are carrier/store/sqlstore's; this package has
// the schema, Open and the replay memory of signed requests. Every write is
// one BEGIN IMMEDIATE transaction on a single connection, so the writers
// exclude each other: what sqlstore locks on PostgreSQL needs no lock here.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"orderseal/carrier/store"
	"orderseal/carrier/store/sqlstore"
	"orderseal/internal/dsn"
	outboxsql "orderseal/internal/outbox/sqlite"
	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncesql"
	"orderseal/internal/sqlitex"
)

// migrations are the numbered schema versions; never edit one, append.
var migrations = []string{
	`CREATE TABLE shipments (
		tracking        TEXT PRIMARY KEY,
		merchant        TEXT NOT NULL,
		order_id        TEXT NOT NULL,
		header_hash     BLOB NOT NULL CHECK (length(header_hash) = 32),
		ship_token      TEXT NOT NULL,
		token_source    TEXT NOT NULL CHECK (token_source IN ('granted', 'deposited')),
		invoice         TEXT NOT NULL,
		recipient_name  TEXT NOT NULL DEFAULT '',
		recipient_phone TEXT NOT NULL DEFAULT '',
		gift_note       TEXT NOT NULL DEFAULT '',
		status          TEXT NOT NULL,
		booked          TEXT NOT NULL,
		events_url      TEXT NOT NULL,
		UNIQUE (merchant, order_id)
	);
	CREATE TABLE events (
		tracking TEXT    NOT NULL REFERENCES shipments (tracking),
		seq      INTEGER NOT NULL CHECK (seq >= 1),
		status   TEXT    NOT NULL,
		at       TEXT    NOT NULL,
		note     TEXT    NOT NULL DEFAULT '',
		PRIMARY KEY (tracking, seq)
	);`,
	outboxsql.Migration,
	noncesql.Migration, // 3: the replay memory of signed requests (DESIGN.md §5 "Hardening")
	// 4: the merchant's parcel declaration and the bundle's section policy.
	`ALTER TABLE shipments ADD COLUMN parcel TEXT NOT NULL DEFAULT '';
	ALTER TABLE shipments ADD COLUMN policy TEXT NOT NULL DEFAULT '';`,
	noncesql.Migration2, // 5: the replay memory counts in memory
}

// Store is the carrier's database. It is safe for concurrent use.
type Store struct {
	*sqlstore.Store
	db *sql.DB
}

var _ store.Store = (*Store)(nil)

// path returns the file a DSN names, refusing any other scheme (the
// parameters named dsn hide the package).
var path = dsn.SQLitePath

// Open opens the database dsn names (sqlite:PATH or a bare path) and applies
// the migrations.
func Open(ctx context.Context, dsn string, opt store.Options) (*Store, error) {
	return open(ctx, dsn, opt, false)
}

// OpenReadOnly opens the database for reading only (labels, listings); it
// runs no migration and refuses (store.ErrNotMigrated) a database that is
// not at this version.
func OpenReadOnly(ctx context.Context, dsn string) (*Store, error) {
	return open(ctx, dsn, store.Options{}, true)
}

func open(ctx context.Context, dsn string, cfg store.Options, readOnly bool) (*Store, error) {
	cfg, err := sqlstore.Options(cfg)
	if err != nil {
		return nil, err
	}
	p, err := path(dsn)
	if err != nil {
		return nil, err
	}
	// BEGIN IMMEDIATE, and one writer in the process (sqlitex.Wrap's
	// group commit): sqlstore's transactions read rows they then change,
	// with no lock of their own on SQLite. Reads use the pool's other
	// connections meanwhile.
	var opts []sqlitex.Option
	switch {
	case readOnly:
		opts = append(opts, sqlitex.ReadOnly())
	case cfg.MustExist:
		opts = append(opts, sqlitex.MustExist(), sqlitex.Immediate())
	default:
		opts = append(opts, sqlitex.Immediate())
	}
	db, err := sqlitex.Open(p, opts...)
	if err != nil {
		return nil, err
	}
	if readOnly {
		v, err := sqlitex.Version(ctx, db)
		if err == nil && v != len(migrations) {
			err = fmt.Errorf("%w (schema version %d, want %d)", store.ErrNotMigrated, v, len(migrations))
		}
		if err != nil {
			db.Close()
			if !errors.Is(err, store.ErrNotMigrated) {
				err = fmt.Errorf("%w: %w", store.ErrNotMigrated, err)
			}
			return nil, err
		}
	} else if err := sqlitex.Migrate(ctx, db, migrations); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{Store: sqlstore.New(sqlitex.Wrap(db), outboxsql.New(db), cfg), db: db}, nil
}

// Nonces is the signed requests' replay memory in this database (store.Store).
func (s *Store) Nonces(quota nonce.Quota) nonce.Store {
	return noncesql.New(s.db, quota)
}
