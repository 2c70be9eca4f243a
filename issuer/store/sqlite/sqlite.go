// Package sqlite is the SQLite backend of the issuer's store (DESIGN.md
// §8): one database (internal/sqlitex: WAL, synchronous=FULL, numbered
// migrations run at Open, file created 0600) holding the cards, with their
// numbers as store.SealedNumber only, and the authorizations. The store's
// logic and queries are issuer/store/sqlstore's; this package has the
// schema, Open and the replay memory of signed requests. Every write is one
// BEGIN IMMEDIATE transaction on a single connection, so the writers of a
// process, and of every process on the file, exclude each other: what
// sqlstore locks on PostgreSQL needs no lock here.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"

	"orderseal/internal/dsn"
	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncesql"
	"orderseal/internal/sqlitex"
	"orderseal/issuer/store"
	"orderseal/issuer/store/sqlstore"
)

var migrations = []string{
	`CREATE TABLE card_key (
		id    INTEGER PRIMARY KEY CHECK (id = 1),
		check_mac BLOB NOT NULL
	) STRICT;

	CREATE TABLE cards (
		card_id      TEXT PRIMARY KEY,
		lookup       BLOB NOT NULL UNIQUE, -- HMAC-SHA256(lookup sub-key, number)
		number_nonce BLOB NOT NULL,
		number_ct    BLOB NOT NULL,        -- XChaCha20-Poly1305(number), AAD = card_id
		last4        TEXT NOT NULL,
		cardholder   TEXT NOT NULL,
		expiry       TEXT NOT NULL,        -- YYYY-MM, valid through the month's end (UTC)
		currency     TEXT NOT NULL,
		credit_limit INTEGER NOT NULL CHECK (credit_limit > 0),
		available    INTEGER NOT NULL CHECK (available >= 0 AND available <= credit_limit),
		status       TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'closed')),
		created      INTEGER NOT NULL      -- unix nanoseconds
	) STRICT;
	CREATE INDEX cards_cardholder ON cards(cardholder);

	CREATE TABLE authorizations (
		merchant    TEXT NOT NULL,
		order_id    TEXT NOT NULL,
		header_hash BLOB NOT NULL CHECK (length(header_hash) = 32),
		card_id     TEXT REFERENCES cards(card_id), -- NULL: no card matched
		amount      INTEGER NOT NULL CHECK (amount > 0),
		currency    TEXT NOT NULL,
		decision    TEXT NOT NULL CHECK (decision IN ('approved', 'declined')),
		reason      TEXT NOT NULL,
		auth_code   TEXT NOT NULL,
		decided     INTEGER NOT NULL,          -- unix nanoseconds
		voided      INTEGER NOT NULL DEFAULT 0 CHECK (voided IN (0, 1)),
		voided_at   INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (merchant, order_id)
	) STRICT;
	CREATE INDEX authorizations_card ON authorizations(card_id, decided);`,

	// 2: assisted orders (DESIGN.md §6.7). Rows written before it were all
	// sealed by cardholders (online); their sealer was not recorded.
	`ALTER TABLE authorizations ADD COLUMN sealer TEXT NOT NULL DEFAULT ''; -- the bundle's cardholder field: a cardholder, or an assisted order's consultant
	ALTER TABLE authorizations ADD COLUMN channel TEXT NOT NULL DEFAULT 'online' CHECK (channel IN ('online', 'assisted'));
	ALTER TABLE authorizations ADD COLUMN session TEXT NOT NULL DEFAULT '' CHECK ((session != '') = (channel = 'assisted'));
	CREATE INDEX authorizations_decided ON authorizations(decided);
	CREATE INDEX authorizations_session ON authorizations(session, decided) WHERE session != '';`,

	// 3: the replay memory of signed requests (DESIGN.md §5 "Hardening").
	noncesql.Migration,

	// 4: the payment lifecycle after authorization (DESIGN.md §6.8). Holds
	// approved before it get the default period from their decision.
	`ALTER TABLE authorizations ADD COLUMN hold_until INTEGER NOT NULL DEFAULT 0; -- unix nanoseconds; approvals only
	ALTER TABLE authorizations ADD COLUMN captured INTEGER NOT NULL DEFAULT 0 CHECK (captured >= 0 AND captured <= amount);
	ALTER TABLE authorizations ADD COLUMN refunded INTEGER NOT NULL DEFAULT 0 CHECK (refunded >= 0 AND refunded <= captured);
	ALTER TABLE authorizations ADD COLUMN released INTEGER NOT NULL DEFAULT 0; -- unix nanoseconds; 0: the remainder is held
	ALTER TABLE authorizations ADD COLUMN release_reason TEXT NOT NULL DEFAULT '' CHECK (release_reason IN ('', 'completed', 'expired'));
	ALTER TABLE authorizations ADD COLUMN installments INTEGER NOT NULL DEFAULT 1 CHECK (installments BETWEEN 1 AND 60); -- the plan recorded with an approval
	UPDATE authorizations SET hold_until = decided + 604800000000000 WHERE decision = 'approved';
	CREATE INDEX authorizations_hold ON authorizations(hold_until) WHERE decision = 'approved' AND voided = 0 AND released = 0;
	CREATE TABLE payment_ops (
		merchant TEXT NOT NULL,
		op_key   TEXT NOT NULL,      -- the merchant's idempotency key
		order_id TEXT NOT NULL,
		kind     TEXT NOT NULL CHECK (kind IN ('capture', 'refund', 'void', 'release')),
		amount   INTEGER NOT NULL CHECK (amount >= 0),
		currency TEXT NOT NULL,
		final    INTEGER NOT NULL CHECK (final IN (0, 1)),
		at       INTEGER NOT NULL,   -- unix nanoseconds
		PRIMARY KEY (merchant, op_key),
		FOREIGN KEY (merchant, order_id) REFERENCES authorizations(merchant, order_id)
	) STRICT;
	CREATE INDEX payment_ops_order ON payment_ops(merchant, order_id, at);`,

	// 5: the replay memory counts in memory (noncesql).
	noncesql.Migration2,
}

// Store is the issuer's store on SQLite. It is safe for concurrent use.
type Store struct {
	*sqlstore.Store
	db *sql.DB
}

var _ store.Store = (*Store)(nil)

// Open opens the database dsn names ("sqlite:PATH" or a bare path),
// creating it when absent unless opt.MustExist, and runs its migrations;
// with opt.ReadOnly it opens an existing database read-only instead
// (OpenReadOnly). With a card key it checks the key against the one the
// database was written under (store.ErrWrongKey), recording it on first use.
func Open(ctx context.Context, dsnString string, opt store.Options) (*Store, error) {
	d, err := dsn.Parse(dsnString)
	if err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	if d.Scheme != dsn.SQLite {
		return nil, fmt.Errorf("issuer database: %w: %s is not a SQLite DSN (want sqlite:PATH)", dsn.ErrDSN, d)
	}
	// BEGIN IMMEDIATE, and one writer in the process (sqlitex.Wrap's
	// group commit): the authorize path reads then writes, and its
	// transactions queue in Go instead of in SQLite's busy handler.
	// sqlstore relies on it: its transactions read rows they then change,
	// with no lock of their own on SQLite. Reads use the pool's other
	// connections meanwhile.
	opts := []sqlitex.Option{sqlitex.Immediate()}
	switch {
	case opt.ReadOnly:
		opts = []sqlitex.Option{sqlitex.ReadOnly(), sqlitex.MustExist(), sqlitex.MaxConns(2)}
	case opt.MustExist:
		opts = append(opts, sqlitex.MustExist())
	}
	db, err := sqlitex.Open(d.Path, opts...)
	if err != nil {
		if opt.MustExist || opt.ReadOnly {
			if _, serr := os.Stat(d.Path); errors.Is(serr, os.ErrNotExist) {
				return nil, fmt.Errorf("%s: %w", d.Path, store.ErrNoDatabase)
			}
		}
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	if opt.ReadOnly {
		err = checkVersion(ctx, db)
	} else {
		err = sqlitex.Migrate(ctx, db, migrations)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	s, err := sqlstore.New(ctx, sqlitex.Wrap(db), opt)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{Store: s, db: db}, nil
}

// OpenReadOnly opens an existing database read-only: it creates nothing,
// runs no migration (a database not at this program's schema is refused),
// and every write fails. For inspection while the daemon runs.
func OpenReadOnly(ctx context.Context, dsnString string, opt store.Options) (*Store, error) {
	opt.ReadOnly = true
	return Open(ctx, dsnString, opt)
}

// checkVersion refuses a database a read-only store cannot read as it is.
func checkVersion(ctx context.Context, db *sql.DB) error {
	v, err := sqlitex.Version(ctx, db)
	if err != nil {
		return err
	}
	if v != len(migrations) {
		return fmt.Errorf("schema version %d, this program reads %d: open it once read-write to migrate it", v, len(migrations))
	}
	return nil
}

// Nonces is the signed requests' replay memory in this database (store.Store).
func (s *Store) Nonces(quota nonce.Quota) nonce.Store {
	return noncesql.New(s.db, quota)
}
