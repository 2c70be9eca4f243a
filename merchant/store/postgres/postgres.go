// Package postgres keeps the merchant's store (package store, DESIGN.md
// §6.4, §8, §9) in a PostgreSQL database that several merchant nodes share:
// the outbox table beside the orders so a relay job commits with the state
// change that calls for it, jobs leased to the node that claims them
// (internal/outbox/postgres), and the replay memory of signed requests in
// the same database (noncepg). Every change that reads before it writes
// locks what it read (FOR UPDATE, or an advisory lock for a row that does
// not exist yet), so two nodes never both apply one transition. The
// store's queries are package sqlstore's; here are the schema, Open and
// Close.
package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"orderseal/internal/dsn"
	outboxpg "orderseal/internal/outbox/postgres"
	"orderseal/internal/pgdb"
	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncepg"
	"orderseal/merchant/store"
	"orderseal/merchant/store/sqlstore"
)

// Component names the merchant's migrations in schema_version.
const Component = "merchant"

// Times are unix milliseconds, as in the SQLite backend.
var migrations = []string{`
CREATE TABLE catalog (
	sku        TEXT   COLLATE "C" PRIMARY KEY, -- byte order, as in SQLite, whatever the database's locale
	name       TEXT   NOT NULL,
	unit_price BIGINT NOT NULL CHECK (unit_price >= 0),
	currency   TEXT   NOT NULL,
	updated    BIGINT NOT NULL
);
CREATE TABLE orders (
	order_id    TEXT   COLLATE "C" PRIMARY KEY,
	cardholder  TEXT   NOT NULL,
	header_hash BYTEA  NOT NULL,
	bundle      BYTEA  NOT NULL,      -- as received until the issuer answers
	issuer_section_sha256 BYTEA,      -- then the hash of the dropped issuer section
	issuer      TEXT   NOT NULL,
	carrier     TEXT   NOT NULL,
	vault       TEXT   NOT NULL DEFAULT '',
	ship_token  TEXT   NOT NULL DEFAULT '',
	buyer_name  TEXT   NOT NULL DEFAULT '',
	buyer_email TEXT   NOT NULL DEFAULT '',
	items       BYTEA  NOT NULL,      -- JSON of the merchant section's items, as sent
	total       BIGINT NOT NULL,
	currency    TEXT   NOT NULL,
	state       TEXT   NOT NULL,
	reason      TEXT   NOT NULL DEFAULT '',
	auth_code   TEXT   NOT NULL DEFAULT '',
	invoice     TEXT   NOT NULL DEFAULT '',
	tracking    TEXT   NOT NULL DEFAULT '',
	session_id  TEXT   COLLATE "C" NOT NULL DEFAULT '',
	created     BIGINT NOT NULL,
	updated     BIGINT NOT NULL
);
CREATE INDEX orders_cardholder ON orders (cardholder, created);
CREATE INDEX orders_created ON orders (created DESC, order_id);
CREATE INDEX orders_session ON orders (session_id, created) WHERE session_id <> '';
CREATE TABLE timeline (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	order_id    TEXT   COLLATE "C" NOT NULL REFERENCES orders (order_id),
	at          BIGINT NOT NULL,
	state       TEXT   NOT NULL,
	detail      TEXT   NOT NULL DEFAULT '',
	carrier_seq BIGINT,               -- set for carrier events: dedupes retries
	UNIQUE (order_id, carrier_seq)
);
CREATE INDEX timeline_order ON timeline (order_id, id);
CREATE TABLE assisted_sessions (
	session_id  TEXT   COLLATE "C" PRIMARY KEY,
	consultant  TEXT   NOT NULL,
	company     TEXT   NOT NULL,
	device      TEXT   NOT NULL,
	device_key  BYTEA  NOT NULL,
	secret_hash BYTEA  NOT NULL,
	login_nonce TEXT   NOT NULL CONSTRAINT assisted_login_nonce UNIQUE, -- a login request is good once
	created     BIGINT NOT NULL,
	expires     BIGINT NOT NULL,      -- the shift's end
	ended       BIGINT,               -- logout or a later login on the device
	end_reason  TEXT   NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX assisted_open ON assisted_sessions (consultant, device) WHERE ended IS NULL;
CREATE INDEX assisted_consultant ON assisted_sessions (consultant, created);
`, outboxpg.Migration, noncepg.Migration, paymentsMigration, operatorsMigration}

// Store is the merchant database as one node sees it. Safe for concurrent use.
type Store struct {
	*sqlstore.Store
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects to and migrates the database a postgres:// DSN names; now
// nil is time.Now. Several nodes may open one database at once.
func Open(ctx context.Context, url string, now func() time.Time, opts ...outboxpg.Option) (*Store, error) {
	pool, err := pgdb.OpenMigrated(ctx, url, 0, Component, migrations)
	if err != nil {
		return nil, err
	}
	return newStore(pool, now, opts...), nil
}

// OpenReadOnly connects for reading only, in read-only transactions, and
// refuses (store.ErrNotMigrated) a database this version has not migrated.
func OpenReadOnly(ctx context.Context, url string) (*Store, error) {
	d, err := dsn.Parse(url)
	if err != nil {
		return nil, err
	}
	// Every session reads only: the CLIs that read must never write.
	pool, err := pgdb.OpenReadOnly(ctx, url, 2)
	if err != nil {
		return nil, err
	}
	v, err := pgdb.SchemaVersion(ctx, pool, Component)
	switch {
	case err != nil:
		err = fmt.Errorf("%w: %w", store.ErrNotMigrated, pgdb.Explain(err, d))
	case v != len(migrations):
		err = fmt.Errorf("%w (schema version %d, want %d)", store.ErrNotMigrated, v, len(migrations))
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return newStore(pool, nil), nil
}

func newStore(pool *pgxpool.Pool, now func() time.Time, opts ...outboxpg.Option) *Store {
	return &Store{Store: sqlstore.New(pgdb.Wrap(pool), outboxpg.New(pool, opts...), now), pool: pool}
}

// Close closes the pool.
func (s *Store) Close() error { s.pool.Close(); return nil }

// Nonces is the signed requests' replay memory in this database (store.Store).
func (s *Store) Nonces(quota nonce.Quota) nonce.Store { return noncepg.New(s.pool, quota) }
