package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"orderseal/internal/sqlitex"
	"orderseal/vault/store"
)

// Pending is the pending table (store.Pending): its own SQLite file beside
// the index, on the vault host's disk, never inside the index database
// (whose credential must never reach PII, even sealed).
type Pending struct {
	db *sql.DB
}

var _ store.Pending = (*Pending)(nil)

// OpenPending opens (creating when absent) the pending file at dsn and runs
// its migrations; it refuses (store.ErrWrongKey) a file written under
// another data key than the one whose store.KeyCheck is check.
func OpenPending(ctx context.Context, dsnString string, check []byte) (*Pending, error) {
	path, err := sqlitePath(dsnString)
	if err != nil {
		return nil, fmt.Errorf("vault pending: %w", err)
	}
	db, err := sqlitex.Open(path, sqlitex.Immediate())
	if err != nil {
		return nil, fmt.Errorf("vault pending: %w", err)
	}
	if err := sqlitex.Migrate(ctx, db, pendingMigrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("vault pending: %w", err)
	}
	if err := checkKey(ctx, db, check); err != nil {
		db.Close()
		return nil, fmt.Errorf("vault pending: %w", err)
	}
	return &Pending{db: db}, nil
}

// Put inserts rs in one statement.
func (p *Pending) Put(ctx context.Context, rs ...store.Record) error {
	if len(rs) == 0 {
		return nil
	}
	return putRecord(ctx, p.db, "pending", rs...)
}

// Get returns token's pending record.
func (p *Pending) Get(ctx context.Context, token string) (store.Record, bool, error) {
	return getRecord(ctx, p.db, "pending", token)
}

// TokensByHash returns the tokens of the pending records with each of hashes, oldest first.
func (p *Pending) TokensByHash(ctx context.Context, hashes [][]byte) (map[string][]string, error) {
	return tokensByHash(ctx, p.db, "pending", hashes)
}

// Delete removes the records of tokens in one statement.
func (p *Pending) Delete(ctx context.Context, tokens ...string) error {
	return deleteTokens(ctx, p.db, "pending", tokens)
}

// CreatedIn returns the tokens of records with after < created <= upTo, oldest first.
func (p *Pending) CreatedIn(ctx context.Context, after, upTo int64) ([]string, error) {
	return createdIn(ctx, p.db, "pending", after, upTo)
}

// DeleteOld removes token's record if it was created at or before upTo.
func (p *Pending) DeleteOld(ctx context.Context, token string, upTo int64) error {
	return deleteOld(ctx, p.db, "pending", token, upTo)
}

// Oldest returns up to n records in queue order.
func (p *Pending) Oldest(ctx context.Context, n int) ([]store.Record, error) {
	rows, err := p.db.QueryContext(ctx, `SELECT token, dedupe, nonce, ct, created FROM pending
		ORDER BY created, token LIMIT ?`, n)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Record
	for rows.Next() {
		var r store.Record
		if err := rows.Scan(&r.Token, &r.Dedupe, &r.Nonce, &r.Sealed, &r.Created); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Remove deletes r only if the row is still exactly r.
func (p *Pending) Remove(ctx context.Context, r store.Record) error {
	_, err := p.db.ExecContext(ctx, `DELETE FROM pending WHERE token = ? AND nonce = ? AND ct = ?`, r.Token, r.Nonce, r.Sealed)
	return err
}

// Retried counts a failed flush of token's record.
func (p *Pending) Retried(ctx context.Context, token string) error {
	_, err := p.db.ExecContext(ctx, `UPDATE pending SET attempts = attempts + 1 WHERE token = ?`, token)
	return err
}

// Count returns how many records wait.
func (p *Pending) Count(ctx context.Context) (int, error) {
	var n int
	err := p.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pending`).Scan(&n)
	return n, err
}

// Tokens returns the tokens of every waiting record.
func (p *Pending) Tokens(ctx context.Context) ([]string, error) {
	rows, err := p.db.QueryContext(ctx, `SELECT token FROM pending`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Close closes the file.
func (p *Pending) Close() error { return p.db.Close() }
