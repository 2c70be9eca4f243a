package store

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"orderseal/keygen"
	"orderseal/order/cards"
	"orderseal/order/money"
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
	cardIDRe = regexp.MustCompile(`^card_[a-z2-7]{26}$`)
	b32      = base32.StdEncoding.WithPadding(base32.NoPadding)
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
// spaces or hyphens between groups — to digits only, and checks it against
// its brand's rules (order/cards: a known IIN, a length the brand issues)
// and the Luhn checksum. Errors never quote the input.
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
	switch _, err := cards.Check(n); {
	case errors.Is(err, cards.ErrLuhn):
		return "", fmt.Errorf("%w: card number fails the Luhn check", ErrInvalid)
	case err != nil: // the brand table's rules: a known IIN, a length its brand issues
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return n, nil
}

// luhn reports whether the digit string d passes the Luhn checksum.
func luhn(d string) bool { return cards.Luhn(d) }

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
	if err := keygen.ValidateIdentity(nc.Cardholder); err != nil || keygen.RoleOf(nc.Cardholder) != keygen.RoleCardholder {
		return fmt.Errorf("%w: cardholder must be an identity cardholder:<name>", ErrInvalid)
	}
	if _, _, err := ParseExpiry(nc.Expiry); err != nil {
		return err
	}
	if err := money.Check(nc.Currency); err != nil {
		return fmt.Errorf("%w: currency: %w", ErrInvalid, err)
	}
	if nc.Limit <= 0 || nc.Limit > MaxCreditLimit {
		return fmt.Errorf("%w: limit must be 1 to %d minor units", ErrInvalid, int64(MaxCreditLimit))
	}
	if n, err := ParseNumber(nc.Number); err != nil || n != nc.Number {
		return fmt.Errorf("%w: card number must be 12 to 19 digits of a known card brand passing the Luhn check", ErrInvalid)
	}
	return nil
}

// Enroll checks nc and returns the card to store under a fresh id, with
// its whole limit available and its number sealed under ks: what a
// backend's AddCard writes. ks nil is ErrNoCardKey.
func Enroll(ks *SubKeys, nc NewCard, now time.Time) (Card, SealedNumber, error) {
	if ks == nil {
		return Card{}, SealedNumber{}, ErrNoCardKey
	}
	if err := nc.check(); err != nil {
		return Card{}, SealedNumber{}, err
	}
	id, err := NewCardID()
	if err != nil {
		return Card{}, SealedNumber{}, err
	}
	sn, err := ks.Seal(id, nc.Number)
	if err != nil {
		return Card{}, SealedNumber{}, err
	}
	c := Card{ID: id, Last4: nc.Number[len(nc.Number)-4:], Cardholder: nc.Cardholder, Expiry: nc.Expiry,
		Currency: nc.Currency, Limit: nc.Limit, Available: nc.Limit, Status: StatusActive, Created: now.UTC()}
	return c, sn, nil
}

// CheckCardID is ErrNotFound for an id NewCardID cannot have returned, with
// a message that never quotes it (it may be a mistyped card number).
func CheckCardID(id string) error {
	if !ValidCardID(id) {
		return fmt.Errorf("%w: not a card id (card_ and 26 characters)", ErrNotFound)
	}
	return nil
}

// MoveTo reports whether moving c to st changes it: false for the status it
// already has, ErrClosedCard for a closed card (closed is final), ErrInvalid
// for an unknown status.
func (c Card) MoveTo(st Status) (bool, error) {
	switch {
	case !st.Valid():
		return false, fmt.Errorf("%w: unknown card status", ErrInvalid)
	case c.Status == st:
		return false, nil
	case c.Status == StatusClosed:
		return false, fmt.Errorf("%w: %s", ErrClosedCard, c.ID)
	}
	return true, nil
}
