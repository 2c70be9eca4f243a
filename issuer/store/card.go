package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"orderseal/keygen"
)

// Status is a card's state. Only active cards are authorized.
type Status string

// Card states.
const (
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended" // may be activated again
	StatusClosed    Status = "closed"    // final
)

// Valid reports whether st is one of the card states.
func (st Status) Valid() bool {
	return st == StatusActive || st == StatusSuspended || st == StatusClosed
}

// Limits of what AddCard accepts.
const (
	MaxCreditLimit = 1_000_000_000_000 // minor units
	minNumberLen   = 12
	maxNumberLen   = 19
)

// Card is an enrolled card as the issuer's staff see it: no number, only its
// last four digits.
type Card struct {
	ID         string
	Last4      string
	Cardholder string // the identity the card is enrolled to
	Expiry     string // YYYY-MM
	Currency   string // ISO 4217
	Limit      int64  // minor units
	Available  int64  // minor units: Limit less approved, unvoided holds
	Status     Status
	Created    time.Time
}

// Masked is the card as printed to people: "****1111".
func (c Card) Masked() string { return "****" + c.Last4 }

// NewCard is what AddCard enrolls. Number is digits only (see ParseNumber).
type NewCard struct {
	Number     string
	Cardholder string
	Expiry     string
	Currency   string
	Limit      int64
}

var (
	cardIDRe   = regexp.MustCompile(`^card_[a-z2-7]{26}$`)
	currencyRe = regexp.MustCompile(`^[A-Z]{3}$`)
	b32        = base32.StdEncoding.WithPadding(base32.NoPadding)
)

// NewCardID returns a random card id: "card_" + 26 base32 characters.
func NewCardID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "card_" + strings.ToLower(b32.EncodeToString(b[:])), nil
}

// ValidCardID reports whether id has the form NewCardID returns.
func ValidCardID(id string) bool { return cardIDRe.MatchString(id) }

// ParseNumber normalizes a card number as people write it — digits, with
// spaces or hyphens between groups — to digits only, and checks its length
// (12–19) and Luhn checksum. Errors never quote the input.
func ParseNumber(s string) (string, error) {
	s = strings.TrimSpace(s)
	if len(s) > 64 {
		return "", fmt.Errorf("%w: card number is too long", ErrInvalid)
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			b.WriteByte(c)
		case c == ' ' || c == '-':
		default:
			return "", fmt.Errorf("%w: card number must be digits (spaces and hyphens allowed)", ErrInvalid)
		}
	}
	n := b.String()
	if len(n) < minNumberLen || len(n) > maxNumberLen {
		return "", fmt.Errorf("%w: card number must have %d to %d digits", ErrInvalid, minNumberLen, maxNumberLen)
	}
	if !luhn(n) {
		return "", fmt.Errorf("%w: card number fails the Luhn check", ErrInvalid)
	}
	return n, nil
}

// luhn reports whether the digit string d passes the Luhn checksum.
func luhn(d string) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// ParseExpiry reads "YYYY-MM" and returns the year and month.
func ParseExpiry(s string) (year int, month time.Month, err error) {
	if len(s) != 7 || s[4] != '-' {
		return 0, 0, fmt.Errorf("%w: expiry must be YYYY-MM", ErrInvalid)
	}
	y, m := 0, 0
	for i := 0; i < 7; i++ {
		c := s[i]
		switch {
		case i == 4:
		case c < '0' || c > '9':
			return 0, 0, fmt.Errorf("%w: expiry must be YYYY-MM", ErrInvalid)
		case i < 4:
			y = y*10 + int(c-'0')
		default:
			m = m*10 + int(c-'0')
		}
	}
	if m < 1 || m > 12 || y < 2000 {
		return 0, 0, fmt.Errorf("%w: expiry must be YYYY-MM with a month 01 to 12", ErrInvalid)
	}
	return y, time.Month(m), nil
}

// Expired reports whether a card expiring in expiry (YYYY-MM) has expired at
// now: a card is valid through the last day of its month, in UTC. A
// malformed expiry counts as expired.
func Expired(expiry string, now time.Time) bool {
	y, m, err := ParseExpiry(expiry)
	if err != nil {
		return true
	}
	now = now.UTC()
	return y*12+int(m) < now.Year()*12+int(now.Month())
}

func (nc NewCard) check() error {
	if err := keygen.ValidateIdentity(nc.Cardholder); err != nil || keygen.RoleOf(nc.Cardholder) != "cardholder" {
		return fmt.Errorf("%w: cardholder must be an identity cardholder:<name>", ErrInvalid)
	}
	if _, _, err := ParseExpiry(nc.Expiry); err != nil {
		return err
	}
	if !currencyRe.MatchString(nc.Currency) {
		return fmt.Errorf("%w: currency must be an ISO 4217 code such as EUR", ErrInvalid)
	}
	if nc.Limit <= 0 || nc.Limit > MaxCreditLimit {
		return fmt.Errorf("%w: limit must be 1 to %d minor units", ErrInvalid, int64(MaxCreditLimit))
	}
	if n, err := ParseNumber(nc.Number); err != nil || n != nc.Number {
		return fmt.Errorf("%w: card number must be 12 to 19 digits passing the Luhn check", ErrInvalid)
	}
	return nil
}

// AddCard enrolls a card to a cardholder identity with its whole limit
// available. A number already enrolled (to anyone) is ErrDuplicateCard,
// naming the card id it has. The number is sealed before it reaches the
// database; only its keyed hash and last four digits are stored beside it.
func (s *Store) AddCard(ctx context.Context, nc NewCard) (Card, error) {
	if s.keys == nil {
		return Card{}, ErrNoCardKey
	}
	if err := nc.check(); err != nil {
		return Card{}, err
	}
	id, err := NewCardID()
	if err != nil {
		return Card{}, err
	}
	nonce, ct, err := s.keys.seal(id, nc.Number)
	if err != nil {
		return Card{}, err
	}
	c := Card{ID: id, Last4: nc.Number[len(nc.Number)-4:], Cardholder: nc.Cardholder, Expiry: nc.Expiry,
		Currency: nc.Currency, Limit: nc.Limit, Available: nc.Limit, Status: StatusActive, Created: s.now().UTC()}
	lookup := s.keys.lookupHash(nc.Number)

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Card{}, fmt.Errorf("issuer database: %w", err)
	}
	defer rollback(tx)
	var existing string
	err = tx.QueryRowContext(ctx, `SELECT card_id FROM cards WHERE lookup = ?`, lookup).Scan(&existing)
	switch {
	case err == nil:
		return Card{}, fmt.Errorf("%w as %s", ErrDuplicateCard, existing)
	case !errors.Is(err, sql.ErrNoRows):
		return Card{}, fmt.Errorf("issuer database: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO cards
		(card_id, lookup, number_nonce, number_ct, last4, cardholder, expiry, currency, credit_limit, available, status, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, lookup, nonce, ct, c.Last4, c.Cardholder, c.Expiry, c.Currency, c.Limit, c.Available, string(c.Status), nanos(c.Created)); err != nil {
		return Card{}, fmt.Errorf("issuer database: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Card{}, fmt.Errorf("issuer database: %w", err)
	}
	s.log.Info("card enrolled", "card_id", c.ID, "cardholder", c.Cardholder)
	return c, nil
}

const cardColumns = `card_id, last4, cardholder, expiry, currency, credit_limit, available, status, created`

func scanCard(sc interface{ Scan(...any) error }) (Card, error) {
	var c Card
	var status string
	var created int64
	if err := sc.Scan(&c.ID, &c.Last4, &c.Cardholder, &c.Expiry, &c.Currency, &c.Limit, &c.Available, &status, &created); err != nil {
		return Card{}, err
	}
	c.Status, c.Created = Status(status), fromNanos(created)
	return c, nil
}

// Cards lists every card, oldest first.
func (s *Store) Cards(ctx context.Context) ([]Card, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+cardColumns+` FROM cards ORDER BY created, rowid`)
	if err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	defer rows.Close()
	var out []Card
	for rows.Next() {
		c, err := scanCard(rows)
		if err != nil {
			return nil, fmt.Errorf("issuer database: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	return out, nil
}

// Card returns one card (ErrNotFound when there is none).
func (s *Store) Card(ctx context.Context, id string) (Card, error) {
	if !ValidCardID(id) {
		return Card{}, fmt.Errorf("%w: not a card id (card_ and 26 characters)", ErrNotFound)
	}
	c, err := scanCard(s.db.QueryRowContext(ctx, `SELECT `+cardColumns+` FROM cards WHERE card_id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Card{}, fmt.Errorf("%w: no card %s", ErrNotFound, id)
	}
	if err != nil {
		return Card{}, fmt.Errorf("issuer database: %w", err)
	}
	return c, nil
}

// SetStatus moves a card to st and returns it. A closed card stays closed
// (ErrClosedCard); setting the status it already has is not an error.
func (s *Store) SetStatus(ctx context.Context, id string, st Status) (Card, error) {
	if !st.Valid() {
		return Card{}, fmt.Errorf("%w: unknown card status", ErrInvalid)
	}
	if !ValidCardID(id) {
		return Card{}, fmt.Errorf("%w: not a card id (card_ and 26 characters)", ErrNotFound)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Card{}, fmt.Errorf("issuer database: %w", err)
	}
	defer rollback(tx)
	c, err := scanCard(tx.QueryRowContext(ctx, `SELECT `+cardColumns+` FROM cards WHERE card_id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Card{}, fmt.Errorf("%w: no card %s", ErrNotFound, id)
	}
	if err != nil {
		return Card{}, fmt.Errorf("issuer database: %w", err)
	}
	if c.Status == st {
		return c, nil
	}
	if c.Status == StatusClosed {
		return Card{}, fmt.Errorf("%w: %s", ErrClosedCard, id)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE cards SET status = ? WHERE card_id = ?`, string(st), id); err != nil {
		return Card{}, fmt.Errorf("issuer database: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Card{}, fmt.Errorf("issuer database: %w", err)
	}
	s.log.Info("card status changed", "card_id", id, "from", string(c.Status), "to", string(st))
	c.Status = st
	return c, nil
}
