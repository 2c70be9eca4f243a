package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"
)

// AuditEvent is one entry of the hash-chained audit log. It holds tokens and
// identities, never PII.
type AuditEvent struct {
	Seq                                  int64
	Time                                 time.Time
	Kind, Actor, Token, OrderID, Outcome string
	Prev, Hash                           []byte
}

const auditLabel = "orderseal-v1-audit"

// auditHash is SHA-256(prev || canonical fields).
func auditHash(ev AuditEvent) []byte {
	h := sha256.New()
	h.Write(ev.Prev)
	lp := func(s string) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	lp(auditLabel)
	var n [16]byte
	binary.BigEndian.PutUint64(n[:8], uint64(ev.Seq))
	binary.BigEndian.PutUint64(n[8:], uint64(ev.Time.UnixNano()))
	h.Write(n[:])
	for _, f := range []string{ev.Kind, ev.Actor, ev.Token, ev.OrderID, ev.Outcome} {
		lp(f)
	}
	return h.Sum(nil)
}

// Audit appends an event to the log. The caller fails closed when it
// errors: no reveal or grant without its audit entry.
func (s *Store) Audit(ctx context.Context, kind, actor, token, orderID, outcome string) error {
	if kind == "" {
		return fmt.Errorf("%w: audit kind", ErrInvalid)
	}
	for _, f := range []string{kind, actor, token, orderID, outcome} {
		if !validText(f, 1024) {
			return fmt.Errorf("%w: audit field", ErrInvalid)
		}
	}
	if s.tampered.Load() {
		return fmt.Errorf("vault audit: %w", errTampered)
	}
	ev := AuditEvent{Time: s.now(), Kind: kind, Actor: actor, Token: token, OrderID: orderID, Outcome: outcome}
	// The chain head cannot move while Update holds the write lock.
	if err := s.update(ctx, func(tx IndexTx) error { return appendAudit(ctx, tx, ev) }); err != nil {
		return fmt.Errorf("vault audit: %w", err)
	}
	return nil
}

// appendAudit chains evs (Time, Kind, Actor, Token, OrderID, Outcome set)
// onto the log, filling in Seq, Prev and Hash, and appends them in one
// step. tx holds the write lock, so the chain head cannot move meanwhile.
func appendAudit(ctx context.Context, tx IndexTx, evs ...AuditEvent) error {
	seq, prev, err := tx.AuditHead(ctx)
	if err != nil {
		return err
	}
	if seq == 0 {
		prev = make([]byte, sha256.Size)
	}
	chained := make([]AuditEvent, len(evs))
	for i, ev := range evs {
		seq++
		ev.Seq, ev.Prev, ev.Time = seq, prev, time.Unix(0, ev.Time.UnixNano()).UTC()
		ev.Hash = auditHash(ev)
		prev = ev.Hash
		chained[i] = ev
	}
	return tx.AppendAudit(ctx, chained...)
}

// VerifyAudit walks the audit chain of idx from seq 1, returning how many
// entries verified. An edited, dropped or reordered entry fails with
// ErrAuditBroken and a message naming its seq, e.g. "entry 17: hash
// mismatch". Entries cut off the end are not detected here; compare n with
// a count kept elsewhere.
func VerifyAudit(ctx context.Context, idx IndexReader) (n int, err error) {
	prev := make([]byte, sha256.Size)
	want := int64(1)
	for ev, err := range idx.Audit(ctx) {
		if err != nil {
			return n, err
		}
		switch {
		case ev.Seq > want:
			return n, fmt.Errorf("%w: entry %d: missing (next is entry %d)", ErrAuditBroken, want, ev.Seq)
		case ev.Seq < want:
			return n, fmt.Errorf("%w: entry %d: out of sequence (expected entry %d)", ErrAuditBroken, ev.Seq, want)
		case !bytes.Equal(auditHash(ev), ev.Hash):
			return n, fmt.Errorf("%w: entry %d: hash mismatch", ErrAuditBroken, ev.Seq)
		case !bytes.Equal(ev.Prev, prev):
			return n, fmt.Errorf("%w: entry %d: does not follow entry %d", ErrAuditBroken, ev.Seq, ev.Seq-1)
		}
		prev = ev.Hash
		want++
		n++
	}
	return n, nil
}
