package store

import (
	"context"
	"fmt"
	"time"
)

// Rotate re-issues every current token created at least olderThan ago: a new
// token of the same type for the same owner, the same value re-sealed under
// it (epoch + 1, same label, shareable flag and expiry), while the old entry
// gets ReplacedBy and expires after grace (or at its own expiry, if sooner).
// Each rotation is appended to the audit log in the same index transaction.
// Grants name a token, so grace should outlast the grants in flight.
func (s *Store) Rotate(ctx context.Context, olderThan, grace time.Duration) (rotated int, err error) {
	if olderThan <= 0 || grace < 0 {
		return 0, fmt.Errorf("%w: rotate needs olderThan > 0 and grace >= 0", ErrInvalid)
	}
	now := s.now().UTC()
	due, err := s.index.Due(ctx, now.Add(-olderThan), now)
	if err != nil {
		return 0, fmt.Errorf("vault index: %w", err)
	}
	for _, e := range due {
		done, err := s.rotateOne(ctx, e, now, grace)
		if err != nil {
			return rotated, fmt.Errorf("vault rotate: %w", err)
		}
		if done {
			rotated++
		}
	}
	return rotated, nil
}

func (s *Store) rotateOne(ctx context.Context, old Entry, now time.Time, grace time.Duration) (bool, error) {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	value, err := s.readValue(ctx, old.Token)
	if err != nil {
		return false, err
	}
	defer clear(value)
	tok, err := NewToken(old.Type)
	if err != nil {
		return false, err
	}
	// The new token points to the shared record (written again: a no-op,
	// or the first time for a record from before values were shared).
	nr, share, err := s.tokenRecords(tok, old.Owner, old.Type, value)
	if err != nil {
		return false, err
	}
	nr.Created, share.Created = now.UnixNano(), now.UnixNano()
	if err := s.writeRecord(ctx, nr, share); err != nil {
		return false, err
	}

	oldExpires := now.Add(grace)
	if !old.Expires.IsZero() && old.Expires.Before(oldExpires) {
		oldExpires = old.Expires
	}
	next := old
	next.Token, next.Epoch, next.Created, next.ReplacedBy = tok, old.Epoch+1, now, ""

	var done bool
	err = s.update(ctx, func(tx IndexTx) error {
		ok, err := tx.Replace(ctx, old.Token, tok, oldExpires)
		if err != nil || !ok {
			done = false
			return err // !ok: rotated meanwhile by someone else
		}
		if err := tx.InsertEntries(ctx, next); err != nil {
			return err
		}
		ev := AuditEvent{Time: now, Kind: "rotate", Actor: "vault", Token: old.Token, Outcome: "replaced_by " + tok}
		if err := appendAudit(ctx, tx, ev); err != nil {
			return err
		}
		done = true
		return nil
	})
	if err != nil {
		done = false
	}
	if err != nil || !done {
		s.discardRecords([]string{tok})
	}
	if err != nil {
		return false, fmt.Errorf("vault index: %w", err)
	}
	return done, nil
}
