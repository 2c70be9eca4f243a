// Package sqldb is the one SQL surface every store is written against, so a
// store's queries and transactions exist once for all its backends
// (STYLE.md "Seams"). A backend package opens its database (sqlitex for
// SQLite, pgdb for PostgreSQL), applies its own migrations and wraps the
// handle here; the store's shared code then sees only DB, Tx and Querier.
//
// Queries are written once in PostgreSQL's numbered form ($1, $2, …, a
// number may repeat); on SQLite they run as ?1, ?2, …, which SQLite binds
// by the same numbers. What the two dialects spell differently is asked of
// the handle: ForUpdate, Lock, and IsUnique for a unique violation.
package sqldb

import (
	"context"
	"database/sql"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Dialect names a SQL engine.
type Dialect uint8

// The dialects.
const (
	SQLite Dialect = iota + 1
	Postgres
)

func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return "dialect(" + strconv.Itoa(int(d)) + ")"
}

// ErrNoRows is what Row.Scan returns when the query selected no row, in
// every dialect (pgx's own error matches it under errors.Is).
var ErrNoRows = sql.ErrNoRows

// Row is one selected row.
type Row interface{ Scan(dest ...any) error }

// Rows is a result set; Close may be called more than once.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Querier runs statements: the database itself or a transaction.
type Querier interface {
	// Exec runs a statement and returns how many rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
	Dialect() Dialect
	// IsUnique reports whether err is a unique or primary-key violation.
	IsUnique(err error) bool
}

// Tx is one transaction.
type Tx interface {
	Querier
	// Lock holds a lock named key until the transaction ends, so of two
	// transactions (on any node) taking it the second waits for the first.
	// SQLite's writers are serialised already; there it does nothing.
	Lock(ctx context.Context, key string) error
}

// DB is a database of one dialect.
type DB interface {
	Querier
	// Tx runs fn in one transaction, committed when fn returns nil and
	// rolled back otherwise. On SQLite it is a write transaction
	// (BEGIN IMMEDIATE, or behind the backend's write lock); on PostgreSQL
	// read committed, so what must not change under it is locked
	// (ForUpdate, Lock).
	Tx(ctx context.Context, fn func(Tx) error) error
	Ping(ctx context.Context) error
	Close() error
}

// ForUpdate is the clause that locks the rows a SELECT reads until the
// transaction ends: " FOR UPDATE" on PostgreSQL, nothing on SQLite, whose
// write transactions exclude each other.
func ForUpdate(q Querier) string {
	if q.Dialect() == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// Collect runs a query and scans every row it selects with scan.
func Collect[T any](ctx context.Context, q Querier, scan func(Row) (T, error), query string, args ...any) ([]T, error) {
	var out []T
	err := Each(ctx, q, func(r Row) error {
		v, err := scan(r)
		out = append(out, v)
		return err
	}, query, args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Each runs a query and calls fn for every row it selects, stopping at
// fn's first error.
func Each(ctx context.Context, q Querier, fn func(Row) error, query string, args ...any) error {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Placeholders returns "$from, $from+1, …" for n values, for an IN list.
func Placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(from + i))
	}
	return b.String()
}

// MaxListSQLite bounds the values of one In list on SQLite, well under its
// limit on bound parameters.
const MaxListSQLite = 500

// ListChunk is how many values one In list takes on q: MaxListSQLite on
// SQLite; any number on PostgreSQL, where the list is one array.
func ListChunk(q Querier) int {
	if q.Dialect() == Postgres {
		return math.MaxInt
	}
	return MaxListSQLite
}

// In returns the condition that col is one of vs, bound from placeholder
// $from, and its arguments: on PostgreSQL "col = ANY ($from)" with vs as
// one array, so the statement's text (and its prepared statement) is the
// same whatever len(vs); on SQLite an IN list of placeholders.
func In[T any](q Querier, col string, from int, vs []T) (string, []any) {
	if q.Dialect() == Postgres {
		return col + " = ANY ($" + strconv.Itoa(from) + ")", []any{vs}
	}
	return col + " IN (" + Placeholders(from, len(vs)) + ")", Args(vs)
}

// Args returns vs as query arguments, for an IN list.
func Args[T any](vs []T) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

// NotNull keeps a nil slice out of a NOT NULL column: both drivers bind a
// nil []byte as NULL.
func NotNull(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// rebinds caches each query's SQLite spelling: the daemons' queries are
// a few hundred fixed strings.
var rebinds sync.Map

// SQLiteQuery turns $N placeholders into ?N, outside quoted text: the
// spelling SQLite binds by number.
func SQLiteQuery(q string) string {
	if v, ok := rebinds.Load(q); ok {
		return v.(string)
	}
	if !strings.Contains(q, "$") {
		return q
	}
	b := []byte(q)
	var quote byte
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '$' && i+1 < len(b) && b[i+1] >= '0' && b[i+1] <= '9':
			b[i] = '?'
		}
	}
	out := string(b)
	rebinds.Store(q, out)
	return out
}

// Times are stored as integers; the zero time is stored as 0 (never, or
// not yet), so a NOT NULL column needs no NULL for it.

// UnixNano is t in unix nanoseconds, 0 for the zero time.
func UnixNano(t time.Time) int64 { return stored(t, t.UnixNano) }

// UnixMilli is t in unix milliseconds, 0 for the zero time.
func UnixMilli(t time.Time) int64 { return stored(t, t.UnixMilli) }

// FromUnixNano is UnixNano's inverse, in UTC.
func FromUnixNano(n int64) time.Time { return loaded(n, time.Unix(0, n)) }

// FromUnixMilli is UnixMilli's inverse, in UTC.
func FromUnixMilli(n int64) time.Time { return loaded(n, time.UnixMilli(n)) }

func stored(t time.Time, unix func() int64) int64 {
	if t.IsZero() {
		return 0
	}
	return unix()
}

func loaded(n int64, t time.Time) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return t.UTC()
}
