package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"orderseal/internal/sqlitex"
	"orderseal/vault/store"
)

// dataMigrations build a data store (primary or backup).
var dataMigrations = []string{
	`CREATE TABLE records (
		token   TEXT PRIMARY KEY,
		dedupe  BLOB NOT NULL,
		nonce   BLOB NOT NULL,
		ct      BLOB NOT NULL,
		created INTEGER NOT NULL -- unix nanoseconds
	) STRICT;
	CREATE INDEX records_dedupe ON records(dedupe);
	CREATE TABLE meta (k TEXT PRIMARY KEY, v BLOB NOT NULL) STRICT;`,
	// 2: the orphan sweep reads records by age.
	`CREATE INDEX records_created ON records(created);`,
}

// pendingMigrations build the pending file: records waiting for a data store.
var pendingMigrations = []string{
	`CREATE TABLE pending (
		token    TEXT PRIMARY KEY,
		dedupe   BLOB NOT NULL,
		nonce    BLOB NOT NULL,
		ct       BLOB NOT NULL,
		created  INTEGER NOT NULL, -- unix nanoseconds; also the queue order
		attempts INTEGER NOT NULL DEFAULT 0
	) STRICT;
	CREATE INDEX pending_dedupe ON pending(dedupe);
	CREATE TABLE meta (k TEXT PRIMARY KEY, v BLOB NOT NULL) STRICT;`,
	// 2: the orphan sweep reads records by age.
	`CREATE INDEX pending_created ON pending(created);`,
}

type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// putRecord inserts rs into table in one statement, so one commit;
// inserting the same record again is a no-op, a different record under the
// same token is an error.
func putRecord(ctx context.Context, db dbtx, table string, rs ...store.Record) error {
	args := make([]any, 0, 5*len(rs))
	for _, r := range rs {
		args = append(args, r.Token, r.Dedupe, r.Nonce, r.Sealed, r.Created)
	}
	res, err := db.ExecContext(ctx, `INSERT INTO `+table+` (token, dedupe, nonce, ct, created)
		VALUES `+valueRows(len(rs), 5)+` ON CONFLICT(token) DO NOTHING`, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == int64(len(rs)) {
		return err
	}
	for _, r := range rs {
		got, ok, err := getRecord(ctx, db, table, r.Token)
		if err != nil {
			return err
		}
		if !ok || !got.Same(r) {
			return fmt.Errorf("%s: %w: another record holds this token", table, store.ErrCorrupt)
		}
	}
	return nil
}

func getRecord(ctx context.Context, db dbtx, table, token string) (store.Record, bool, error) {
	r := store.Record{Token: token}
	err := db.QueryRowContext(ctx, `SELECT dedupe, nonce, ct, created FROM `+table+` WHERE token = ?`, token).
		Scan(&r.Dedupe, &r.Nonce, &r.Sealed, &r.Created)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Record{}, false, nil
	}
	return r, err == nil, err
}

// tokensByHash returns the tokens of table's records with each of hashes,
// keyed by hash, each list oldest first.
func tokensByHash(ctx context.Context, db dbtx, table string, hashes [][]byte) (map[string][]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT dedupe, token FROM `+table+` WHERE dedupe IN (`+sqlitex.Placeholders(len(hashes))+`)
		ORDER BY created, token`, sqlitex.Args(hashes)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	toks := map[string][]string{}
	for rows.Next() {
		var h []byte
		var t string
		if err := rows.Scan(&h, &t); err != nil {
			return nil, err
		}
		toks[string(h)] = append(toks[string(h)], t)
	}
	return toks, rows.Err()
}

// valueRows returns the VALUES list of a multi-row INSERT: n rows of cols parameters.
func valueRows(n, cols int) string {
	return strings.TrimSuffix(strings.Repeat("("+sqlitex.Placeholders(cols)+"),", n), ",")
}

// createdIn returns the tokens of table's records with after < created <= upTo, oldest first.
func createdIn(ctx context.Context, db dbtx, table string, after, upTo int64) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT token FROM `+table+` WHERE created > ? AND created <= ? ORDER BY created`, after, upTo)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var tokens []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		tokens = append(tokens, t)
	}
	return tokens, rows.Err()
}

func deleteTokens(ctx context.Context, db dbtx, table string, tokens []string) error {
	if len(tokens) == 0 {
		return nil
	}
	_, err := db.ExecContext(ctx, `DELETE FROM `+table+` WHERE token IN (`+sqlitex.Placeholders(len(tokens))+`)`, sqlitex.Args(tokens)...)
	return err
}

func deleteOld(ctx context.Context, db dbtx, table, token string, upTo int64) error {
	_, err := db.ExecContext(ctx, `DELETE FROM `+table+` WHERE token = ? AND created <= ?`, token, upTo)
	return err
}

// checkKey records the data key's check value in a new file and refuses a
// file that was written under another key.
func checkKey(ctx context.Context, db *sql.DB, check []byte) error {
	if _, err := db.ExecContext(ctx, `INSERT INTO meta (k, v) VALUES ('key_check', ?) ON CONFLICT(k) DO NOTHING`, check); err != nil {
		return err
	}
	var got []byte
	if err := db.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'key_check'`).Scan(&got); err != nil {
		return err
	}
	if !bytes.Equal(got, check) {
		return store.ErrWrongKey
	}
	return nil
}
