package store

import (
	"context"
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

	idGiven := g.ID != ""
	if !idGiven {
		id, err := newGrantID()
		if err != nil {
			return err
		}
		g.ID = id
	}
	var refused error // the answer, as opposed to a failure of the index
	err := s.index.Update(ctx, func(tx IndexTx) error {
		old, err := tx.Grant(ctx, g.Token, g.Carrier, g.OrderID)
		switch {
		case err == nil:
			same := old.Merchant == g.Merchant && old.Invoice == g.Invoice && old.Expires.Equal(g.Expires) &&
				old.MaxUses == g.MaxUses && (!idGiven || g.ID == old.ID)
			if !same {
				refused = ErrGrantConflict
			}
			return refused
		case !errors.Is(err, ErrNoGrant):
			return err
		}
		e, err := tx.Entry(ctx, g.Token)
		switch {
		case errors.Is(err, ErrNotFound):
			refused = ErrNotFound
			return refused
		case err != nil:
			return err
		case e.expiredAt(now):
			refused = ErrExpired
			return refused
		}
		return tx.InsertGrant(ctx, g, now)
	})
	if refused != nil {
		return refused
	}
	if err != nil {
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
	now := s.now()
	g, ok, err := s.index.UseGrant(ctx, token, carrier, orderID, invoice, now)
	if err != nil {
		return Grant{}, fmt.Errorf("vault index: %w", err)
	}
	if ok {
		return g, nil
	}
	// Not used: say why.
	g, err = s.index.Grant(ctx, token, carrier, orderID)
	switch {
	case errors.Is(err, ErrNoGrant):
		return Grant{}, ErrNoGrant
	case err != nil:
		return Grant{}, fmt.Errorf("vault index: %w", err)
	case g.Invoice != invoice:
		return Grant{}, ErrInvoiceMismatch
	case !now.Before(g.Expires):
		return Grant{}, ErrGrantExpired
	default:
		return Grant{}, ErrGrantUsedUp
	}
}
