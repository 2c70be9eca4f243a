package sqlitex

import (
	"context"
	"database/sql"
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"orderseal/internal/sqldb"
)

// Wrap gives db to a store's shared code (sqldb). Its writes — Tx, and
// Exec outside one — are group-committed by db's one writer in this
// process (see group), which every Wrap of db shares; the database's other
// writers take that writer's lock (WriteLock). A database opened with
// Immediate() makes every transaction BEGIN IMMEDIATE. Reads outside a Tx
// run on the pool's other connections, beside the writes (WAL).
func Wrap(db *sql.DB) sqldb.DB { return &wrapped{db: db, g: groupOf(db)} }

type wrapped struct {
	db *sql.DB
	g  *group
}

func (w *wrapped) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	var n int64
	err := w.g.tx(ctx, w.db, func(t sqldb.Tx) error {
		var err error
		n, err = t.Exec(ctx, q, args...)
		return err
	})
	return n, err
}

func (w *wrapped) Query(ctx context.Context, q string, args ...any) (sqldb.Rows, error) {
	return query(w.db.QueryContext(ctx, sqldb.SQLiteQuery(q), args...))
}

func (w *wrapped) QueryRow(ctx context.Context, q string, args ...any) sqldb.Row {
	return w.db.QueryRowContext(ctx, sqldb.SQLiteQuery(q), args...)
}

func (w *wrapped) Dialect() sqldb.Dialect { return sqldb.SQLite }

func (w *wrapped) IsUnique(err error) bool { return IsUnique(err) }

func (w *wrapped) Ping(ctx context.Context) error { return Ping(ctx, w.db) }

func (w *wrapped) Close() error { return Close(w.db) }

func (w *wrapped) Tx(ctx context.Context, fn func(sqldb.Tx) error) error {
	return w.g.tx(ctx, w.db, fn)
}

type wrappedTx struct{ tx *sql.Tx }

func (t wrappedTx) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	return exec(t.tx.ExecContext(ctx, sqldb.SQLiteQuery(q), args...))
}

func (t wrappedTx) Query(ctx context.Context, q string, args ...any) (sqldb.Rows, error) {
	return query(t.tx.QueryContext(ctx, sqldb.SQLiteQuery(q), args...))
}

func (t wrappedTx) QueryRow(ctx context.Context, q string, args ...any) sqldb.Row {
	return t.tx.QueryRowContext(ctx, sqldb.SQLiteQuery(q), args...)
}

func (t wrappedTx) Dialect() sqldb.Dialect { return sqldb.SQLite }

func (t wrappedTx) IsUnique(err error) bool { return IsUnique(err) }

// Lock does nothing: SQLite's write transactions exclude each other.
func (t wrappedTx) Lock(context.Context, string) error { return nil }

func exec(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func query(rows *sql.Rows, err error) (sqldb.Rows, error) {
	if err != nil {
		return nil, err
	}
	return sqlRows{rows}, nil
}

// sqlRows drops Close's error: database/sql reports it from Err too.
type sqlRows struct{ *sql.Rows }

func (r sqlRows) Close() { r.Rows.Close() }

// IsUnique reports whether err is a UNIQUE or PRIMARY KEY constraint failure.
func IsUnique(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code()
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}
