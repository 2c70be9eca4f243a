package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// GrantState is where a grant is in its life (DESIGN.md §7): created
// pending, activated by the issuer's approval, revoked when its order is
// declined, fails or is cancelled. Only an active grant reveals anything.
type GrantState string

// The grant states. Pending → active → revoked, or pending → revoked;
// revoked is final.
const (
	GrantPending GrantState = "pending"
	GrantActive  GrantState = "active"
	GrantRevoked GrantState = "revoked"
)

// Grant lets one carrier reveal one token for one order and invoice, at most
// MaxUses times before Expires, while it is active. It comes only from a
// cardholder-sealed vault section (DESIGN.md §3, §7), or from a carrier's
// deposit of the order's inline address; the store does not check that,
// the caller does.
type Grant struct {
	ID, Token, Merchant, Carrier, OrderID, Invoice string
	Expires                                        time.Time
	MaxUses, Uses                                  int
	State                                          GrantState
}

// AddGrant stores g, pending unless g.State says active (a revoked grant
// cannot be added). (Token, Carrier, OrderID) is unique: adding the same
// grant again is a no-op, a different one is ErrGrantConflict, and any
// grant over a revoked one is ErrGrantRevoked. An empty ID gets a random
// one. The token must exist (ErrNotFound) and be unexpired (ErrExpired); a
// grant already past its expiry is ErrGrantExpired.
func (s *Store) AddGrant(ctx context.Context, g Grant) error {
	return s.addGrant(ctx, g, nil)
}

// AddGrantAudited is AddGrant that appends the audit entry of a new grant
// (kind, actor and outcome; the grant's token and order id) in the grant's
// own transaction: no grant exists without its entry, even when the vault
// is killed right after it (found by make chaos). Adding the same grant
// again appends nothing.
func (s *Store) AddGrantAudited(ctx context.Context, g Grant, kind, actor, outcome string) error {
	for _, f := range []string{kind, actor, outcome} {
		if f == "" || !validText(f, 1024) {
			return fmt.Errorf("%w: audit field", ErrInvalid)
		}
	}
	if err := s.addGrant(ctx, g, &AuditEvent{Kind: kind, Actor: actor, Outcome: outcome}); err != nil {
		return err
	}
	s.obs.audited(kind, outcome)
	return nil
}

// PendingGrant is a merchant's first step of a grant (DESIGN.md §7), in one
// transaction: the token must be known (ErrNotFound) and owner's, or
// shareable (ErrNotOwner); the grant held for (token, carrier, order id)
// is returned as it is when there is one, in any state and of any merchant
// — a retry is answered with what was bound first, and the caller judges
// the rest; otherwise g is added pending with its audit entry (kind, actor,
// outcome), once the token is found unexpired (ErrExpired). created
// reports the addition. g is checked as AddGrant checks it.
func (s *Store) PendingGrant(ctx context.Context, g Grant, owner, kind, actor, outcome string) (out Grant, created bool, err error) {
	for _, f := range []string{kind, actor, outcome} {
		if f == "" || !validText(f, 1024) {
			return Grant{}, false, fmt.Errorf("%w: audit field", ErrInvalid)
		}
	}
	g.State = GrantPending
	if err := checkGrant(&g, s.now()); err != nil {
		return Grant{}, false, err
	}
	var refused error
	err = s.update(ctx, func(tx IndexTx) error {
		now := s.now()
		e, err := tx.Entry(ctx, g.Token)
		switch {
		case errors.Is(err, ErrNotFound):
			refused = ErrNotFound
			return refused
		case err != nil:
			return err
		case e.Owner != owner && !e.Shareable:
			refused = ErrNotOwner
			return refused
		}
		old, err := tx.Grant(ctx, g.Token, g.Carrier, g.OrderID)
		switch {
		case err == nil:
			out = old
			return nil
		case !errors.Is(err, ErrNoGrant):
			return err
		case e.expiredAt(now):
			refused = ErrExpired
			return refused
		}
		if err := tx.InsertGrant(ctx, g, now); err != nil {
			return err
		}
		out, created = g, true
		return appendAudit(ctx, tx, AuditEvent{Time: now, Kind: kind, Actor: actor, Token: g.Token, OrderID: g.OrderID, Outcome: outcome})
	})
	switch {
	case refused != nil:
		return Grant{}, false, refused
	case err != nil:
		return Grant{}, false, fmt.Errorf("vault index: %w", err)
	}
	if created {
		s.obs.audited(kind, outcome)
	}
	return out, created, nil
}

// checkGrant refuses a grant AddGrant would not add, whatever the index
// holds, and gives one without an ID a random one.
func checkGrant(g *Grant, now time.Time) error {
	switch {
	case g.State != GrantPending && g.State != GrantActive:
		return fmt.Errorf("%w: a grant is added pending or active", ErrInvalid)
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
	if !now.Before(g.Expires) {
		return ErrGrantExpired
	}
	if g.ID == "" {
		id, err := newGrantID()
		if err != nil {
			return err
		}
		g.ID = id
	}
	return nil
}

func (s *Store) addGrant(ctx context.Context, g Grant, ev *AuditEvent) error {
	if g.State == "" {
		g.State = GrantPending
	}
	now := s.now()
	idGiven := g.ID != ""
	if err := checkGrant(&g, now); err != nil {
		return err
	}
	var refused error // the answer, as opposed to a failure of the index
	err := s.update(ctx, func(tx IndexTx) error {
		old, err := tx.Grant(ctx, g.Token, g.Carrier, g.OrderID)
		switch {
		case err == nil && old.State == GrantRevoked:
			refused = ErrGrantRevoked
			return refused
		case err == nil:
			same := old.State == g.State && old.Merchant == g.Merchant && old.Invoice == g.Invoice && old.Expires.Equal(g.Expires) &&
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
		if err := tx.InsertGrant(ctx, g, now); err != nil {
			return err
		}
		if ev == nil {
			return nil
		}
		entry := *ev
		entry.Time, entry.Token, entry.OrderID = now, g.Token, g.OrderID
		return appendAudit(ctx, tx, entry)
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
// ErrGrantUsedUp, checked in that order; a grant that is not active is
// ErrGrantRevoked or ErrGrantPending before any of the others but ErrNoGrant.
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
	case g.State == GrantRevoked:
		return Grant{}, ErrGrantRevoked
	case g.State != GrantActive:
		return Grant{}, ErrGrantPending
	case g.Invoice != invoice:
		return Grant{}, ErrInvoiceMismatch
	case !now.Before(g.Expires):
		return Grant{}, ErrGrantExpired
	default:
		return Grant{}, ErrGrantUsedUp
	}
}

// ActivateGrant makes the pending grant for (token, carrier, orderID) of
// merchant active, once the caller has verified the issuer's approval, and
// appends an audit entry ("grant-activate", actor merchant) in the same
// transaction. An active grant is left as it is (done is false);
// ErrNoGrant when there is none for this merchant, ErrGrantRevoked when it
// was revoked.
func (s *Store) ActivateGrant(ctx context.Context, merchant, token, carrier, orderID string) (g Grant, done bool, err error) {
	var refused error
	err = s.update(ctx, func(tx IndexTx) error {
		old, err := tx.Grant(ctx, token, carrier, orderID)
		switch {
		case errors.Is(err, ErrNoGrant) || (err == nil && old.Merchant != merchant):
			refused = ErrNoGrant
			return refused
		case err != nil:
			return err
		case old.State == GrantRevoked:
			refused = ErrGrantRevoked
			return refused
		case old.State == GrantActive:
			g = old
			return nil
		}
		if err := tx.SetGrantState(ctx, old.ID, GrantActive); err != nil {
			return err
		}
		old.State = GrantActive
		g, done = old, true
		return appendAudit(ctx, tx, AuditEvent{Time: s.now(), Kind: "grant-activate", Actor: merchant,
			Token: token, OrderID: orderID, Outcome: "ok"})
	})
	if refused != nil {
		return Grant{}, false, refused
	}
	if err != nil {
		return Grant{}, false, fmt.Errorf("vault index: %w", err)
	}
	return g, done, nil
}

// RevokeGrants revokes every grant of merchant's order orderID that is not
// revoked yet — pending, active, and the carrier's deposit grants — with
// one audit entry per grant ("grant-revoke", actor merchant, outcome
// "revoked:"+reason), all in one transaction. It returns how many it
// revoked; revoking again is a no-op.
func (s *Store) RevokeGrants(ctx context.Context, merchant, orderID, reason string) (int, error) {
	if merchant == "" || orderID == "" || !validText(orderID, MaxOwnerLen) || !validText(reason, 64) {
		return 0, fmt.Errorf("%w: revoke needs a merchant, an order id and a printable reason", ErrInvalid)
	}
	n := 0
	err := s.update(ctx, func(tx IndexTx) error {
		gs, err := tx.OrderGrants(ctx, merchant, orderID)
		if err != nil {
			return err
		}
		var evs []AuditEvent
		for _, g := range gs {
			if g.State == GrantRevoked {
				continue
			}
			if err := tx.SetGrantState(ctx, g.ID, GrantRevoked); err != nil {
				return err
			}
			evs = append(evs, AuditEvent{Time: s.now(), Kind: "grant-revoke", Actor: merchant, Token: g.Token,
				OrderID: orderID, Outcome: "revoked:" + reason})
		}
		n = len(evs)
		if n == 0 {
			return nil
		}
		return appendAudit(ctx, tx, evs...)
	})
	if err != nil {
		return 0, fmt.Errorf("vault index: %w", err)
	}
	return n, nil
}

// LiveGrantsTo returns carrier's active, unexpired grants that have uses
// left: what a carrier may still reveal.
func (s *Store) LiveGrantsTo(ctx context.Context, carrier string) ([]Grant, error) {
	gs, err := s.index.GrantsTo(ctx, carrier)
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	now := s.now()
	out := gs[:0]
	for _, g := range gs {
		if g.State == GrantActive && now.Before(g.Expires) && g.Uses < g.MaxUses {
			out = append(out, g)
		}
	}
	return out, nil
}

// Grant returns the grant for (token, carrier, orderID), or ErrNoGrant.
func (s *Store) Grant(ctx context.Context, token, carrier, orderID string) (Grant, error) {
	g, err := s.index.Grant(ctx, token, carrier, orderID)
	if err != nil && !errors.Is(err, ErrNoGrant) {
		return Grant{}, fmt.Errorf("vault index: %w", err)
	}
	return g, err
}

// GrantsOfOrder returns the grants of merchant's order orderID, any state.
func (s *Store) GrantsOfOrder(ctx context.Context, merchant, orderID string) ([]Grant, error) {
	var out []Grant
	err := s.update(ctx, func(tx IndexTx) error {
		var err error
		out, err = tx.OrderGrants(ctx, merchant, orderID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	return out, nil
}
