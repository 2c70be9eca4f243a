package sqlstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"orderseal/internal/sqldb"
	"orderseal/vault/store"
)

// Records are the statements of one table of sealed records (token,
// dedupe, nonce, ct, created): a data store's records, or the pending
// table on SQLite.
type Records struct {
	table  string
	insert *insert
}

// NewRecords returns the statements of table.
func NewRecords(table string) Records {
	return Records{table: table, insert: newInsert(table, []column{
		{"token", "text"}, {"dedupe", "bytea"}, {"nonce", "bytea"}, {"ct", "bytea"}, {"created", "bigint"},
	}, ` ON CONFLICT (token) DO NOTHING`)}
}

// Put inserts rs in one statement, so one commit; inserting the same
// record again is a no-op, a different record under the same token is an
// error wrapping store.ErrCorrupt.
func (t Records) Put(ctx context.Context, q sqldb.Querier, rs ...store.Record) error {
	if len(rs) == 0 {
		return nil
	}
	rows := make([][]any, len(rs))
	for i, r := range rs {
		rows[i] = []any{r.Token, r.Dedupe, r.Nonce, r.Sealed, r.Created}
	}
	n, err := t.insert.exec(ctx, q, rows)
	if err != nil || n == int64(len(rs)) {
		return err
	}
	for _, r := range rs {
		got, ok, err := t.Get(ctx, q, r.Token)
		if err != nil {
			return err
		}
		if !ok || !got.Same(r) {
			return fmt.Errorf("%s: %w: another record holds this token", t.table, store.ErrCorrupt)
		}
	}
	return nil
}

// Get returns token's record; ok is false when there is none.
func (t Records) Get(ctx context.Context, q sqldb.Querier, token string) (store.Record, bool, error) {
	r := store.Record{Token: token}
	err := q.QueryRow(ctx, `SELECT dedupe, nonce, ct, created FROM `+t.table+` WHERE token = $1`, token).
		Scan(&r.Dedupe, &r.Nonce, &r.Sealed, &r.Created)
	if errors.Is(err, sqldb.ErrNoRows) {
		return store.Record{}, false, nil
	}
	return r, err == nil, err
}

// TokensByHash returns the tokens of the records with each of hashes,
// keyed by hash, each list oldest first. No hashes still runs the query:
// it is the cheap probe of the store.
func (t Records) TokensByHash(ctx context.Context, q sqldb.Querier, hashes [][]byte) (map[string][]string, error) {
	cond, args := sqldb.In(q, "dedupe", 1, hashes)
	toks := map[string][]string{}
	err := sqldb.Each(ctx, q, func(r sqldb.Row) error {
		var h []byte
		var tok string
		if err := r.Scan(&h, &tok); err != nil {
			return err
		}
		toks[string(h)] = append(toks[string(h)], tok)
		return nil
	}, `SELECT dedupe, token FROM `+t.table+` WHERE `+cond+` ORDER BY created, token`, args...)
	if err != nil {
		return nil, err
	}
	return toks, nil
}

// Delete removes the records of tokens in one statement.
func (t Records) Delete(ctx context.Context, q sqldb.Querier, tokens []string) error {
	if len(tokens) == 0 {
		return nil
	}
	cond, args := sqldb.In(q, "token", 1, tokens)
	_, err := q.Exec(ctx, `DELETE FROM `+t.table+` WHERE `+cond, args...)
	return err
}

// CreatedIn returns the tokens of records with after < created <= upTo, oldest first.
func (t Records) CreatedIn(ctx context.Context, q sqldb.Querier, after, upTo int64) ([]string, error) {
	return sqldb.Collect(ctx, q, scanToken, `SELECT token FROM `+t.table+` WHERE created > $1 AND created <= $2 ORDER BY created`, after, upTo)
}

// DeleteOld removes token's record if it was created at or before upTo.
func (t Records) DeleteOld(ctx context.Context, q sqldb.Querier, token string, upTo int64) error {
	_, err := q.Exec(ctx, `DELETE FROM `+t.table+` WHERE token = $1 AND created <= $2`, token, upTo)
	return err
}

func scanToken(r sqldb.Row) (string, error) {
	var t string
	err := r.Scan(&t)
	return t, err
}

// ScanRecord scans a row of token, dedupe, nonce, ct, created.
func ScanRecord(row sqldb.Row) (store.Record, error) {
	var r store.Record
	err := row.Scan(&r.Token, &r.Dedupe, &r.Nonce, &r.Sealed, &r.Created)
	return r, err
}

// CheckKey records the data key's check value in a new store and refuses
// (store.ErrWrongKey) one that was written under another key. SQLite keeps
// it in the meta table, PostgreSQL in a table of its own.
func CheckKey(ctx context.Context, q sqldb.Querier, check []byte) error {
	put, get := `INSERT INTO key_check (id, v) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, `SELECT v FROM key_check WHERE id = 1`
	if q.Dialect() == sqldb.SQLite {
		put, get = `INSERT INTO meta (k, v) VALUES ('key_check', $1) ON CONFLICT (k) DO NOTHING`, `SELECT v FROM meta WHERE k = 'key_check'`
	}
	if _, err := q.Exec(ctx, put, check); err != nil {
		return err
	}
	var got []byte
	if err := q.QueryRow(ctx, get).Scan(&got); err != nil {
		return err
	}
	if !bytes.Equal(got, check) {
		return store.ErrWrongKey
	}
	return nil
}
