package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"orderseal/internal/sqlitex"
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

// record is one sealed value as stored in a data store or the pending table.
type record struct {
	token   string
	dedupe  []byte
	nonce   []byte
	ct      []byte
	created int64
}

func (r record) same(o record) bool {
	return r.token == o.token && bytes.Equal(r.dedupe, o.dedupe) &&
		bytes.Equal(r.nonce, o.nonce) && bytes.Equal(r.ct, o.ct)
}

type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// putRecord inserts rs into table in one statement, so one commit;
// inserting the same record again is a no-op, a different record under the
// same token is an error.
func putRecord(ctx context.Context, db dbtx, table string, rs ...record) error {
	args := make([]any, 0, 5*len(rs))
	for _, r := range rs {
		args = append(args, r.token, r.dedupe, r.nonce, r.ct, r.created)
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
		got, ok, err := getRecord(ctx, db, table, r.token)
		if err != nil {
			return err
		}
		if !ok || !got.same(r) {
			return fmt.Errorf("%s: %w: another record holds this token", table, ErrCorrupt)
		}
	}
	return nil
}

func getRecord(ctx context.Context, db dbtx, table, token string) (record, bool, error) {
	r := record{token: token}
	err := db.QueryRowContext(ctx, `SELECT dedupe, nonce, ct, created FROM `+table+` WHERE token = ?`, token).
		Scan(&r.dedupe, &r.nonce, &r.ct, &r.created)
	if errors.Is(err, sql.ErrNoRows) {
		return record{}, false, nil
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
		return ErrWrongKey
	}
	return nil
}

// dataStore is a data file opened lazily and reopened after any failure.
type dataStore struct {
	name  string // "primary" or "backup", for messages
	path  string
	check []byte

	mu     sync.Mutex
	db     *sql.DB
	file   os.FileInfo // the file db was opened on
	closed bool
}

var errClosed = errors.New("store is closed")

// open opens the file, creating it when create is set, and checks schema and key.
func (d *dataStore) open(ctx context.Context, create bool) (*sql.DB, os.FileInfo, error) {
	var opts []sqlitex.Option
	if !create {
		// A missing data file is an outage (an unmounted volume, say),
		// never a reason to start an empty one.
		st, err := os.Stat(d.path)
		if err != nil {
			return nil, nil, err
		}
		if !st.Mode().IsRegular() {
			return nil, nil, fmt.Errorf("%s: not a regular file", d.path)
		}
		opts = append(opts, sqlitex.MustExist())
	}
	db, err := sqlitex.Open(d.path, opts...)
	if err != nil {
		return nil, nil, err
	}
	if err := sqlitex.Migrate(ctx, db, dataMigrations); err != nil {
		db.Close()
		return nil, nil, err
	}
	if err := checkKey(ctx, db, d.check); err != nil {
		db.Close()
		return nil, nil, err
	}
	st, err := os.Stat(d.path)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, st, nil
}

// handle returns an open database for the file now at d.path, reopening
// when the file was removed or replaced since it was opened. Errors wrap
// ErrUnavailable.
func (d *dataStore) handle(ctx context.Context) (*sql.DB, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("%s data store %w: %w", d.name, ErrUnavailable, errClosed)
	}
	if d.db != nil {
		st, err := os.Stat(d.path)
		if err == nil && os.SameFile(st, d.file) {
			return d.db, nil
		}
		// Writes through the open connection would land in an unlinked
		// or replaced file: drop it.
		d.db.Close()
		d.db, d.file = nil, nil
	}
	db, st, err := d.open(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("%s data store %w: %w", d.name, ErrUnavailable, err)
	}
	d.db, d.file = db, st
	return db, nil
}

// fail drops db after an error so the next use reopens the file.
func (d *dataStore) fail(db *sql.DB, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	d.mu.Lock()
	if d.db == db && db != nil {
		d.db.Close()
		d.db, d.file = nil, nil
	}
	d.mu.Unlock()
	if errors.Is(err, ErrUnavailable) || errors.Is(err, ErrCorrupt) {
		return fmt.Errorf("%s data store: %w", d.name, err)
	}
	return fmt.Errorf("%s data store %w: %w", d.name, ErrUnavailable, err)
}

// put writes rs in one statement.
func (d *dataStore) put(ctx context.Context, rs ...record) error {
	db, err := d.handle(ctx)
	if err != nil {
		return err
	}
	if err := putRecord(ctx, db, "records", rs...); err != nil {
		return d.fail(db, err)
	}
	return nil
}

func (d *dataStore) get(ctx context.Context, token string) (record, bool, error) {
	db, err := d.handle(ctx)
	if err != nil {
		return record{}, false, err
	}
	r, ok, err := getRecord(ctx, db, "records", token)
	if err != nil {
		return record{}, false, d.fail(db, err)
	}
	return r, ok, nil
}

func (d *dataStore) byHash(ctx context.Context, hashes [][]byte) (map[string][]string, error) {
	db, err := d.handle(ctx)
	if err != nil {
		return nil, err
	}
	toks, err := tokensByHash(ctx, db, "records", hashes)
	if err != nil {
		return nil, d.fail(db, err)
	}
	return toks, nil
}

func (d *dataStore) delete(ctx context.Context, tokens []string) error {
	db, err := d.handle(ctx)
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM records WHERE token IN (`+sqlitex.Placeholders(len(tokens))+`)`, sqlitex.Args(tokens)...); err != nil {
		return d.fail(db, err)
	}
	return nil
}

func (d *dataStore) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	if d.db == nil {
		return nil
	}
	err := d.db.Close()
	d.db, d.file = nil, nil
	return err
}
