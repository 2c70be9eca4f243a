package store

import (
	"context"
	"database/sql"
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
	type target struct {
		name, table string
		db          func(context.Context) (*sql.DB, error)
	}
	stores := []target{
		{"pending", "pending", func(context.Context) (*sql.DB, error) { return s.pending, nil }},
		{"primary", "records", s.primary.handle},
	}
	if s.backup != nil {
		stores = append(stores, target{"backup", "records", s.backup.handle})
	}
	var errs []error
	for _, st := range stores {
		db, err := st.db(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("vault %s: %w", st.name, err))
			continue
		}
		n, err := s.sweep(ctx, db, st.table, since, cutoff)
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

func (s *Store) sweep(ctx context.Context, db *sql.DB, table string, since, cutoff int64) (int, error) {
	rows, err := db.QueryContext(ctx, `SELECT token FROM `+table+` WHERE created > ? AND created <= ? ORDER BY created`, since, cutoff)
	if err != nil {
		return 0, err
	}
	var tokens []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return 0, err
		}
		tokens = append(tokens, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
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
		if _, err := db.ExecContext(ctx, `DELETE FROM `+table+` WHERE token = ? AND created <= ?`, t, cutoff); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// indexed reports whether an index entry names token.
func (s *Store) indexed(ctx context.Context, token string) (bool, error) {
	var one int
	err := s.index.QueryRowContext(ctx, `SELECT 1 FROM entries WHERE token = ?`, token).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("vault index: %w", err)
	}
	return true, nil
}
