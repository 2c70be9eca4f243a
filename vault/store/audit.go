package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"orderseal/internal/sqlitex"
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
	tx, err := s.index.BeginTx(ctx, nil) // IMMEDIATE: the chain head cannot move under us
	if err != nil {
		return fmt.Errorf("vault audit: %w", err)
	}
	defer tx.Rollback()
	ev := AuditEvent{Time: s.now(), Kind: kind, Actor: actor, Token: token, OrderID: orderID, Outcome: outcome}
	if err := appendAudit(ctx, tx, ev); err != nil {
		return fmt.Errorf("vault audit: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("vault audit: %w", err)
	}
	return nil
}

// appendAudit chains evs (Time, Kind, Actor, Token, OrderID, Outcome set)
// onto the log in one statement, filling in Seq, Prev and Hash. tx must
// hold the write lock, so the chain head cannot move meanwhile.
func appendAudit(ctx context.Context, tx *sql.Tx, evs ...AuditEvent) error {
	var seq int64
	var prev []byte
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &prev)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		seq, prev = 0, make([]byte, sha256.Size)
	case err != nil:
		return err
	}
	args := make([]any, 0, 9*len(evs))
	for i := range evs {
		ev := &evs[i]
		seq++
		ev.Seq, ev.Prev, ev.Time = seq, prev, time.Unix(0, ev.Time.UnixNano()).UTC()
		ev.Hash = auditHash(*ev)
		prev = ev.Hash
		args = append(args, ev.Seq, ev.Time.UnixNano(), ev.Kind, ev.Actor, ev.Token, ev.OrderID, ev.Outcome, ev.Prev, ev.Hash)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit (seq, time, kind, actor, token, order_id, outcome, prev, hash)
		VALUES `+valueRows(len(evs), 9), args...)
	return err
}

// VerifyAudit opens the index database read-only and walks the audit chain
// from seq 1, returning how many entries verified. An edited, dropped or
// reordered entry fails with ErrAuditBroken and a message naming its seq,
// e.g. "entry 17: hash mismatch". Entries cut off the end are not detected
// here; compare n with a count kept elsewhere.
func VerifyAudit(ctx context.Context, indexPath string) (n int, err error) {
	db, err := sqlitex.Open(indexPath, sqlitex.ReadOnly(), sqlitex.MaxConns(1))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT seq, time, kind, actor, token, order_id, outcome, prev, hash
		FROM audit ORDER BY seq`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	prev := make([]byte, sha256.Size)
	want := int64(1)
	for rows.Next() {
		var ev AuditEvent
		var t int64
		if err := rows.Scan(&ev.Seq, &t, &ev.Kind, &ev.Actor, &ev.Token, &ev.OrderID, &ev.Outcome, &ev.Prev, &ev.Hash); err != nil {
			return n, fmt.Errorf("%w: entry %d: %v", ErrAuditBroken, want, err)
		}
		ev.Time = time.Unix(0, t).UTC()
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
	if err := rows.Err(); err != nil {
		return n, err
	}
	return n, nil
}
