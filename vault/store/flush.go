package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
			err := s.primary.put(ctx, r)
			if err == nil && s.backup != nil {
				err = s.backup.put(ctx, r)
			}
			if err != nil {
				s.pending.ExecContext(context.WithoutCancel(ctx), `UPDATE pending SET attempts = attempts + 1 WHERE token = ?`, r.token)
				return moved, fmt.Errorf("vault flush: %w", err)
			}
			// Delete exactly the record written, not one queued since.
			if _, err := s.pending.ExecContext(ctx, `DELETE FROM pending WHERE token = ? AND nonce = ? AND ct = ?`, r.token, r.nonce, r.ct); err != nil {
				return moved, fmt.Errorf("vault pending: %w", err)
			}
			moved++
		}
	}
}

func (s *Store) pendingBatch(ctx context.Context) ([]record, error) {
	rows, err := s.pending.QueryContext(ctx, `SELECT token, dedupe, nonce, ct, created FROM pending
		ORDER BY created, token LIMIT ?`, flushBatch)
	if err != nil {
		return nil, fmt.Errorf("vault pending: %w", err)
	}
	defer rows.Close()
	var out []record
	for rows.Next() {
		var r record
		if err := rows.Scan(&r.token, &r.dedupe, &r.nonce, &r.ct, &r.created); err != nil {
			return nil, fmt.Errorf("vault pending: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
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
		var n int
		err := s.pending.QueryRowContext(ctx, `SELECT COUNT(*) FROM pending`).Scan(&n)
		if err == nil && n > 0 {
			var moved int
			moved, err = s.Flush(ctx)
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
	prow, err := s.pending.QueryContext(ctx, `SELECT token FROM pending`)
	if err != nil {
		return nil, fmt.Errorf("vault pending: %w", err)
	}
	for prow.Next() {
		var t string
		if err := prow.Scan(&t); err != nil {
			prow.Close()
			return nil, err
		}
		pending[t] = true
	}
	prow.Close()

	pdb, err := s.primary.handle(ctx)
	if err != nil {
		return nil, err
	}
	bdb, err := s.backup.handle(ctx)
	if err != nil {
		return nil, err
	}
	pc, err := openCursor(ctx, pdb)
	if err != nil {
		return nil, s.primary.fail(pdb, err)
	}
	defer pc.close()
	bc, err := openCursor(ctx, bdb)
	if err != nil {
		return nil, s.backup.fail(bdb, err)
	}
	defer bc.close()

	var diffs []Difference
	add := func(tok string, k DiffKind) {
		if !pending[tok] {
			diffs = append(diffs, Difference{Token: tok, Kind: k})
		}
	}
	for pc.ok || bc.ok {
		switch {
		case !bc.ok || (pc.ok && pc.r.token < bc.r.token):
			add(pc.r.token, MissingInBackup)
			pc.next()
		case !pc.ok || bc.r.token < pc.r.token:
			add(bc.r.token, MissingInPrimary)
			bc.next()
		default:
			if !pc.r.same(bc.r) {
				add(pc.r.token, CiphertextDiffers)
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

// cursor walks a data store's records in token order.
type cursor struct {
	rows *sql.Rows
	r    record
	ok   bool
	err  error
}

func openCursor(ctx context.Context, db *sql.DB) (*cursor, error) {
	rows, err := db.QueryContext(ctx, `SELECT token, dedupe, nonce, ct, created FROM records ORDER BY token`)
	if err != nil {
		return nil, err
	}
	c := &cursor{rows: rows}
	c.next()
	return c, nil
}

func (c *cursor) next() {
	c.ok = c.rows.Next()
	if !c.ok {
		c.err = c.rows.Err()
		return
	}
	if err := c.rows.Scan(&c.r.token, &c.r.dedupe, &c.r.nonce, &c.r.ct, &c.r.created); err != nil {
		c.ok, c.err = false, err
	}
}

func (c *cursor) close() { c.rows.Close() }
