package store

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"crypto/cipher"
	"golang.org/x/crypto/chacha20poly1305"

	"orderseal/internal/datakey"
	"orderseal/internal/sqlitex"
)

// Errors. Callers test with errors.Is.
var (
	ErrNotFound      = errors.New("not found")
	ErrInvalid       = errors.New("invalid input")
	ErrDuplicateCard = errors.New("this card number is already enrolled")
	ErrOrderIDReused = errors.New("order id already used with another bundle")
	ErrNoCardKey     = errors.New("the card key is needed for this operation")
	ErrBadCardKey    = errors.New("not 32 bytes of base64url")
	ErrWrongKey      = errors.New("database was written under another card key")
	ErrCorrupt       = errors.New("card record fails authentication")
	ErrClosedCard    = errors.New("the card is closed")
)

// Sub-key labels: one label, one purpose (DESIGN.md §2 "Sub-keys").
const (
	labelSeal   = "orderseal-v1-issuer-card-seal"
	labelLookup = "orderseal-v1-issuer-card-lookup"
	labelCheck  = "orderseal-v1-issuer-card-keycheck"
	labelCVK    = "orderseal-v1-issuer-card-cvk" // derives CVCs (cvc.go)
)

// CardKey is the issuer's card key: 32 random bytes in a 0600 file of their
// own. It cannot be compared with ==; it prints redacted.
type CardKey = datakey.Key

// CreateCardKey writes a fresh card key to path (0600, O_EXCL: it never
// overwrites).
func CreateCardKey(path string) (*CardKey, error) {
	k, err := datakey.Create(path)
	if err != nil {
		return nil, fmt.Errorf("card key: %w", err)
	}
	return k, nil
}

// LoadCardKey reads a card key file, refusing it when group or others may
// read it (secfile.ErrPermissions) or when it is malformed (ErrBadCardKey).
func LoadCardKey(path string) (*CardKey, error) {
	k, err := datakey.Load(path)
	if errors.Is(err, datakey.ErrMalformed) {
		return nil, fmt.Errorf("card key: %s: %w", path, ErrBadCardKey)
	}
	if err != nil {
		return nil, fmt.Errorf("card key: %w", err)
	}
	return k, nil
}

// keys are the sub-keys derived once at Open.
type keys struct {
	aead   cipher.AEAD
	lookup []byte
	check  []byte
	cvk    []byte // card verification key: derives each card's CVC (cvc.go)
}

func deriveKeys(k *CardKey) (*keys, error) {
	sealKey := k.Expand(labelSeal)
	defer clear(sealKey)
	aead, err := chacha20poly1305.NewX(sealKey)
	if err != nil {
		return nil, err
	}
	checkKey := k.Expand(labelCheck)
	defer clear(checkKey)
	m := hmac.New(sha256.New, checkKey)
	m.Write([]byte(labelCheck))
	return &keys{aead: aead, lookup: k.Expand(labelLookup), check: m.Sum(nil), cvk: k.Expand(labelCVK)}, nil
}

// lookupHash is HMAC-SHA256(lookup sub-key, number).
func (ks *keys) lookupHash(number string) []byte {
	m := hmac.New(sha256.New, ks.lookup)
	m.Write([]byte(number))
	return m.Sum(nil)
}

func (ks *keys) seal(cardID, number string) (nonce, ct []byte, err error) {
	nonce = make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	return nonce, ks.aead.Seal(nil, nonce, []byte(number), []byte(cardID)), nil
}

// matches opens the sealed number of cardID and compares it with number in
// constant time: a defence against a lookup-hash row pasted onto another card.
func (ks *keys) matches(cardID string, nonce, ct []byte, number string) (bool, error) {
	if len(nonce) != chacha20poly1305.NonceSizeX {
		return false, ErrCorrupt
	}
	pt, err := ks.aead.Open(nil, nonce, ct, []byte(cardID))
	if err != nil {
		return false, ErrCorrupt
	}
	defer clear(pt)
	return subtle.ConstantTimeCompare(pt, []byte(number)) == 1, nil
}

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
}

// Config says where the issuer's database is and how to read card numbers.
type Config struct {
	Path      string           // the SQLite database; created when absent unless MustExist
	MustExist bool             // refuse to create the database (admin commands on a mistyped path)
	CardKey   *CardKey         // nil: only operations that never touch a number (Cards, SetStatus, Void, …)
	Now       func() time.Time // nil: time.Now
	Logger    *slog.Logger     // nil: discard; never given card numbers or keys
}

// Store is the issuer's persistence. It is safe for concurrent use.
type Store struct {
	db   *sql.DB
	keys *keys // nil without a card key
	now  func() time.Time
	log  *slog.Logger
}

// Open opens (creating when absent) the database and runs its migrations.
// With a card key it checks the key against the one the database was
// written under (ErrWrongKey), recording it on first use.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Path == "" {
		return nil, fmt.Errorf("%w: a database path is required", ErrInvalid)
	}
	s := &Store{now: cfg.Now, log: cfg.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if cfg.CardKey != nil {
		ks, err := deriveKeys(cfg.CardKey)
		if err != nil {
			return nil, err
		}
		s.keys = ks
	}
	opts := []sqlitex.Option{sqlitex.Immediate(), sqlitex.Serialized()}
	if cfg.MustExist {
		opts = append(opts, sqlitex.MustExist())
	}
	db, err := sqlitex.Open(cfg.Path, opts...)
	if err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	s.db = db
	if err := sqlitex.Migrate(ctx, db, migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	if s.keys != nil {
		if err := s.checkKey(ctx); err != nil {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) checkKey(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("issuer database: %w", err)
	}
	defer tx.Rollback()
	var have []byte
	err = tx.QueryRowContext(ctx, `SELECT check_mac FROM card_key WHERE id = 1`).Scan(&have)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO card_key (id, check_mac) VALUES (1, ?)`, s.keys.check); err != nil {
			return fmt.Errorf("issuer database: %w", err)
		}
		return tx.Commit()
	case err != nil:
		return fmt.Errorf("issuer database: %w", err)
	case !hmac.Equal(have, s.keys.check):
		return ErrWrongKey
	}
	return nil
}

// Close closes the database. Operations after Close fail.
func (s *Store) Close() error { return s.db.Close() }

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// rollback ends tx if it is still open; the error of an ended tx is ignored.
func rollback(tx *sql.Tx) { _ = tx.Rollback() }
