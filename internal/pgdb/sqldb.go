package pgdb

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"orderseal/internal/sqldb"
)

// Wrap gives pool to a store's shared code (sqldb). Its transactions are
// read committed; Tx.Lock takes a transaction advisory lock.
func Wrap(pool *pgxpool.Pool) sqldb.DB { return wrapped{pool} }

type wrapped struct{ pool *pgxpool.Pool }

func (w wrapped) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := w.pool.Exec(ctx, q, args...)
	return tag.RowsAffected(), err
}

func (w wrapped) Query(ctx context.Context, q string, args ...any) (sqldb.Rows, error) {
	return w.pool.Query(ctx, q, args...)
}

func (w wrapped) QueryRow(ctx context.Context, q string, args ...any) sqldb.Row {
	return w.pool.QueryRow(ctx, q, args...)
}

func (wrapped) Dialect() sqldb.Dialect { return sqldb.Postgres }

func (wrapped) IsUnique(err error) bool { return IsUnique(err) }

func (w wrapped) Ping(ctx context.Context) error { return w.pool.Ping(ctx) }

func (w wrapped) Close() error { w.pool.Close(); return nil }

func (w wrapped) Tx(ctx context.Context, fn func(sqldb.Tx) error) error {
	return pgx.BeginTxFunc(ctx, w.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		return fn(wrappedTx{tx})
	})
}

type wrappedTx struct{ tx pgx.Tx }

func (t wrappedTx) Exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := t.tx.Exec(ctx, q, args...)
	return tag.RowsAffected(), err
}

func (t wrappedTx) Query(ctx context.Context, q string, args ...any) (sqldb.Rows, error) {
	return t.tx.Query(ctx, q, args...)
}

func (t wrappedTx) QueryRow(ctx context.Context, q string, args ...any) sqldb.Row {
	return t.tx.QueryRow(ctx, q, args...)
}

func (wrappedTx) Dialect() sqldb.Dialect { return sqldb.Postgres }

func (wrappedTx) IsUnique(err error) bool { return IsUnique(err) }

// Lock takes a transaction advisory lock on key's 64-bit hash.
func (t wrappedTx) Lock(ctx context.Context, key string) error {
	_, err := t.tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, key)
	return err
}

// IsUnique reports whether err is a unique violation (SQLSTATE 23505).
func IsUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
