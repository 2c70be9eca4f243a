// Package sqlitex opens SQLite databases (modernc.org/sqlite) the way every
// orderseal daemon needs them — WAL, synchronous=FULL, a busy timeout and
// foreign keys on every pooled connection — and applies numbered schema
// migrations at start (DESIGN.md §8, STYLE.md "SQLite").
package sqlitex

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// BusyTimeoutMillis is how long a connection waits for a lock before SQLITE_BUSY.
const BusyTimeoutMillis = 5000

// ErrSchemaTooNew is returned by Migrate for a database written by newer code.
var ErrSchemaTooNew = errors.New("database schema is newer than this program knows")

type options struct {
	secureDelete bool
	readOnly     bool
	mustExist    bool
	immediate    bool
	maxConns     int
}

// Option tunes Open.
type Option func(*options)

// ReadOnly opens the database read-only (mode=ro, query_only): nothing is
// created and no statement can write.
func ReadOnly() Option { return func(o *options) { o.readOnly = true } }

// MaxConns caps the connection pool at n (n <= 0: no cap).
func MaxConns(n int) Option { return func(o *options) { o.maxConns = n } }

// Serialized gives the database one connection, so a daemon's transactions
// queue in Go, in order, instead of in SQLite's busy handler: that handler
// sleeps up to 100 ms between retries, which under concurrent writers turns
// a few milliseconds of waiting into seconds of tail latency. A caller must
// then never use the *sql.DB while it holds a transaction on it.
func Serialized() Option { return MaxConns(1) }

// SecureDelete makes SQLite overwrite deleted and replaced content with
// zeros (secure_delete), so data a store drops does not linger in free
// space of the database file.
func SecureDelete() Option { return func(o *options) { o.secureDelete = true } }

// MustExist refuses to create the database: a missing file is an error
// (SQLITE_CANTOPEN), not a fresh empty database.
func MustExist() Option { return func(o *options) { o.mustExist = true } }

// Immediate makes every transaction BEGIN IMMEDIATE, so a read-then-write
// transaction takes the write lock up front (waiting up to the busy timeout)
// instead of failing with SQLITE_BUSY when it later tries to upgrade.
func Immediate() Option { return func(o *options) { o.immediate = true } }

// DSN returns the data source name Open uses for path: a file: URI with the
// pragmas as _pragma parameters, so the driver applies them to every new
// pooled connection (a PRAGMA run with Exec would reach one connection only).
func DSN(path string, opts ...Option) string {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return dsn(path, o)
}

func dsn(path string, o options) string {
	q := url.Values{}
	pragmas := []string{
		fmt.Sprintf("busy_timeout(%d)", BusyTimeoutMillis),
		"foreign_keys(ON)",
	}
	switch {
	case o.readOnly:
		q.Set("mode", "ro")
		pragmas = append(pragmas, "query_only(1)")
	default:
		// journal_mode is persistent and needs a write; a read-only
		// connection reads whatever mode the writer left (WAL).
		pragmas = append(pragmas, "journal_mode(WAL)", "synchronous(FULL)")
		if o.mustExist {
			q.Set("mode", "rw")
		} else {
			q.Set("mode", "rwc")
		}
	}
	if o.secureDelete {
		pragmas = append(pragmas, "secure_delete(ON)")
	}
	q["_pragma"] = pragmas
	if o.immediate && !o.readOnly {
		q.Set("_txlock", "immediate")
	}
	// SQLite decodes %HH in a URI path, so escape what would end the path.
	u := url.URL{Path: path}
	return "file:" + u.EscapedPath() + "?" + q.Encode()
}

// Open opens a SQLite database with modernc.org/sqlite, pragmas in the DSN so
// every pooled connection has them: journal_mode(WAL), synchronous(FULL),
// busy_timeout(5000), foreign_keys(ON). A database Open creates is created
// with mode 0600 (SQLite gives its -wal and -shm files the same mode). Open
// pings the database, so a path that cannot be opened fails here.
func Open(path string, opts ...Option) (*sql.DB, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlitex: %q: want a file path", path)
	}
	if !o.readOnly && !o.mustExist {
		// Create the file ourselves so it never exists with a wider mode;
		// an empty file is a valid empty database.
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		switch {
		case err == nil:
			if err := f.Close(); err != nil {
				return nil, err
			}
		case errors.Is(err, os.ErrExist):
		default:
			return nil, fmt.Errorf("sqlitex: create %s: %w", path, err)
		}
	}
	db := sql.OpenDB(connector{dsn: dsn(path, o), drv: sqliteDriver})
	if o.maxConns > 0 {
		db.SetMaxOpenConns(o.maxConns)
		db.SetMaxIdleConns(o.maxConns)
	} else {
		// Keep the connections concurrent callers opened (database/sql
		// keeps 2): each holds its prepared statements, and opening one
		// costs more than the queries it serves.
		db.SetMaxIdleConns(maxIdle)
	}
	if err := db.PingContext(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlitex: open %s: %w", path, err)
	}
	remember(db, path)
	return db, nil
}

const versionTable = `CREATE TABLE IF NOT EXISTS schema_version (
	version INTEGER PRIMARY KEY,
	applied TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)`

// Migrate applies numbered migrations (index i = version i+1), each inside
// its own BEGIN IMMEDIATE transaction together with its row in the
// schema_version table, so a migration is applied entirely or not at all and
// concurrent migrators apply it once. It is idempotent, and it refuses
// (ErrSchemaTooNew) a database whose version is newer than len(migrations).
// A migration may hold several statements.
func Migrate(ctx context.Context, db *sql.DB, migrations []string) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlitex: migrate: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, versionTable); err != nil {
		return fmt.Errorf("sqlitex: migrate: %w", err)
	}
	for i, m := range migrations {
		if err := step(ctx, conn, i+1, m, len(migrations)); err != nil {
			return err
		}
	}
	// Also refuse a newer database when there was nothing left to apply.
	v, err := Version(ctx, conn)
	if err != nil {
		return fmt.Errorf("sqlitex: migrate: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("sqlitex: version %d, this program knows up to %d: %w", v, len(migrations), ErrSchemaTooNew)
	}
	return nil
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Version returns the highest applied migration (0 for none).
func Version(ctx context.Context, q queryer) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v)
	return v, err
}

func step(ctx context.Context, conn *sql.Conn, version int, migration string, known int) (err error) {
	// database/sql's BeginTx would start a DEFERRED transaction unless the
	// DSN says otherwise; take the write lock before reading the version.
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("sqlitex: migration %d: begin: %w", version, err)
	}
	defer func() {
		if err != nil {
			conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	cur, err := Version(ctx, conn)
	if err != nil {
		return fmt.Errorf("sqlitex: migration %d: %w", version, err)
	}
	if cur > known {
		return fmt.Errorf("sqlitex: version %d, this program knows up to %d: %w", cur, known, ErrSchemaTooNew)
	}
	if cur >= version {
		_, err := conn.ExecContext(ctx, "COMMIT")
		return err
	}
	if cur != version-1 {
		return fmt.Errorf("sqlitex: migration %d: database is at version %d", version, cur)
	}
	if _, err := conn.ExecContext(ctx, migration); err != nil {
		return fmt.Errorf("sqlitex: migration %d: %w", version, err)
	}
	if _, err := conn.ExecContext(ctx, `INSERT INTO schema_version(version) VALUES (?)`, version); err != nil {
		return fmt.Errorf("sqlitex: migration %d: %w", version, err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("sqlitex: migration %d: commit: %w", version, err)
	}
	return nil
}

// ExecUnsynced runs one statement in its own transaction at
// synchronous=NORMAL: the commit does not wait for the WAL to reach the
// disk. It survives a crash or kill of the process as soon as it returns,
// and a power cut once the next synchronous=FULL commit on the database
// syncs the WAL, whose frames reach the disk in order. For bookkeeping
// whose loss in a power cut is harmless — work that then runs again
// (an outbox job marked done), never for an acknowledged write.
func ExecUnsynced(ctx context.Context, db *sql.DB, query string, args ...any) (res sql.Result, err error) {
	err = unsynced(ctx, db, func(conn *sql.Conn) error {
		res, err = conn.ExecContext(ctx, query, args...)
		return err
	})
	return res, err
}

// TxUnsynced runs fn in a transaction of its own committed at
// synchronous=NORMAL, with ExecUnsynced's durability: for rows whose loss in
// a power cut the next synchronous commit would have covered (the nonce
// store's flushes).
func TxUnsynced(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	return unsynced(ctx, db, func(conn *sql.Conn) error {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

// unsynced runs fn on a connection of db switched to synchronous=NORMAL,
// holding db's write lock (behind the group commits, not in SQLite's busy
// handler), and gives the connection back at FULL.
func unsynced(ctx context.Context, db *sql.DB, fn func(*sql.Conn) error) error {
	l := WriteLock(db)
	l.Lock()
	defer l.Unlock()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		return err
	}
	defer func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous = FULL`); err != nil {
			// A connection left at NORMAL must never carry another
			// write: take it out of the pool.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return fn(conn)
}
