package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"orderseal/internal/datakey"
	"orderseal/internal/signedhttp/nonce"
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
	ErrNoDatabase    = errors.New("no such database") // Options.MustExist and the store is absent
)

// Options configure a backend's Open.
type Options struct {
	CardKey   *CardKey         // nil: only operations that never touch a number (Cards, SetStatus, Void, …)
	Now       func() time.Time // nil: time.Now
	Logger    *slog.Logger     // nil: discard; never given card numbers or keys
	MustExist bool             // refuse to create the store (ErrNoDatabase): admin commands on a mistyped DSN
	ReadOnly  bool             // never write, not even migrations (implies MustExist): inspection and the test harness
}

// Reader is the issuer's read-only queries.
type Reader interface {
	// Ping reads the database once: its readiness check.
	Ping(ctx context.Context) error
	// Cards lists every card, oldest first.
	Cards(ctx context.Context) ([]Card, error)
	// Card returns one card (ErrNotFound when there is none).
	Card(ctx context.Context, id string) (Card, error)
	// Authorization returns the stored answer for (merchant, order id), or ErrNotFound.
	Authorization(ctx context.Context, merchant, orderID string) (Authorization, error)
	// Authorizations lists the stored answers f selects, newest first (answers of one instant: last answered first).
	Authorizations(ctx context.Context, f AuthFilter) ([]Authorization, error)
}

// Store is the issuer's persistence. Implementations are safe for
// concurrent use.
type Store interface {
	Reader
	// AddCard enrolls a card with its whole limit available (ErrDuplicateCard naming the card id when its number is enrolled).
	AddCard(ctx context.Context, nc NewCard) (Card, error)
	// SetStatus moves a card to st and returns it (ErrClosedCard: a closed card stays closed).
	SetStatus(ctx context.Context, id string, st Status) (Card, error)
	// Authorize decides req, debits an approval and records the answer in one transaction; replayed: a retry's stored answer.
	Authorize(ctx context.Context, req AuthRequest) (a Authorization, replayed bool, err error)
	// Void releases the hold of merchant's authorization for orderID once (ErrNotFound when there is none; ErrVoidAfterCapture once part was captured).
	Void(ctx context.Context, merchant, orderID string) (Authorization, error)
	// Operate makes a capture, refund, void or release (RunOp) in one transaction; replayed: a retry under a stored key.
	Operate(ctx context.Context, op Op) (a Authorization, replayed bool, err error)
	// ExpireHolds releases the remainder of every authorization whose hold period has passed (Expire) and returns how many.
	ExpireHolds(ctx context.Context) (int, error)
	// CVC returns the verification code of a card number and expiry under the store's card key (ErrNoCardKey without one).
	CVC(number, expiry string) (string, error)
	// Close releases the store. Operations after Close fail.
	Close() error
	// Nonces is the replay memory of signed requests to this party, in
	// this database: durable, and shared by every process serving from it
	// (DESIGN.md §5 "Hardening"); each caller holds at most quota(caller)
	// live nonces (nil: nonce.DefaultQuota).
	Nonces(quota nonce.Quota) nonce.Store
}

// AuthFilter selects authorizations; its zero value selects all.
type AuthFilter struct {
	Merchant string // only this merchant's
	Session  string // only the orders keyed in this assisted session
}

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
