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
	rows, err := s.index.QueryContext(ctx, `SELECT `+entryColumns+` FROM entries
		WHERE replaced_by = '' AND created <= ? AND (expires = 0 OR expires > ?)
		ORDER BY created, token`, now.Add(-olderThan).UnixNano(), now.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("vault index: %w", err)
	}
	var due []Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			rows.Close()
			return 0, fmt.Errorf("vault index: %w", err)
		}
		due = append(due, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
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
	r, value, err := s.readRecord(ctx, old.Token)
	if err != nil {
		return false, err
	}
	defer clear(value)
	tok, err := NewToken(old.Type)
	if err != nil {
		return false, err
	}
	nonce, ct, err := s.keys.seal(tok, value)
	if err != nil {
		return false, err
	}
	nr := record{token: tok, dedupe: r.dedupe, nonce: nonce, ct: ct, created: now.UnixNano()}
	if err := s.writeRecord(ctx, nr); err != nil {
		return false, err
	}

	oldExpires := now.Add(grace)
	if !old.Expires.IsZero() && old.Expires.Before(oldExpires) {
		oldExpires = old.Expires
	}
	next := old
	next.Token, next.Epoch, next.Created, next.ReplacedBy = tok, old.Epoch+1, now, ""

	done, err := func() (bool, error) {
		tx, err := s.index.BeginTx(ctx, nil)
		if err != nil {
			return false, err
		}
		defer tx.Rollback()
		res, err := tx.ExecContext(ctx, `UPDATE entries SET replaced_by = ?, expires = ?
			WHERE token = ? AND replaced_by = ''`, tok, oldExpires.UnixNano(), old.Token)
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return false, err // rotated meanwhile by someone else
		}
		if err := insertEntries(ctx, tx, next); err != nil {
			return false, err
		}
		ev := AuditEvent{Time: now, Kind: "rotate", Actor: "vault", Token: old.Token, Outcome: "replaced_by " + tok}
		if err := appendAudit(ctx, tx, ev); err != nil {
			return false, err
		}
		return true, tx.Commit()
	}()
	if err != nil || !done {
		s.discardRecords([]string{tok})
	}
	if err != nil {
		return false, fmt.Errorf("vault index: %w", err)
	}
	return done, nil
}
