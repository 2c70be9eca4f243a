package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"sync"

	"orderseal/internal/sqlitex"
	"orderseal/vault/store"
)

// Data is a data store file (store.Data), opened lazily and reopened after any failure.
type Data struct {
	name  string // "primary" or "backup", for messages
	path  string
	check []byte

	mu     sync.Mutex
	db     *sql.DB
	file   os.FileInfo // the file db was opened on
	closed bool
}

var errClosed = errors.New("store is closed")

var _ store.Data = (*Data)(nil)

// OpenData opens the data store file at dsn (a SQLite DSN), creating it when
// absent, for the data key whose store.KeyCheck is check; name ("primary",
// "backup") labels its messages. A file that cannot be opened now is an
// outage, not an error: it is logged and the Data starts unavailable,
// retrying at each use (and never creating the file then). A file sealed
// under another key (store.ErrWrongKey), or with a newer schema, is an error.
func OpenData(ctx context.Context, dsnString, name string, check []byte, log *slog.Logger) (*Data, error) {
	path, err := sqlitePath(dsnString)
	if err != nil {
		return nil, fmt.Errorf("vault %s data store: %w", name, err)
	}
	d := &Data{name: name, path: path, check: check}
	db, st, err := d.open(ctx, true)
	switch {
	case err == nil:
		d.db, d.file = db, st
	case errors.Is(err, store.ErrWrongKey) || errors.Is(err, sqlitex.ErrSchemaTooNew):
		return nil, fmt.Errorf("vault %s data store: %w", name, err)
	default:
		if log != nil {
			log.Warn("vault data store unavailable at start; writes go to the pending table", "store", name, "err", err)
		}
	}
	return d, nil
}

// open opens the file, creating it when create is set, and checks schema and key.
func (d *Data) open(ctx context.Context, create bool) (*sql.DB, os.FileInfo, error) {
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
func (d *Data) handle(ctx context.Context) (*sql.DB, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("%s data store %w: %w", d.name, store.ErrUnavailable, errClosed)
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
		return nil, fmt.Errorf("%s data store %w: %w", d.name, store.ErrUnavailable, err)
	}
	d.db, d.file = db, st
	return db, nil
}

// fail drops db after an error so the next use reopens the file.
func (d *Data) fail(db *sql.DB, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	d.mu.Lock()
	if d.db == db && db != nil {
		d.db.Close()
		d.db, d.file = nil, nil
	}
	d.mu.Unlock()
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrCorrupt) {
		return fmt.Errorf("%s data store: %w", d.name, err)
	}
	return fmt.Errorf("%s data store %w: %w", d.name, store.ErrUnavailable, err)
}

// Put writes rs in one statement, so one commit.
func (d *Data) Put(ctx context.Context, rs ...store.Record) error {
	if len(rs) == 0 {
		return nil
	}
	db, err := d.handle(ctx)
	if err != nil {
		return err
	}
	if err := putRecord(ctx, db, "records", rs...); err != nil {
		return d.fail(db, err)
	}
	return nil
}

// Get returns token's record.
func (d *Data) Get(ctx context.Context, token string) (store.Record, bool, error) {
	db, err := d.handle(ctx)
	if err != nil {
		return store.Record{}, false, err
	}
	r, ok, err := getRecord(ctx, db, "records", token)
	if err != nil {
		return store.Record{}, false, d.fail(db, err)
	}
	return r, ok, nil
}

// TokensByHash returns the tokens of the records with each of hashes, oldest first.
func (d *Data) TokensByHash(ctx context.Context, hashes [][]byte) (map[string][]string, error) {
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

// Ping checks the file can be opened and queried now.
func (d *Data) Ping(ctx context.Context) error {
	_, err := d.TokensByHash(ctx, nil)
	return err
}

// Delete removes the records of tokens in one statement.
func (d *Data) Delete(ctx context.Context, tokens ...string) error {
	db, err := d.handle(ctx)
	if err != nil {
		return err
	}
	if err := deleteTokens(ctx, db, "records", tokens); err != nil {
		return d.fail(db, err)
	}
	return nil
}

// CreatedIn returns the tokens of records with after < created <= upTo, oldest first.
func (d *Data) CreatedIn(ctx context.Context, after, upTo int64) ([]string, error) {
	db, err := d.handle(ctx)
	if err != nil {
		return nil, err
	}
	toks, err := createdIn(ctx, db, "records", after, upTo)
	if err != nil {
		return nil, d.fail(db, err)
	}
	return toks, nil
}

// DeleteOld removes token's record if it was created at or before upTo.
func (d *Data) DeleteOld(ctx context.Context, token string, upTo int64) error {
	db, err := d.handle(ctx)
	if err != nil {
		return err
	}
	if err := deleteOld(ctx, db, "records", token, upTo); err != nil {
		return d.fail(db, err)
	}
	return nil
}

// Scan yields every record in token order.
func (d *Data) Scan(ctx context.Context) iter.Seq2[store.Record, error] {
	return func(yield func(store.Record, error) bool) {
		db, err := d.handle(ctx)
		if err != nil {
			yield(store.Record{}, err)
			return
		}
		rows, err := db.QueryContext(ctx, `SELECT token, dedupe, nonce, ct, created FROM records ORDER BY token`)
		if err != nil {
			yield(store.Record{}, d.fail(db, err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var r store.Record
			if err := rows.Scan(&r.Token, &r.Dedupe, &r.Nonce, &r.Sealed, &r.Created); err != nil {
				yield(store.Record{}, d.fail(db, err))
				return
			}
			if !yield(r, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(store.Record{}, d.fail(db, err))
		}
	}
}

// Close closes the file; later calls fail with store.ErrUnavailable.
func (d *Data) Close() error {
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

// PutCheckpoint keeps cp in the meta table unless a checkpoint of a higher
// seq is there: one statement, so one commit, unsynced
// (sqlitex.ExecUnsynced): the index holds the entries durably already, and
// a checkpoint a power cut takes back leaves the one before it, which the
// log is still ahead of; the next durable commit here syncs it.
func (d *Data) PutCheckpoint(ctx context.Context, cp store.Checkpoint) error {
	db, err := d.handle(ctx)
	if err != nil {
		return err
	}
	v, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	if _, err := sqlitex.ExecUnsynced(ctx, db, `INSERT INTO meta (k, v) VALUES ('audit_checkpoint', ?)
		ON CONFLICT(k) DO UPDATE SET v = excluded.v WHERE json_extract(excluded.v, '$.seq') >= json_extract(meta.v, '$.seq')`, v); err != nil {
		return d.fail(db, err)
	}
	return nil
}

// Checkpoint returns the audit checkpoint in the meta table.
func (d *Data) Checkpoint(ctx context.Context) (store.Checkpoint, bool, error) {
	db, err := d.handle(ctx)
	if err != nil {
		return store.Checkpoint{}, false, err
	}
	return readCheckpoint(ctx, db)
}

func readCheckpoint(ctx context.Context, db *sql.DB) (store.Checkpoint, bool, error) {
	var v []byte
	err := db.QueryRowContext(ctx, `SELECT v FROM meta WHERE k = 'audit_checkpoint'`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Checkpoint{}, false, nil
	}
	if err != nil {
		return store.Checkpoint{}, false, err
	}
	var cp store.Checkpoint
	if err := json.Unmarshal(v, &cp); err != nil {
		return store.Checkpoint{}, false, fmt.Errorf("audit checkpoint: %w", err)
	}
	return cp, true, nil
}

// ReadCheckpoint opens the existing data store at dsn read-only and returns
// its audit checkpoint (for 'vault audit verify', beside a running vault).
func ReadCheckpoint(ctx context.Context, dsnString string) (store.Checkpoint, bool, error) {
	path, err := sqlitePath(dsnString)
	if err != nil {
		return store.Checkpoint{}, false, err
	}
	db, err := sqlitex.Open(path, sqlitex.ReadOnly(), sqlitex.MaxConns(1))
	if err != nil {
		return store.Checkpoint{}, false, err
	}
	defer db.Close()
	return readCheckpoint(ctx, db)
}
