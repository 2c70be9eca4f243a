// Package postgres is the PostgreSQL backend of the issuer's store
// (DESIGN.md §8, §9): the cards, with their numbers as store.SealedNumber
// only, the authorizations and the replay memory of signed requests, in one
// database several issuer nodes share. An authorization locks its
// (merchant, order id) with an advisory lock and its card's row, so a
// retry arriving at two nodes at once debits once and two orders on one
// card never overspend it.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"orderseal/internal/dsn"
	"orderseal/internal/pgdb"
	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncepg"
	"orderseal/issuer/api"
	"orderseal/issuer/store"
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
	pool *pgxpool.Pool
	keys *store.SubKeys // nil without a card key
	now  func() time.Time
	log  *slog.Logger
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
	s := &Store{now: opt.Now, log: opt.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opt.CardKey != nil {
		if s.keys, err = store.DeriveSubKeys(opt.CardKey); err != nil {
			return nil, err
		}
	}
	if s.pool, err = pgdb.Open(ctx, url, 0); err != nil {
		if (opt.MustExist || opt.ReadOnly) && errors.Is(err, pgdb.ErrNoDatabase) {
			return nil, fmt.Errorf("%s: %w", d, store.ErrNoDatabase)
		}
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	if err := s.prepare(ctx, d, opt); err != nil {
		s.pool.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) prepare(ctx context.Context, d dsn.DSN, opt store.Options) error {
	if opt.MustExist || opt.ReadOnly {
		v, err := s.version(ctx)
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
		// Every later session of the pool reads only.
		s.pool.Close()
		cfg, err := pgxpool.ParseConfig(d.URL)
		if err != nil {
			return fmt.Errorf("issuer database: %w", err)
		}
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
		cfg.MaxConns = 2
		if s.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
			return fmt.Errorf("issuer database: %w", pgdb.Explain(err, d))
		}
	} else if err := pgdb.Migrate(ctx, s.pool, Component, migrations); err != nil {
		return fmt.Errorf("issuer database: %w", pgdb.Explain(err, d))
	}
	if s.keys != nil {
		return s.checkKey(ctx, opt.ReadOnly)
	}
	return nil
}

// version is the issuer's schema version, 0 for a database without one.
func (s *Store) version(ctx context.Context) (int, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass('schema_version') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return 0, err
	}
	var v int
	err := s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version WHERE component = $1`, Component).Scan(&v)
	return v, err
}

// checkKey records the card key's check on first use (once, whichever node
// is first) and compares it afterwards.
func (s *Store) checkKey(ctx context.Context, readOnly bool) error {
	if !readOnly {
		if _, err := s.pool.Exec(ctx, `INSERT INTO card_key (id, check_mac) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, s.keys.KeyCheck()); err != nil {
			return fmt.Errorf("issuer database: %w", err)
		}
	}
	var have []byte
	err := s.pool.QueryRow(ctx, `SELECT check_mac FROM card_key WHERE id = 1`).Scan(&have)
	switch {
	case errors.Is(err, pgx.ErrNoRows) && readOnly:
		return nil // nothing sealed under any key yet
	case err != nil:
		return fmt.Errorf("issuer database: %w", err)
	}
	return s.keys.CheckKey(have)
}

// Close closes the pool. Operations after Close fail.
func (s *Store) Close() error { s.pool.Close(); return nil }

// Nonces is the signed requests' replay memory in this database (store.Store).
func (s *Store) Nonces(quota nonce.Quota) nonce.Store { return noncepg.New(s.pool, quota) }

// CVC returns the verification code of a card (store.CVC under this store's card key).
func (s *Store) CVC(number, expiry string) (string, error) { return store.CVC(s.keys, number, expiry) }

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// tx runs fn in a read-committed transaction, committed when fn returns nil.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, fn)
}

// dbErr wraps a database failure; the store's own errors pass as they are.
func dbErr(err error) error {
	var pe *pgconn.PgError
	if err == nil || !(errors.As(err, &pe) || errors.Is(err, pgx.ErrTxClosed) || pgconn.Timeout(err)) {
		return err
	}
	return fmt.Errorf("issuer database: %w", err)
}

// AddCard enrolls a card to a cardholder identity with its whole limit
// available. A number already enrolled (to anyone, by any node) is
// store.ErrDuplicateCard, naming the card id it has: the unique lookup hash
// decides. The number is sealed (store.Enroll) before it reaches the database.
func (s *Store) AddCard(ctx context.Context, nc store.NewCard) (store.Card, error) {
	c, sn, err := store.Enroll(s.keys, nc, s.now())
	if err != nil {
		return store.Card{}, err
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO cards
		(card_id, lookup, number_nonce, number_ct, last4, cardholder, expiry, currency, credit_limit, available, status, created)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (lookup) DO NOTHING`,
		c.ID, sn.Lookup, sn.Nonce, sn.Ciphertext, c.Last4, c.Cardholder, c.Expiry, c.Currency, c.Limit, c.Available, string(c.Status), nanos(c.Created))
	if err != nil {
		return store.Card{}, fmt.Errorf("issuer database: %w", err)
	}
	if tag.RowsAffected() == 0 {
		var existing string
		if err := s.pool.QueryRow(ctx, `SELECT card_id FROM cards WHERE lookup = $1`, sn.Lookup).Scan(&existing); err != nil {
			return store.Card{}, fmt.Errorf("issuer database: %w", err)
		}
		return store.Card{}, fmt.Errorf("%w as %s", store.ErrDuplicateCard, existing)
	}
	s.log.Info("card enrolled", "card_id", c.ID, "cardholder", c.Cardholder)
	return c, nil
}

const cardColumns = `card_id, last4, cardholder, expiry, currency, credit_limit, available, status, created`

func scanCard(sc pgx.Row, extra ...any) (store.Card, error) {
	var c store.Card
	var status string
	var created int64
	if err := sc.Scan(append([]any{&c.ID, &c.Last4, &c.Cardholder, &c.Expiry, &c.Currency, &c.Limit, &c.Available, &status, &created}, extra...)...); err != nil {
		return store.Card{}, err
	}
	c.Status, c.Created = store.Status(status), fromNanos(created)
	return c, nil
}

// Cards lists every card, oldest first.
func (s *Store) Cards(ctx context.Context) ([]store.Card, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+cardColumns+` FROM cards ORDER BY created, seq`)
	if err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Card, error) { return scanCard(r) })
	if err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	return out, nil
}

// Card returns one card (store.ErrNotFound when there is none).
func (s *Store) Card(ctx context.Context, id string) (store.Card, error) {
	if err := store.CheckCardID(id); err != nil {
		return store.Card{}, err
	}
	return getCard(ctx, s.pool, id, "")
}

type queryer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// getCard reads one card; lock is "" or a locking clause (FOR UPDATE).
func getCard(ctx context.Context, q queryer, id, lock string) (store.Card, error) {
	c, err := scanCard(q.QueryRow(ctx, `SELECT `+cardColumns+` FROM cards WHERE card_id = $1 `+lock, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Card{}, fmt.Errorf("%w: no card %s", store.ErrNotFound, id)
	}
	if err != nil {
		return store.Card{}, fmt.Errorf("issuer database: %w", err)
	}
	return c, nil
}

// SetStatus moves a card to st and returns it. A closed card stays closed
// (store.ErrClosedCard); setting the status it already has is not an error.
func (s *Store) SetStatus(ctx context.Context, id string, st store.Status) (c store.Card, err error) {
	if !st.Valid() {
		return store.Card{}, fmt.Errorf("%w: unknown card status", store.ErrInvalid)
	}
	if err := store.CheckCardID(id); err != nil {
		return store.Card{}, err
	}
	changed := false
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if c, err = getCard(ctx, tx, id, "FOR UPDATE"); err != nil {
			return err
		}
		if changed, err = c.MoveTo(st); err != nil || !changed {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE cards SET status = $1 WHERE card_id = $2`, string(st), id)
		return err
	})
	if err != nil {
		return store.Card{}, dbErr(err)
	}
	if changed {
		s.log.Info("card status changed", "card_id", id, "from", string(c.Status), "to", string(st))
		c.Status = st
	}
	return c, nil
}

// cardByLookup finds, and locks, the card with this lookup hash and checks
// that its sealed number is number; nil when there is none.
func (s *Store) cardByLookup(ctx context.Context, tx pgx.Tx, lookup []byte, number string) (*store.Card, error) {
	sn := store.SealedNumber{Lookup: lookup}
	c, err := scanCard(tx.QueryRow(ctx, `SELECT `+cardColumns+`, number_nonce, number_ct FROM cards WHERE lookup = $1 FOR UPDATE`, lookup),
		&sn.Nonce, &sn.Ciphertext)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	ok, err := s.keys.Matches(c.ID, sn, number)
	if err != nil {
		s.log.Error("card record fails authentication", "card_id", c.ID)
		return nil, fmt.Errorf("%w: %s", err, c.ID)
	}
	if !ok {
		s.log.Error("card lookup hash does not match its sealed number", "card_id", c.ID)
		return nil, fmt.Errorf("%w: %s", store.ErrCorrupt, c.ID)
	}
	return &c, nil
}

// Authorize decides req and records the answer in one transaction that
// holds an advisory lock on (merchant, order id) and the card's row. When
// (merchant, order id) was answered before, on any node, the stored answer
// comes back unchanged with replayed = true if the header hash is the same
// (a retry: no second debit), and store.ErrOrderIDReused if it is not.
func (s *Store) Authorize(ctx context.Context, req store.AuthRequest) (a store.Authorization, replayed bool, err error) {
	lookup, err := store.PrepareAuthorize(s.keys, &req)
	if err != nil {
		return store.Authorization{}, false, err
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('authorize ' || $1 || ' ' || $2, 0))`,
			req.Merchant, req.OrderID); err != nil {
			return err
		}
		prev, err := getAuthorization(ctx, tx, req.Merchant, req.OrderID, "")
		switch {
		case err == nil:
			a, err = store.Replay(prev, &req)
			replayed = err == nil
			return err
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		var card *store.Card
		if lookup != nil {
			if card, err = s.cardByLookup(ctx, tx, lookup, req.Number); err != nil {
				return err
			}
		}
		a, err = store.Decision(s.keys, &req, card, s.now(), func(cardID string, since time.Time) (int, error) {
			var failed int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM authorizations WHERE card_id = $1 AND channel = 'assisted'
				AND reason IN ($2, $3) AND decided > $4`, cardID, api.ReasonCVCMismatch, api.ReasonCVCLocked,
				nanos(since)).Scan(&failed); err != nil {
				return 0, fmt.Errorf("issuer database: %w", err)
			}
			return failed, nil
		})
		if err != nil {
			return err
		}
		if a.Decision == api.Approved {
			tag, err := tx.Exec(ctx, `UPDATE cards SET available = available - $1
				WHERE card_id = $2 AND status = 'active' AND available >= $1`, req.Amount, card.ID)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("issuer database: debit of %s touched %d rows", card.ID, tag.RowsAffected())
			}
		}
		var cardID *string
		if a.CardID != "" {
			cardID = &a.CardID
		}
		_, err = tx.Exec(ctx, `INSERT INTO authorizations
			(merchant, order_id, header_hash, sealer, channel, session, card_id, amount, currency, decision, reason, auth_code, decided, hold_until, installments)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			a.Merchant, a.OrderID, a.HeaderHash[:], a.Sealer, a.Channel, a.Session, cardID,
			a.Amount, a.Currency, a.Decision, a.Reason, a.AuthCode, nanos(a.Decided), nanos0(a.HoldUntil), a.Installments)
		return err
	})
	if err != nil {
		return store.Authorization{}, false, dbErr(err)
	}
	return a, replayed, nil
}

const authColumns = `merchant, order_id, header_hash, sealer, channel, session, COALESCE(card_id, ''),
	amount, currency, decision, reason, auth_code, decided, voided, voided_at,
	hold_until, captured, refunded, released, release_reason, installments`

func scanAuthorization(sc pgx.Row) (store.Authorization, error) {
	var a store.Authorization
	var hh []byte
	var decided, voidedAt, holdUntil, released int64
	if err := sc.Scan(&a.Merchant, &a.OrderID, &hh, &a.Sealer, &a.Channel, &a.Session, &a.CardID,
		&a.Amount, &a.Currency, &a.Decision, &a.Reason, &a.AuthCode, &decided, &a.Voided, &voidedAt,
		&holdUntil, &a.Captured, &a.Refunded, &released, &a.ReleaseReason, &a.Installments); err != nil {
		return store.Authorization{}, err
	}
	if len(hh) != 32 {
		return store.Authorization{}, fmt.Errorf("header hash of %d bytes", len(hh))
	}
	a.HeaderHash = [32]byte(hh)
	a.Decided, a.VoidedAt = fromNanos(decided), fromNanos(voidedAt)
	a.HoldUntil, a.Released = fromNanos(holdUntil), fromNanos(released)
	return a, nil
}

func getAuthorization(ctx context.Context, q queryer, merchant, orderID, lock string) (store.Authorization, error) {
	a, err := scanAuthorization(q.QueryRow(ctx, `SELECT `+authColumns+` FROM authorizations WHERE merchant = $1 AND order_id = $2 `+lock, merchant, orderID))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Authorization{}, store.ErrNotFound
	}
	if err != nil {
		return store.Authorization{}, fmt.Errorf("issuer database: %w", err)
	}
	return a, nil
}

// Authorizations lists the stored answers f selects, newest first.
func (s *Store) Authorizations(ctx context.Context, f store.AuthFilter) ([]store.Authorization, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+authColumns+` FROM authorizations
		WHERE ($1 = '' OR merchant = $1) AND ($2 = '' OR session = $2) ORDER BY decided DESC, seq DESC`, f.Merchant, f.Session)
	if err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Authorization, error) { return scanAuthorization(r) })
	if err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	return out, nil
}

// Authorization returns the stored answer for (merchant, order id), or
// store.ErrNotFound.
func (s *Store) Authorization(ctx context.Context, merchant, orderID string) (store.Authorization, error) {
	return getAuthorization(ctx, s.pool, merchant, orderID, "")
}

// Ping checks the database answers a query.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }
