package store

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"
)

const flushBatch = 128

// Flush moves pending records to the primary and the backup. A record leaves
// the pending table only after both stores hold it, so Flush is idempotent
// and a failure midway loses nothing: it returns how many records it moved
// and the error that stopped it.
func (s *Store) Flush(ctx context.Context) (moved int, err error) {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	for {
		batch, err := s.pendingBatch(ctx)
		if err != nil || len(batch) == 0 {
			return moved, err
		}
		for _, r := range batch {
			err := s.primary.Put(ctx, r)
			if err == nil && s.backup != nil {
				err = s.backup.Put(ctx, r)
			}
			if err != nil {
				s.pending.Retried(context.WithoutCancel(ctx), r.Token)
				return moved, fmt.Errorf("vault flush: %w", err)
			}
			// Delete exactly the record written, not one queued since.
			if err := s.pending.Remove(ctx, r); err != nil {
				return moved, fmt.Errorf("vault pending: %w", err)
			}
			moved++
		}
	}
}

func (s *Store) pendingBatch(ctx context.Context) ([]Record, error) {
	rs, err := s.pending.Oldest(ctx, flushBatch)
	if err != nil {
		return nil, fmt.Errorf("vault pending: %w", err)
	}
	return rs, nil
}

// RunFlusher flushes the pending table now and then every interval until ctx
// is done. Failures are logged and retried at the next tick.
func (s *Store) RunFlusher(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 10 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var swept int64 // watermark of the orphan sweep: the first pass looks at every record
	for {
		if n, next, err := s.SweepOrphans(ctx, swept, OrphanGrace); err != nil && ctx.Err() == nil {
			s.log.Warn("vault orphan sweep incomplete; will retry", "deleted", n, "err", err)
		} else {
			swept = next
			if n > 0 {
				s.log.Info("vault orphan records swept", "deleted", n)
			}
		}
		n, err := s.pending.Count(ctx)
		if err == nil && n > 0 {
			var moved int
			moved, err = s.Flush(ctx)
			s.obs.flushed(moved)
			if moved > 0 {
				s.log.Info("vault pending records flushed", "moved", moved, "queued", n)
			}
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("vault flush failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DiffKind says how a token's records differ between the data stores.
type DiffKind string

// Kinds of Difference.
const (
	MissingInPrimary  DiffKind = "missing_in_primary"
	MissingInBackup   DiffKind = "missing_in_backup"
	CiphertextDiffers DiffKind = "ciphertext_differs"
	// Orphan: a record on one side that no index entry names, left by a
	// registration killed between its data and index writes; SweepOrphans
	// deletes it after OrphanGrace. Not a disagreement about live data.
	Orphan DiffKind = "orphan"
)

// Difference is one token whose records the primary and backup disagree on.
type Difference struct {
	Token string
	Kind  DiffKind
}

// Check compares the primary and backup data stores record by record.
// Tokens still in the pending table are skipped: they are expected to be
// missing from one side until Flush.
func (s *Store) Check(ctx context.Context) ([]Difference, error) {
	if s.backup == nil {
		return nil, fmt.Errorf("%w: no backup data store configured", ErrInvalid)
	}
	pending := map[string]bool{}
	toks, err := s.pending.Tokens(ctx)
	if err != nil {
		return nil, fmt.Errorf("vault pending: %w", err)
	}
	for _, t := range toks {
		pending[t] = true
	}

	pc := newCursor(s.primary.Scan(ctx))
	defer pc.stop()
	bc := newCursor(s.backup.Scan(ctx))
	defer bc.stop()
	if err := errors.Join(pc.err, bc.err); err != nil {
		return nil, err
	}

	var diffs []Difference
	add := func(tok string, k DiffKind) {
		if !pending[tok] {
			diffs = append(diffs, Difference{Token: tok, Kind: k})
		}
	}
	for pc.ok || bc.ok {
		switch {
		case !bc.ok || (pc.ok && pc.r.Token < bc.r.Token):
			add(pc.r.Token, MissingInBackup)
			pc.next()
		case !pc.ok || bc.r.Token < pc.r.Token:
			add(bc.r.Token, MissingInPrimary)
			bc.next()
		default:
			if !pc.r.Same(bc.r) {
				add(pc.r.Token, CiphertextDiffers)
			}
			pc.next()
			bc.next()
		}
	}
	if err := errors.Join(pc.err, bc.err); err != nil {
		return nil, fmt.Errorf("vault check: %w", err)
	}
	for i, d := range diffs {
		ok, err := s.indexed(ctx, d.Token)
		if err != nil {
			return nil, err
		}
		if !ok {
			diffs[i].Kind = Orphan
		}
	}
	return diffs, nil
}

// cursor walks a data store's Scan one record at a time.
type cursor struct {
	pull func() (Record, error, bool)
	stop func()
	r    Record
	ok   bool
	err  error
}

func newCursor(seq iter.Seq2[Record, error]) *cursor {
	c := &cursor{}
	c.pull, c.stop = iter.Pull2(seq)
	c.next()
	return c
}

func (c *cursor) next() {
	r, err, ok := c.pull()
	switch {
	case !ok:
		c.ok = false
	case err != nil:
		c.ok, c.err = false, err
	default:
		c.r, c.ok = r, true
	}
}
