package store

import (
	"context"
	"fmt"
	"time"
)

// maxBatch bounds how many registrations one group commit takes.
const maxBatch = 256

// registration is one Register call, validated and sealed, waiting for
// its group commit.
type registration struct {
	entry Entry         // the committer sets Created and Expires
	ttl   time.Duration // 0: no expiry
	rec   Record        // the reference to shared, sealed under entry.Token; the committer sets Created
	share Record        // the value under its share id; the committer sets Created
	audit bool          // RegisterAudited
	done  chan registered
}

// registered is what the committer answers a registration.
type registered struct {
	token   string
	created bool
	err     error
}

// Register stores value (already normalized by the caller) for owner and
// returns its token. The same owner, type and value again (the same after
// Options.Fold) returns the live token already issued, with created=false;
// a label given then replaces the token's label (an empty one leaves it),
// shareable is left as it was. The value itself is stored once for every
// owner who registers it (see sealShared). ttl 0 means no expiry. When a data store cannot be
// written the sealed record goes to the pending table and Register still
// succeeds; only a failure of the index or the pending table is an error.
//
// Concurrent calls are group-committed: while one batch commits, the
// callers arriving queue up, and the next batch takes them all (up to
// maxBatch) into one transaction per file — one fsync per file for the
// whole batch. A lone caller commits at once. Register returns only after
// its batch's data and index transactions committed (synchronous=FULL);
// when the index transaction fails, the batch's records are discarded and
// every caller in it gets the error.
//
// A caller whose ctx ends before the committer takes its registration gets
// ctx.Err() and nothing of it is written. Once taken, a registration
// commits with its batch whatever becomes of ctx — cancelling it would fail
// the others — and Register reports the batch's outcome, so ctx.Err() never
// hides an issued token.
func (s *Store) Register(ctx context.Context, owner string, t TokenType, label string, value []byte, shareable bool, ttl time.Duration) (token string, created bool, err error) {
	return s.register(ctx, false, owner, t, label, value, shareable, ttl)
}

// RegisterAudited is Register that also appends a "register" entry (actor
// owner, outcome "ok") to the audit log, new token or not, in the index
// transaction that holds the token's entry: both or neither are written.
func (s *Store) RegisterAudited(ctx context.Context, owner string, t TokenType, label string, value []byte, shareable bool, ttl time.Duration) (token string, created bool, err error) {
	return s.register(ctx, true, owner, t, label, value, shareable, ttl)
}

func (s *Store) register(ctx context.Context, audit bool, owner string, t TokenType, label string, value []byte, shareable bool, ttl time.Duration) (string, bool, error) {
	r, err := s.prepare(owner, t, label, value, shareable, ttl)
	if err != nil {
		return "", false, err
	}
	r.audit = audit
	if err := ctx.Err(); err != nil {
		return "", false, err
	}
	select {
	case s.registrations <- r:
	case <-ctx.Done():
		return "", false, ctx.Err()
	case <-s.closing:
		return "", false, ErrClosed
	}
	res := <-r.done
	return res.token, res.created, res.err
}

// prepare validates a registration and seals its value under a fresh
// token, outside the committer, so callers seal in parallel.
func (s *Store) prepare(owner string, t TokenType, label string, value []byte, shareable bool, ttl time.Duration) (*registration, error) {
	switch {
	case owner == "" || !validText(owner, MaxOwnerLen):
		return nil, fmt.Errorf("%w: owner", ErrInvalid)
	case !t.Valid():
		return nil, fmt.Errorf("%w: %q", ErrTokenType, t)
	case !validText(label, MaxLabelLen):
		return nil, fmt.Errorf("%w: label", ErrInvalid)
	case len(value) == 0 || len(value) > MaxValueLen:
		return nil, fmt.Errorf("%w: value is empty or longer than %d bytes", ErrInvalid, MaxValueLen)
	case value[0] == 0:
		return nil, fmt.Errorf("%w: value starts with NUL", ErrInvalid)
	case ttl < 0:
		return nil, fmt.Errorf("%w: negative ttl", ErrInvalid)
	}
	tok, err := NewToken(t)
	if err != nil {
		return nil, err
	}
	rec, share, err := s.tokenRecords(tok, owner, t, value)
	if err != nil {
		return nil, err
	}
	return &registration{
		entry: Entry{Token: tok, Owner: owner, Type: t, Label: label, Epoch: 1, Shareable: shareable},
		ttl:   ttl,
		rec:   rec,
		share: share,
		done:  make(chan registered, 1), // the committer never waits for a caller
	}, nil
}

// tokenRecords are token's record (a sealed reference) and the shared
// record of value it points to.
func (s *Store) tokenRecords(tok, owner string, t TokenType, value []byte) (rec, share Record, err error) {
	id := s.keys.shareID(t, value)
	nonce, ct, err := s.keys.seal(tok, []byte(refMagic+id))
	if err != nil {
		return Record{}, Record{}, err
	}
	folded := value
	if s.fold != nil {
		folded = s.fold(t, value)
	}
	return Record{Token: tok, Dedupe: s.keys.dedupeHash(owner, t, folded), Nonce: nonce, Sealed: ct},
		s.keys.sealShared(id, value, 0), nil
}

// commitLoop is the committer: it takes a registration, then every other
// one already queued, and commits them as one batch; or the same with
// audit events (audit.go); until Close.
func (s *Store) commitLoop() {
	defer close(s.stopped)
	for {
		select {
		case r := <-s.registrations:
			s.commit(s.drain(r))
		case a := <-s.audits:
			s.commitAudits(a)
		case <-s.closing:
			return
		}
	}
}

// drain returns first and the registrations queued behind it, up to
// maxBatch: the callers who arrived while the last batch committed.
func (s *Store) drain(first *registration) []*registration {
	batch := []*registration{first}
	for len(batch) < maxBatch {
		select {
		case r := <-s.registrations:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// commit registers batch and answers every caller in it. Its context is
// no caller's: one caller going away must not fail the others.
func (s *Store) commit(batch []*registration) {
	s.regMu.Lock()
	out, err := s.registerBatch(context.Background(), batch)
	s.regMu.Unlock()
	if err == nil {
		s.obs.commitBatch(len(batch))
		for _, r := range batch {
			if r.audit {
				s.obs.audited("register", "ok")
			}
		}
	}
	for i, r := range batch {
		if err != nil {
			r.done <- registered{err: err}
			continue
		}
		r.done <- out[i]
	}
}

// registerBatch dedupes batch against the stores and within itself, writes
// the new records, then their index entries and the audit entries asked
// for in one index transaction. The caller holds regMu.
func (s *Store) registerBatch(ctx context.Context, batch []*registration) ([]registered, error) {
	now := s.now().UTC()
	live, held, err := s.findLive(ctx, batch, now)
	if err != nil {
		return nil, err
	}
	out := make([]registered, len(batch))
	var recs []Record
	var entries []Entry
	var tokens []string
	relabel := map[string]string{} // token → new label
	shared := map[string]bool{}
	for i, r := range batch {
		hash := string(r.rec.Dedupe)
		if old, ok := live[hash]; ok {
			out[i] = registered{token: old.Token}
			if r.entry.Label != "" && r.entry.Label != old.Label {
				relabel[old.Token] = r.entry.Label
				old.Label = r.entry.Label
				live[hash] = old
			}
			continue
		}
		e, rec := r.entry, r.rec
		e.Created, rec.Created = now, now.UnixNano()
		if r.ttl > 0 {
			e.Expires = now.Add(r.ttl)
		}
		live[hash] = e // the same value later in this batch gets this token
		out[i] = registered{token: e.Token, created: true}
		recs, entries, tokens = append(recs, rec), append(entries, e), append(tokens, e.Token)
		// The shared record goes with every new token, held before or
		// not: the write is the same either way (it is deterministic).
		if !shared[r.share.Token] {
			shared[r.share.Token] = true
			sh := r.share
			sh.Created = now.UnixNano()
			recs = append(recs, sh)
			if held != nil && !held[sh.Token] {
				tokens = append(tokens, sh.Token) // new: discarded with the batch's tokens on failure
			}
		}
	}
	if len(recs) > 0 {
		if err := s.writeRecord(ctx, recs...); err != nil {
			return nil, err
		}
	}
	if err := s.indexBatch(ctx, batch, entries, relabel, out, now); err != nil {
		if len(tokens) > 0 {
			s.discardRecords(tokens)
		}
		return nil, fmt.Errorf("vault index: %w", err)
	}
	return out, nil
}

// indexBatch inserts entries, relabels tokens registered again under a new
// label, and appends an audit entry for each audited registration of batch
// (out says its token), in one transaction.
func (s *Store) indexBatch(ctx context.Context, batch []*registration, entries []Entry, relabel map[string]string, out []registered, now time.Time) error {
	var evs []AuditEvent
	for i, r := range batch {
		if r.audit {
			evs = append(evs, AuditEvent{Time: now, Kind: "register", Actor: r.entry.Owner, Token: out[i].token, Outcome: "ok"})
		}
	}
	return s.update(ctx, func(tx IndexTx) error {
		if len(entries) > 0 {
			if err := tx.InsertEntries(ctx, entries...); err != nil {
				return err
			}
		}
		for tok, label := range relabel {
			if err := tx.SetLabel(ctx, tok, label); err != nil {
				return err
			}
		}
		if len(evs) > 0 {
			return appendAudit(ctx, tx, evs...)
		}
		return nil
	})
}

// findLive returns, by dedupe hash, the entry of the oldest live token of
// the batch's owner and type whose record has that hash; and which of the
// batch's shared records a store already holds (nil when the data stores
// could not be asked: then none is taken for new). It looks in the pending table
// first, then the primary (the backup when the primary fails): Flush
// inserts before it deletes, so a record being flushed is seen in one place
// or the other.
func (s *Store) findLive(ctx context.Context, batch []*registration, now time.Time) (map[string]Entry, map[string]bool, error) {
	want := map[string]Entry{} // hash → owner and type asked for
	var hashes [][]byte
	for _, r := range batch {
		if _, ok := want[string(r.rec.Dedupe)]; !ok {
			want[string(r.rec.Dedupe)] = r.entry
			hashes = append(hashes, r.rec.Dedupe)
		}
		if _, ok := want[string(r.share.Dedupe)]; !ok {
			want[string(r.share.Dedupe)] = Entry{}
			hashes = append(hashes, r.share.Dedupe)
		}
	}
	cands, err := s.pending.TokensByHash(ctx, hashes)
	if err != nil {
		return nil, nil, fmt.Errorf("vault pending: %w", err)
	}
	if cands == nil {
		cands = map[string][]string{}
	}
	data, err := s.primary.TokensByHash(ctx, hashes)
	if err != nil && s.backup != nil {
		data, err = s.backup.TokensByHash(ctx, hashes)
	}
	held := map[string]bool{}
	if err != nil {
		s.log.Warn("vault dedupe cannot reach a data store; a duplicate token may be issued", "err", err)
		held = nil
	}
	var all []string
	for h, toks := range data {
		cands[h] = append(cands[h], toks...)
	}
	for h, toks := range cands {
		for _, tok := range toks {
			if isShareID(tok) {
				if held != nil {
					held[tok] = true
				}
				continue
			}
			all = append(all, tok)
		}
		if len(toks) > 0 && isShareID(toks[0]) {
			delete(cands, h)
		}
	}
	entries, err := s.index.Entries(ctx, all)
	if err != nil {
		return nil, nil, fmt.Errorf("vault index: %w", err)
	}

	live := map[string]Entry{}
	for h, toks := range cands {
		w := want[h]
		var best Entry
		for _, tok := range toks {
			e, ok := entries[tok]
			if !ok {
				continue // a record whose Register failed after the data write
			}
			if e.Owner != w.Owner || e.Type != w.Type || e.ReplacedBy != "" || e.expiredAt(now) {
				continue
			}
			if best.Token == "" || e.Created.Before(best.Created) {
				best = e
			}
		}
		if best.Token != "" {
			live[h] = best
		}
	}
	return live, held, nil
}
