// Package postgres is the PostgreSQL backend of the issuer's store
// (DESIGN.md §8, §9): the cards, with their numbers as store.SealedNumber
// only, the authorizations and the replay memory of signed requests, in one
// database several issuer nodes share. The store's logic and queries are
// issuer/store/sqlstore's, whose locks make the nodes safe: an
// authorization locks its (merchant, order id) with an advisory lock and
// its card's row, so a retry arriving at two nodes at once debits once and
// two orders on one card never overspend it. This package has the schema,
// Open (read-only sessions) and the replay memory.
package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"orderseal/internal/dsn"
	"orderseal/internal/pgdb"
	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncepg"
	"orderseal/issuer/store"
	"orderseal/issuer/store/sqlstore"
)

// Component names the issuer's migrations in schema_version.
const Component = "issuer"

// Times are unix nanoseconds, as in the SQLite backend.
var migrations = []string{`
CREATE TABLE card_key (
	id        INTEGER PRIMARY KEY CHECK (id = 1),
	check_mac BYTEA   NOT NULL
);
CREATE TABLE cards (
	seq          BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
	card_id      TEXT   COLLATE "C" PRIMARY KEY,
	lookup       BYTEA  NOT NULL CONSTRAINT cards_lookup UNIQUE, -- HMAC-SHA256(lookup sub-key, number)
	number_nonce BYTEA  NOT NULL,
	number_ct    BYTEA  NOT NULL,        -- XChaCha20-Poly1305(number), AAD = card_id
	last4        TEXT   NOT NULL,
	cardholder   TEXT   NOT NULL,
	expiry       TEXT   NOT NULL,        -- YYYY-MM, valid through the month's end (UTC)
	currency     TEXT   NOT NULL,
	credit_limit BIGINT NOT NULL CHECK (credit_limit > 0),
	available    BIGINT NOT NULL CHECK (available >= 0 AND available <= credit_limit),
	status       TEXT   NOT NULL CHECK (status IN ('active', 'suspended', 'closed')),
	created      BIGINT NOT NULL
);
CREATE INDEX cards_cardholder ON cards (cardholder);
CREATE TABLE authorizations (
	seq         BIGINT  GENERATED ALWAYS AS IDENTITY UNIQUE,
	merchant    TEXT    NOT NULL,
	order_id    TEXT    NOT NULL,
	header_hash BYTEA   NOT NULL CHECK (length(header_hash) = 32),
	sealer      TEXT    NOT NULL DEFAULT '',
	channel     TEXT    NOT NULL DEFAULT 'online' CHECK (channel IN ('online', 'assisted')),
	session     TEXT    NOT NULL DEFAULT '' CHECK ((session <> '') = (channel = 'assisted')),
	card_id     TEXT    COLLATE "C" REFERENCES cards (card_id), -- NULL: no card matched
	amount      BIGINT  NOT NULL CHECK (amount > 0),
	currency    TEXT    NOT NULL,
	decision    TEXT    NOT NULL CHECK (decision IN ('approved', 'declined')),
	reason      TEXT    NOT NULL,
	auth_code   TEXT    NOT NULL,
	decided     BIGINT  NOT NULL,
	voided      BOOLEAN NOT NULL DEFAULT false,
	voided_at   BIGINT  NOT NULL DEFAULT 0,
	PRIMARY KEY (merchant, order_id)
);
CREATE INDEX authorizations_card ON authorizations (card_id, decided);
CREATE INDEX authorizations_decided ON authorizations (decided);
CREATE INDEX authorizations_session ON authorizations (session, decided) WHERE session <> '';
`, noncepg.Migration,
	// 3: the payment lifecycle after authorization (DESIGN.md §6.8), as in the SQLite backend.
	`ALTER TABLE authorizations ADD COLUMN hold_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE authorizations ADD COLUMN captured BIGINT NOT NULL DEFAULT 0;
ALTER TABLE authorizations ADD COLUMN refunded BIGINT NOT NULL DEFAULT 0;
ALTER TABLE authorizations ADD COLUMN released BIGINT NOT NULL DEFAULT 0;
ALTER TABLE authorizations ADD COLUMN release_reason TEXT NOT NULL DEFAULT '' CHECK (release_reason IN ('', 'completed', 'expired'));
ALTER TABLE authorizations ADD COLUMN installments INTEGER NOT NULL DEFAULT 1 CHECK (installments BETWEEN 1 AND 60);
ALTER TABLE authorizations ADD CONSTRAINT authorizations_captured CHECK (captured >= 0 AND captured <= amount);
ALTER TABLE authorizations ADD CONSTRAINT authorizations_refunded CHECK (refunded >= 0 AND refunded <= captured);
UPDATE authorizations SET hold_until = decided + 604800000000000 WHERE decision = 'approved';
CREATE INDEX authorizations_hold ON authorizations (hold_until) WHERE decision = 'approved' AND NOT voided AND released = 0;
CREATE TABLE payment_ops (
	merchant TEXT    NOT NULL,
	op_key   TEXT    NOT NULL, -- the merchant's idempotency key
	order_id TEXT    NOT NULL,
	kind     TEXT    NOT NULL CHECK (kind IN ('capture', 'refund', 'void', 'release')),
	amount   BIGINT  NOT NULL CHECK (amount >= 0),
	currency TEXT    NOT NULL,
	final    BOOLEAN NOT NULL,
	at       BIGINT  NOT NULL,
	PRIMARY KEY (merchant, op_key),
	FOREIGN KEY (merchant, order_id) REFERENCES authorizations (merchant, order_id)
);
CREATE INDEX payment_ops_order ON payment_ops (merchant, order_id, at);
`}

// Store is the issuer's store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	*sqlstore.Store
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database a postgres:// DSN names and runs its
// migrations; with opt.MustExist it refuses (store.ErrNoDatabase) a
// database that is missing or holds no issuer store yet, and with
// opt.ReadOnly it reads only, in read-only sessions, a database at this
// program's schema. With a card key it checks the key against the one the
// database was written under (store.ErrWrongKey), recording it on first use.
func Open(ctx context.Context, url string, opt store.Options) (*Store, error) {
	d, err := dsn.Parse(url)
	if err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	openPool, conns := pgdb.Open, 0
	if opt.ReadOnly {
		openPool, conns = pgdb.OpenReadOnly, 2 // every session reads only
	}
	pool, err := openPool(ctx, url, conns)
	if err != nil {
		if (opt.MustExist || opt.ReadOnly) && errors.Is(err, pgdb.ErrNoDatabase) {
			return nil, fmt.Errorf("%s: %w", d, store.ErrNoDatabase)
		}
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	if err := prepare(ctx, pool, d, opt); err != nil {
		pool.Close()
		return nil, err
	}
	s, err := sqlstore.New(ctx, pgdb.Wrap(pool), opt)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{Store: s, pool: pool}, nil
}

// prepare checks the schema (opt.MustExist, opt.ReadOnly) or migrates it.
func prepare(ctx context.Context, pool *pgxpool.Pool, d dsn.DSN, opt store.Options) error {
	if opt.MustExist || opt.ReadOnly {
		v, err := pgdb.SchemaVersion(ctx, pool, Component)
		if err != nil {
			return fmt.Errorf("issuer database: %w", pgdb.Explain(err, d))
		}
		switch {
		case v == 0:
			return fmt.Errorf("%s: %w", d, store.ErrNoDatabase)
		case opt.ReadOnly && v != len(migrations):
			return fmt.Errorf("issuer database: schema version %d, this program reads %d: open it once read-write to migrate it", v, len(migrations))
		}
	}
	if opt.ReadOnly {
		return nil
	}
	if err := pgdb.Migrate(ctx, pool, Component, migrations); err != nil {
		return fmt.Errorf("issuer database: %w", pgdb.Explain(err, d))
	}
	return nil
}

// Nonces is the signed requests' replay memory in this database (store.Store).
func (s *Store) Nonces(quota nonce.Quota) nonce.Store { return noncepg.New(s.pool, quota) }
