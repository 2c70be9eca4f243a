package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// OrphanGrace is how long a sealed record may wait for its index entry. A
// registration or rotation writes the record first and the entry right
// after; a process killed between the two leaves a record no entry names,
// which nobody could reveal or erase. Older than this, it is swept.
const OrphanGrace = 10 * time.Minute

// SweepOrphans deletes records written after since and at least grace ago
// that no index entry names, from the pending table and both data stores.
// It returns how many it deleted and the watermark to pass as since next
// time; a data store it cannot reach keeps the watermark where it was, so
// its records are looked at again.
func (s *Store) SweepOrphans(ctx context.Context, since int64, grace time.Duration) (deleted int, next int64, err error) {
	cutoff := s.now().Add(-grace).UnixNano()
	if cutoff <= since {
		return 0, since, nil
	}
	stores := []struct {
		name string
		Records
	}{{"pending", s.pending}}
	for _, d := range s.dataStores() {
		stores = append(stores, struct {
			name string
			Records
		}{d.name, d.Data})
	}
	var errs []error
	for _, st := range stores {
		n, err := s.sweep(ctx, st.Records, since, cutoff)
		deleted += n
		if err != nil {
			errs = append(errs, fmt.Errorf("vault %s: %w", st.name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return deleted, since, err
	}
	return deleted, cutoff, nil
}

func (s *Store) sweep(ctx context.Context, rs Records, since, cutoff int64) (int, error) {
	tokens, err := rs.CreatedIn(ctx, since, cutoff)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, t := range tokens {
		if ok, err := s.indexed(ctx, t); err != nil || ok {
			if err != nil {
				return n, err
			}
			continue
		}
		// Still no entry, and still old: delete it.
		if err := rs.DeleteOld(ctx, t, cutoff); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// indexed reports whether an index entry names token. A shared record is
// never an orphan: tokens point to it from sealed references only, which
// the sweep does not open.
func (s *Store) indexed(ctx context.Context, token string) (bool, error) {
	if isShareID(token) {
		return true, nil
	}
	_, err := s.index.Entry(ctx, token)
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("vault index: %w", err)
	}
	return true, nil
}
