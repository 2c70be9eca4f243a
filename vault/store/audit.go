package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
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
	return s.appendAudited(ctx, []AuditEvent{{Time: s.now(), Kind: kind, Actor: actor, Token: token, OrderID: orderID, Outcome: outcome}})
}

// auditing is one Audit or AuditBatch call waiting for its group commit.
type auditing struct {
	evs  []AuditEvent
	done chan error
}

// appendAudited hands evs to the committer and returns once they are
// durable in the index, or why not. Concurrent calls are group-committed
// like registrations (register.go): while one batch commits, the calls
// arriving queue up and the next index transaction takes them all, so
// concurrent reveals share one fsync. A caller whose ctx ends before the
// committer takes its events gets ctx.Err() and nothing is written; once
// taken they commit with their batch, and the caller gets the batch's
// outcome.
func (s *Store) appendAudited(ctx context.Context, evs []AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a := &auditing{evs: evs, done: make(chan error, 1)} // the committer never waits for a caller
	select {
	case s.audits <- a:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return ErrClosed
	}
	return <-a.done
}

// commitAudits appends the events of first and of every call already
// queued in one index transaction, behind the tamper check of update,
// answers each call, then writes the checkpoint.
func (s *Store) commitAudits(first *auditing) {
	batch := []*auditing{first}
	evs := slices.Clone(first.evs)
	for len(batch) < maxBatch {
		select {
		case a := <-s.audits:
			batch = append(batch, a)
			evs = append(evs, a.evs...)
			continue
		default:
		}
		break
	}
	ctx := context.Background()
	err := s.updateIndex(ctx, func(tx IndexTx) error { return appendAudit(ctx, tx, evs...) })
	if err != nil {
		err = fmt.Errorf("vault audit: %w", err)
	}
	if err == nil {
		for _, ev := range evs {
			s.obs.audited(ev.Kind, ev.Outcome)
		}
	}
	for _, a := range batch {
		a.done <- err
	}
	// The entries are durable and answered; the checkpoint follows, while
	// the next batch queues up behind it.
	if err == nil {
		s.anchor(ctx)
	}
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
