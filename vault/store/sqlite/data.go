package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"orderseal/internal/sqldb"
	"orderseal/internal/sqlitex"
	"orderseal/vault/store"
	"orderseal/vault/store/sqlstore"
)

// Data is a data store file (store.Data, vault/store/sqlstore), opened
// lazily and reopened after any failure (dataFile).
type Data = sqlstore.Data

var _ store.Data = (*Data)(nil)

// dataFile reaches a data store file (sqlstore.DataConn).
type dataFile struct {
	name  string // "primary" or "backup", for messages
	path  string
	check []byte

	mu     sync.Mutex
	db     *fileDB
	file   os.FileInfo // the file db was opened on
	closed bool
}

// fileDB is an open data file: the handle the shared code runs on, and
// the database under it for what only SQLite does (sqlitex.ExecUnsynced).
type fileDB struct {
	sqldb.DB
	raw *sql.DB
}

var errClosed = errors.New("store is closed")

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
	f := &dataFile{name: name, path: path, check: check}
	db, st, err := f.open(ctx, true)
	switch {
	case err == nil:
		f.db, f.file = db, st
	case errors.Is(err, store.ErrWrongKey) || errors.Is(err, sqlitex.ErrSchemaTooNew):
		return nil, fmt.Errorf("vault %s data store: %w", name, err)
	default:
		if log != nil {
			log.Warn("vault data store unavailable at start; writes go to the pending table", "store", name, "err", err)
		}
	}
	return sqlstore.NewData(name, path, f), nil
}

// open opens the file, creating it when create is set, and checks schema and key.
func (f *dataFile) open(ctx context.Context, create bool) (*fileDB, os.FileInfo, error) {
	var opts []sqlitex.Option
	if !create {
		// A missing data file is an outage (an unmounted volume, say),
		// never a reason to start an empty one.
		st, err := os.Stat(f.path)
		if err != nil {
			return nil, nil, err
		}
		if !st.Mode().IsRegular() {
			return nil, nil, fmt.Errorf("%s: not a regular file", f.path)
		}
		opts = append(opts, sqlitex.MustExist())
	}
	db, err := sqlitex.Open(f.path, opts...)
	if err != nil {
		return nil, nil, err
	}
	if err := sqlitex.Migrate(ctx, db, dataMigrations); err != nil {
		db.Close()
		return nil, nil, err
	}
	fdb := &fileDB{DB: sqlitex.Wrap(db), raw: db}
	if err := sqlstore.CheckKey(ctx, fdb, f.check); err != nil {
		db.Close()
		return nil, nil, err
	}
	st, err := os.Stat(f.path)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return fdb, st, nil
}

// DB returns an open database for the file now at f.path, reopening
// when the file was removed or replaced since it was opened. Errors wrap
// ErrUnavailable.
func (f *dataFile) DB(ctx context.Context) (sqldb.DB, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, fmt.Errorf("%s data store %w: %w", f.name, store.ErrUnavailable, errClosed)
	}
	if f.db != nil {
		st, err := os.Stat(f.path)
		if err == nil && os.SameFile(st, f.file) {
			return f.db, nil
		}
		// Writes through the open connection would land in an unlinked
		// or replaced file: drop it.
		f.db.Close()
		f.db, f.file = nil, nil
	}
	db, st, err := f.open(ctx, false)
	if err != nil {
		return nil, fmt.Errorf("%s data store %w: %w", f.name, store.ErrUnavailable, err)
	}
	f.db, f.file = db, st
	return db, nil
}

// Drop closes db after an error so the next use reopens the file.
func (f *dataFile) Drop(db sqldb.DB) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fdb, ok := db.(*fileDB); ok && f.db == fdb && fdb != nil {
		f.db.Close()
		f.db, f.file = nil, nil
	}
}

// PutCheckpoint keeps v in the meta table unless a checkpoint of a higher
// seq is there: one statement, so one commit, unsynced
// (sqlitex.ExecUnsynced): the index holds the entries durably already, and
// a checkpoint a power cut takes back leaves the one before it, which the
// log is still ahead of; the next durable commit here syncs it.
func (f *dataFile) PutCheckpoint(ctx context.Context, db sqldb.DB, _ int64, v []byte) error {
	_, err := sqlitex.ExecUnsynced(ctx, db.(*fileDB).raw, `INSERT INTO meta (k, v) VALUES ('audit_checkpoint', ?)
		ON CONFLICT(k) DO UPDATE SET v = excluded.v WHERE json_extract(excluded.v, '$.seq') >= json_extract(meta.v, '$.seq')`, v)
	return err
}

// Close closes the file; later calls fail with store.ErrUnavailable.
func (f *dataFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.db == nil {
		return nil
	}
	err := f.db.Close()
	f.db, f.file = nil, nil
	return err
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
	return sqlstore.ReadCheckpoint(ctx, sqlitex.Wrap(db))
}
