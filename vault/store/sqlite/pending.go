package sqlite

import (
	"context"
	"fmt"

	"orderseal/internal/sqldb"
	"orderseal/internal/sqlitex"
	"orderseal/vault/store"
	"orderseal/vault/store/sqlstore"
)

// Pending is the pending table (store.Pending): its own SQLite file beside
// the index, on the vault host's disk, never inside the index database
// (whose credential must never reach PII, even sealed). Its records share
// their statements with the data stores' (sqlstore.Records).
type Pending struct {
	db      sqldb.DB
	records sqlstore.Records
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
	raw, err := sqlitex.Open(path, sqlitex.Immediate())
	if err != nil {
		return nil, fmt.Errorf("vault pending: %w", err)
	}
	if err := sqlitex.Migrate(ctx, raw, pendingMigrations); err != nil {
		raw.Close()
		return nil, fmt.Errorf("vault pending: %w", err)
	}
	db := sqlitex.Wrap(raw)
	if err := sqlstore.CheckKey(ctx, db, check); err != nil {
		raw.Close()
		return nil, fmt.Errorf("vault pending: %w", err)
	}
	return &Pending{db: db, records: sqlstore.NewRecords("pending")}, nil
}

// Put inserts rs in one statement.
func (p *Pending) Put(ctx context.Context, rs ...store.Record) error {
	return p.records.Put(ctx, p.db, rs...)
}

// Get returns token's pending record.
func (p *Pending) Get(ctx context.Context, token string) (store.Record, bool, error) {
	return p.records.Get(ctx, p.db, token)
}

// TokensByHash returns the tokens of the pending records with each of hashes, oldest first.
func (p *Pending) TokensByHash(ctx context.Context, hashes [][]byte) (map[string][]string, error) {
	return p.records.TokensByHash(ctx, p.db, hashes)
}

// Delete removes the records of tokens in one statement.
func (p *Pending) Delete(ctx context.Context, tokens ...string) error {
	return p.records.Delete(ctx, p.db, tokens)
}

// CreatedIn returns the tokens of records with after < created <= upTo, oldest first.
func (p *Pending) CreatedIn(ctx context.Context, after, upTo int64) ([]string, error) {
	return p.records.CreatedIn(ctx, p.db, after, upTo)
}

// DeleteOld removes token's record if it was created at or before upTo.
func (p *Pending) DeleteOld(ctx context.Context, token string, upTo int64) error {
	return p.records.DeleteOld(ctx, p.db, token, upTo)
}

// Oldest returns up to n records in queue order.
func (p *Pending) Oldest(ctx context.Context, n int) ([]store.Record, error) {
	return sqldb.Collect(ctx, p.db, sqlstore.ScanRecord, `SELECT token, dedupe, nonce, ct, created FROM pending
		ORDER BY created, token LIMIT $1`, n)
}

// Remove deletes r only if the row is still exactly r.
func (p *Pending) Remove(ctx context.Context, r store.Record) error {
	_, err := p.db.Exec(ctx, `DELETE FROM pending WHERE token = $1 AND nonce = $2 AND ct = $3`, r.Token, r.Nonce, r.Sealed)
	return err
}

// Retried counts a failed flush of token's record.
func (p *Pending) Retried(ctx context.Context, token string) error {
	_, err := p.db.Exec(ctx, `UPDATE pending SET attempts = attempts + 1 WHERE token = $1`, token)
	return err
}

// Count returns how many records wait.
func (p *Pending) Count(ctx context.Context) (int, error) {
	var n int
	err := p.db.QueryRow(ctx, `SELECT COUNT(*) FROM pending`).Scan(&n)
	return n, err
}

// Tokens returns the tokens of every waiting record.
func (p *Pending) Tokens(ctx context.Context) ([]string, error) {
	return sqldb.Collect(ctx, p.db, func(r sqldb.Row) (string, error) {
		var t string
		err := r.Scan(&t)
		return t, err
	}, `SELECT token FROM pending`)
}

// Close closes the file.
func (p *Pending) Close() error { return p.db.Close() }
