package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Grant lets one carrier reveal one token for one order and invoice, at most
// MaxUses times before Expires. It comes only from a cardholder-sealed vault
// section (DESIGN.md §3, §7); the store does not check that, the caller does.
type Grant struct {
	ID, Token, Merchant, Carrier, OrderID, Invoice string
	Expires                                        time.Time
	MaxUses, Uses                                  int
}

const grantColumns = `id, token, merchant, carrier, order_id, invoice, expires, max_uses, uses`

func scanGrant(sc interface{ Scan(...any) error }) (Grant, error) {
	var g Grant
	var exp int64
	err := sc.Scan(&g.ID, &g.Token, &g.Merchant, &g.Carrier, &g.OrderID, &g.Invoice, &exp, &g.MaxUses, &g.Uses)
	g.Expires = fromNanos(exp)
	return g, err
}

// AddGrant stores g. (Token, Carrier, OrderID) is unique: adding the same
// grant again is a no-op, a different one is ErrGrantConflict. An empty ID
// gets a random one. The token must exist (ErrNotFound) and be unexpired
// (ErrExpired); a grant already past its expiry is ErrGrantExpired.
func (s *Store) AddGrant(ctx context.Context, g Grant) error {
	switch {
	case g.Merchant == "" || g.Carrier == "" || g.OrderID == "" || g.Invoice == "":
		return fmt.Errorf("%w: grant needs merchant, carrier, order id and invoice", ErrInvalid)
	case g.MaxUses < 1:
		return fmt.Errorf("%w: grant needs MaxUses >= 1", ErrInvalid)
	case g.Expires.IsZero():
		return fmt.Errorf("%w: grant needs an expiry", ErrInvalid)
	}
	for _, f := range []string{g.ID, g.Merchant, g.Carrier, g.OrderID, g.Invoice} {
		if !validText(f, MaxOwnerLen) {
			return fmt.Errorf("%w: grant field", ErrInvalid)
		}
	}
	if _, err := ParseTokenType(g.Token); err != nil {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	now := s.now()
	if !now.Before(g.Expires) {
		return ErrGrantExpired
	}

	tx, err := s.index.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("vault index: %w", err)
	}
	defer tx.Rollback()
	old, err := scanGrant(tx.QueryRowContext(ctx, `SELECT `+grantColumns+` FROM grants
		WHERE token = ? AND carrier = ? AND order_id = ?`, g.Token, g.Carrier, g.OrderID))
	switch {
	case err == nil:
		same := old.Merchant == g.Merchant && old.Invoice == g.Invoice && old.Expires.Equal(g.Expires) &&
			old.MaxUses == g.MaxUses && (g.ID == "" || g.ID == old.ID)
		if !same {
			return ErrGrantConflict
		}
		return nil
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("vault index: %w", err)
	}
	e, err := scanEntry(tx.QueryRowContext(ctx, `SELECT `+entryColumns+` FROM entries WHERE token = ?`, g.Token))
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("vault index: %w", err)
	}
	if e.expiredAt(now) {
		return ErrExpired
	}
	if g.ID == "" {
		if g.ID, err = newGrantID(); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO grants
		(id, token, merchant, carrier, order_id, invoice, expires, max_uses, uses, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)`,
		g.ID, g.Token, g.Merchant, g.Carrier, g.OrderID, g.Invoice, g.Expires.UnixNano(), g.MaxUses, now.UnixNano()); err != nil {
		return fmt.Errorf("vault index: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("vault index: %w", err)
	}
	return nil
}

func newGrantID() (string, error) {
	t, err := NewToken(TypeAddress) // reuse the random body only
	if err != nil {
		return "", err
	}
	return "grt_" + t[len(tokenPrefix):len(tokenPrefix)+tokenBodyLen], nil
}

// UseGrant counts one use of the grant for (token, carrier, orderID) if it is
// live — invoice matches, not expired, uses < max — in one statement, so two
// concurrent uses cannot both take the last one. It returns the grant with
// the use counted, or ErrNoGrant, ErrInvoiceMismatch, ErrGrantExpired or
// ErrGrantUsedUp, checked in that order.
func (s *Store) UseGrant(ctx context.Context, token, carrier, orderID, invoice string) (Grant, error) {
	now := s.now().UnixNano()
	g, err := scanGrant(s.index.QueryRowContext(ctx, `UPDATE grants SET uses = uses + 1
		WHERE token = ? AND carrier = ? AND order_id = ? AND invoice = ? AND expires > ? AND uses < max_uses
		RETURNING `+grantColumns, token, carrier, orderID, invoice, now))
	if err == nil {
		return g, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Grant{}, fmt.Errorf("vault index: %w", err)
	}
	// Not used: say why.
	g, err = scanGrant(s.index.QueryRowContext(ctx, `SELECT `+grantColumns+` FROM grants
		WHERE token = ? AND carrier = ? AND order_id = ?`, token, carrier, orderID))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Grant{}, ErrNoGrant
	case err != nil:
		return Grant{}, fmt.Errorf("vault index: %w", err)
	case g.Invoice != invoice:
		return Grant{}, ErrInvoiceMismatch
	case g.Expires.UnixNano() <= now:
		return Grant{}, ErrGrantExpired
	default:
		return Grant{}, ErrGrantUsedUp
	}
}
