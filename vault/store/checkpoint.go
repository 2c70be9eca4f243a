package store

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Checkpoint anchors the audit chain outside the index (DESIGN.md §7,
// issue 22 item 3): the sequence number and hash of the newest entry, at a
// time, MACed under a sub-key of the data key, which lives in neither
// store. The vault writes one to the backup data store (or the primary
// without a backup) after every audited change and hands it to the
// merchant with every grant; deleting the newest entries of the index, or
// rewriting them, then no longer verifies.
type Checkpoint struct {
	Seq  int64     `json:"seq"`
	Head []byte    `json:"head"`
	At   time.Time `json:"at"`
	MAC  []byte    `json:"mac"`
}

const labelCheckpoint = "orderseal-v1-vault-audit-checkpoint"

// ErrCheckpoint is a checkpoint whose MAC does not verify under this data key.
var ErrCheckpoint = errors.New("vault: audit checkpoint does not verify under this data key")

func checkpointMAC(k *DataKey, cp Checkpoint) []byte {
	key := k.Expand(labelCheckpoint)
	defer clear(key)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(labelCheckpoint))
	var n [16]byte
	binary.BigEndian.PutUint64(n[:8], uint64(cp.Seq))
	binary.BigEndian.PutUint64(n[8:], uint64(cp.At.UnixNano()))
	m.Write(n[:])
	m.Write(cp.Head)
	return m.Sum(nil)
}

// SignCheckpoint returns the checkpoint of (seq, head) at at under k.
func SignCheckpoint(k *DataKey, seq int64, head []byte, at time.Time) Checkpoint {
	cp := Checkpoint{Seq: seq, Head: bytes.Clone(head), At: time.Unix(0, at.UnixNano()).UTC()}
	cp.MAC = checkpointMAC(k, cp)
	return cp
}

// VerifyCheckpoint checks cp's MAC under k.
func VerifyCheckpoint(k *DataKey, cp Checkpoint) error {
	if !hmac.Equal(cp.MAC, checkpointMAC(k, cp)) {
		return ErrCheckpoint
	}
	return nil
}

// CompareCheckpoint checks idx's audit log against cp: the log must reach
// cp.Seq and its entry there must hash to cp.Head. Entries cut off the end
// (or rewritten since) fail with ErrAuditBroken naming both.
func CompareCheckpoint(ctx context.Context, idx IndexReader, cp Checkpoint, where string) error {
	seq, _, err := idx.AuditHead(ctx)
	if err != nil {
		return err
	}
	if seq < cp.Seq {
		return fmt.Errorf("%w: the log ends at entry %d, but the checkpoint in %s (%s) names entry %d: %d newest entries deleted",
			ErrAuditBroken, seq, where, cp.At.Format(time.RFC3339), cp.Seq, cp.Seq-seq)
	}
	ev, err := idx.AuditEntry(ctx, cp.Seq)
	if err != nil {
		return err
	}
	if !bytes.Equal(ev.Hash, cp.Head) {
		return fmt.Errorf("%w: entry %d is not the one the checkpoint in %s (%s) names: the log was rewritten from there",
			ErrAuditBroken, cp.Seq, where, cp.At.Format(time.RFC3339))
	}
	return nil
}

// anchorStore is where checkpoints go: the backup data store, else the primary.
func (s *Store) anchorStore() Data {
	if s.backup != nil {
		return s.backup
	}
	return s.primary
}

// update is index.Update followed by a checkpoint of the audit head.
// Inside the transaction the head is first compared with the newest
// checkpoint: a log found behind it (entries deleted under the running
// vault) commits nothing, and from then on every audited change fails, so
// no reveal is answered, until the index is restored and the vault restarted.
func (s *Store) update(ctx context.Context, fn func(tx IndexTx) error) error {
	if err := s.updateIndex(ctx, fn); err != nil {
		return err
	}
	s.anchor(ctx)
	return nil
}

// updateIndex is update without the checkpoint, for a caller that answers
// before it anchors (commitAudits): the checkpoint is no part of an entry's
// durability, and writing it is a commit of its own in another database.
func (s *Store) updateIndex(ctx context.Context, fn func(tx IndexTx) error) error {
	if s.tampered.Load() {
		return fmt.Errorf("vault audit: %w", errTampered)
	}
	s.anchorMu.Lock()
	anchored := s.anchored
	s.anchorMu.Unlock()
	var ht headTx
	err := s.index.Update(ctx, func(tx IndexTx) error {
		ht = headTx{IndexTx: tx}
		seq, head, err := ht.AuditHead(ctx)
		if err != nil {
			return err
		}
		if behind(seq, head, anchored) {
			s.markTampered(seq, anchored.Seq)
			return fmt.Errorf("vault audit: %w", errTampered)
		}
		return fn(&ht)
	})
	if err == nil && ht.appended.seq > 0 {
		s.headMu.Lock()
		if ht.appended.seq > s.head.seq {
			s.head = ht.appended
		}
		s.headMu.Unlock()
	}
	return err
}

// committed is an audit entry known committed: the head once no later one is.
type committed struct {
	seq  int64
	hash []byte
}

// headTx is an update's transaction, keeping the log's head as the
// transaction sees it: read once (the tamper check), then moved by each
// append, so appending reads no head of its own; and noting the last entry
// the update appends, which once the update commits is in the log — the
// newest such entry is the head the next checkpoint signs (anchorHead),
// with no query of its own.
type headTx struct {
	IndexTx
	head     committed // the head in this transaction; known: read or appended
	known    bool
	appended committed // the last entry this update appended
}

func (t *headTx) AuditHead(ctx context.Context) (int64, []byte, error) {
	if t.known {
		return t.head.seq, t.head.hash, nil
	}
	seq, hash, err := t.IndexTx.AuditHead(ctx)
	if err == nil {
		t.head, t.known = committed{seq, hash}, true
	}
	return seq, hash, err
}

func (t *headTx) AppendAudit(ctx context.Context, evs ...AuditEvent) error {
	if err := t.IndexTx.AppendAudit(ctx, evs...); err != nil {
		t.known = false // whatever the backend left, read it again
		return err
	}
	if len(evs) > 0 {
		last := evs[len(evs)-1]
		t.appended = committed{last.Seq, last.Hash}
		t.head, t.known = t.appended, true
	}
	return nil
}

// behind reports whether a log whose head is (seq, head) lost entries a
// checkpoint covers, or was rewritten at its entry.
func behind(seq int64, head []byte, cp Checkpoint) bool {
	return seq < cp.Seq || (seq == cp.Seq && cp.Seq > 0 && !bytes.Equal(head, cp.Head))
}

func (s *Store) markTampered(head, checkpoint int64) {
	if !s.tampered.Swap(true) {
		s.log.Error("vault audit log is behind its checkpoint: entries were deleted or rewritten; audited operations and reveals are refused until the index is restored",
			"head", head, "checkpoint", checkpoint)
	}
}

// anchor writes a checkpoint of the audit head when it moved on. A store
// that cannot take the checkpoint now gets the next one: each covers
// everything before it. Concurrent changes share checkpoints: a caller
// that finds one being written leaves its change to the writer, which
// writes once more, with the newest head, before it stops; so a busy
// vault writes one checkpoint per write of the anchor store, not one per
// change, and no change waits behind another's checkpoint.
func (s *Store) anchor(ctx context.Context) {
	s.anchorWanted.Store(true)
	for s.anchorWanted.Load() {
		if !s.anchoring.CompareAndSwap(false, true) {
			return // the writer sees anchorWanted once it is done
		}
		s.anchorWanted.Store(false)
		s.anchorHead(ctx)
		s.anchoring.Store(false)
	}
}

// anchorHead writes a checkpoint of the audit head when it moved on.
func (s *Store) anchorHead(ctx context.Context) {
	s.anchorMu.Lock()
	defer s.anchorMu.Unlock()
	s.headMu.Lock()
	h := s.head
	s.headMu.Unlock()
	seq, head := h.seq, h.hash
	if seq == 0 {
		// No update of this process appended yet: the log says.
		var err error
		if seq, head, err = s.index.AuditHead(ctx); err != nil {
			s.log.Error("vault audit: reading the head to checkpoint", "err", err)
			return
		}
	}
	if behind(seq, head, s.anchored) {
		s.markTampered(seq, s.anchored.Seq)
		return
	}
	if seq == s.anchored.Seq {
		return
	}
	cp := SignCheckpoint(s.dataKey, seq, head, s.now())
	if err := s.anchorStore().PutCheckpoint(ctx, cp); err != nil {
		s.log.Warn("vault audit: checkpoint not written; the next one covers it", "seq", seq, "err", err)
	}
	s.anchored = cp
}

// LatestCheckpoint returns the newest checkpoint the vault made (zero Seq: none yet).
func (s *Store) LatestCheckpoint() Checkpoint {
	s.anchorMu.Lock()
	defer s.anchorMu.Unlock()
	return s.anchored
}

// loadAnchor reads the checkpoint of the anchor store at start and checks
// the index against it: a vault whose index lost its newest entries does
// not start. An unreachable store is skipped (the vault starts degraded).
func (s *Store) loadAnchor(ctx context.Context) error {
	cp, ok, err := s.anchorStore().Checkpoint(ctx)
	if err != nil || !ok {
		if err != nil {
			s.log.Warn("vault audit: checkpoint unreadable at start", "err", err)
		}
		return nil
	}
	if err := VerifyCheckpoint(s.dataKey, cp); err != nil {
		return err
	}
	if err := CompareCheckpoint(ctx, s.index, cp, "the "+s.anchorName()+" data store"); err != nil {
		return err
	}
	s.anchored = cp
	return nil
}

func (s *Store) anchorName() string {
	if s.backup != nil {
		return "backup"
	}
	return "primary"
}

// errTampered refuses audit appends once the log was found cut under the running vault.
var errTampered = fmt.Errorf("%w: the log is behind its checkpoint", ErrAuditBroken)

// CrossCheck compares the index's grants with its audit log: every grant
// has the entry that made it ("grant" ok:pending, or "deposit-grant"
// ok:active), an active grant made pending has its "grant-activate", a
// revoked one its "grant-revoke", and every use counted has a
// "reveal-grant" entry after the use (ok, or the failure the vault hit
// reading the value). It returns one line per discrepancy.
func CrossCheck(ctx context.Context, idx IndexReader) ([]string, error) {
	grants, err := idx.Grants(ctx)
	if err != nil {
		return nil, err
	}
	type key struct{ kind, token, order string }
	count := map[key]int{}
	for _, kind := range []string{"grant", "deposit-grant", "grant-activate", "grant-revoke", "reveal-grant"} {
		evs, err := idx.AuditFind(ctx, kind, "")
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			switch {
			case kind == "grant" && ev.Outcome != "ok:pending",
				kind == "deposit-grant" && ev.Outcome != "ok:active",
				kind == "reveal-grant" && ev.Outcome != "ok" && ev.Outcome != "failed:vault-unavailable" && ev.Outcome != "refused:token-expired":
				continue // refusals left no grant and counted no use
			}
			count[key{kind, ev.Token, ev.OrderID}]++
		}
	}
	var out []string
	for _, g := range grants {
		made := count[key{"grant", g.Token, g.OrderID}] > 0
		deposited := count[key{"deposit-grant", g.Token, g.OrderID}] > 0
		if !made && !deposited {
			out = append(out, fmt.Sprintf("grant %s (order %s, token %s) has no audit entry", g.ID, g.OrderID, g.Token))
		}
		if g.State == GrantActive && made && count[key{"grant-activate", g.Token, g.OrderID}] == 0 {
			out = append(out, fmt.Sprintf("grant %s (order %s) is active without a grant-activate entry", g.ID, g.OrderID))
		}
		if g.State == GrantRevoked && count[key{"grant-revoke", g.Token, g.OrderID}] == 0 {
			out = append(out, fmt.Sprintf("grant %s (order %s) is revoked without a grant-revoke entry", g.ID, g.OrderID))
		}
		if n := count[key{"reveal-grant", g.Token, g.OrderID}]; n < g.Uses {
			out = append(out, fmt.Sprintf("grant %s (order %s) counts %d reveals, the audit log %d", g.ID, g.OrderID, g.Uses, n))
		}
	}
	return out, nil
}
