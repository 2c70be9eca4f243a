// Package postgres keeps the carrier's store (package store, DESIGN.md
// §6.6, §8, §9) in a PostgreSQL database several carrier nodes share:
// shipments, their events, the outbox that delivers the events (written in
// the same transaction as each event, claimed under leases by
// internal/outbox/postgres) and the replay memory of signed requests.
// The store's logic and queries are carrier/store/sqlstore's, whose locks
// make the nodes safe: a booking holds an advisory lock on its (merchant,
// order id) and an event its shipment's row, so retries on two nodes book
// once and events are numbered without gaps or twins. This package has the
// schema, Open (read-only sessions) and the replay memory.
package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"orderseal/carrier/store"
	"orderseal/carrier/store/sqlstore"
	"orderseal/internal/dsn"
	outboxpg "orderseal/internal/outbox/postgres"
	"orderseal/internal/pgdb"
	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncepg"
)

// Component names the carrier's migrations in schema_version.
const Component = "carrier"

// Times are store.TimeLayout text, as in the SQLite backend.
var migrations = []string{`
CREATE TABLE shipments (
	tracking        TEXT COLLATE "C" PRIMARY KEY,
	merchant        TEXT NOT NULL,
	order_id        TEXT NOT NULL,
	header_hash     BYTEA NOT NULL CHECK (length(header_hash) = 32),
	ship_token      TEXT NOT NULL,
	token_source    TEXT NOT NULL CHECK (token_source IN ('granted', 'deposited')),
	invoice         TEXT NOT NULL,
	recipient_name  TEXT NOT NULL DEFAULT '',
	recipient_phone TEXT NOT NULL DEFAULT '',
	gift_note       TEXT NOT NULL DEFAULT '',
	status          TEXT NOT NULL,
	booked          TEXT NOT NULL,
	events_url      TEXT NOT NULL,
	parcel          TEXT NOT NULL DEFAULT '',
	policy          TEXT NOT NULL DEFAULT '',
	UNIQUE (merchant, order_id)
);
CREATE INDEX shipments_booked ON shipments (booked DESC, tracking);
CREATE TABLE events (
	tracking TEXT COLLATE "C" NOT NULL REFERENCES shipments (tracking),
	seq      BIGINT NOT NULL CHECK (seq >= 1),
	status   TEXT   NOT NULL,
	at       TEXT   NOT NULL,
	note     TEXT   NOT NULL DEFAULT '',
	PRIMARY KEY (tracking, seq)
);
`, outboxpg.Migration, noncepg.Migration}

// Store is the carrier's database as one node sees it. Safe for concurrent use.
type Store struct {
	*sqlstore.Store
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database a postgres:// DSN names and applies the
// migrations; with opt.MustExist it refuses (store.ErrNotMigrated) one that
// holds no carrier store yet.
func Open(ctx context.Context, url string, opt store.Options) (*Store, error) {
	return open(ctx, url, opt, false)
}

// OpenReadOnly connects for reading only, in read-only sessions; it runs no
// migration and refuses (store.ErrNotMigrated) a database not at this version.
func OpenReadOnly(ctx context.Context, url string) (*Store, error) {
	return open(ctx, url, store.Options{}, true)
}

func open(ctx context.Context, url string, cfg store.Options, readOnly bool) (*Store, error) {
	cfg, err := sqlstore.Options(cfg)
	if err != nil {
		return nil, err
	}
	d, err := dsn.Parse(url)
	if err != nil {
		return nil, err
	}
	openPool, conns := pgdb.Open, 0
	if readOnly {
		openPool, conns = pgdb.OpenReadOnly, 2
	}
	pool, err := openPool(ctx, url, conns)
	if err != nil {
		return nil, err
	}
	if readOnly || cfg.MustExist {
		v, err := pgdb.SchemaVersion(ctx, pool, Component)
		switch {
		case err != nil:
			err = fmt.Errorf("%w: %w", store.ErrNotMigrated, pgdb.Explain(err, d))
		case readOnly && v != len(migrations), v == 0:
			err = fmt.Errorf("%w (schema version %d, want %d)", store.ErrNotMigrated, v, len(migrations))
		}
		if err != nil {
			pool.Close()
			return nil, err
		}
	}
	if !readOnly {
		if err := pgdb.Migrate(ctx, pool, Component, migrations); err != nil {
			pool.Close()
			return nil, pgdb.Explain(err, d)
		}
	}
	return &Store{Store: sqlstore.New(pgdb.Wrap(pool), outboxpg.New(pool), cfg), pool: pool}, nil
}

// Nonces is the signed requests' replay memory in this database (store.Store).
func (s *Store) Nonces(quota nonce.Quota) nonce.Store { return noncepg.New(s.pool, quota) }
