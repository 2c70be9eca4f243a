// Package sqlstore is the vault store's SQL written once (DESIGN.md §7, §8,
// §9; issue 14): the index (entries, grants, the hash-chained audit log)
// and the data stores' records and checkpoint, over internal/sqldb, for
// every backend. A backend package (vault/store/sqlite,
// vault/store/postgres) opens its databases, applies its own migrations,
// wraps the handles in sqldb and hands them here; it keeps only what is
// its dialect's own: how a data store is reached and reopened, the
// replay memory of signed requests, and the checkpoint's durability.
//
// Where the dialects really differ this package asks the handle: a list
// of values is one array on PostgreSQL (one prepared statement whatever
// its length) and a list of placeholders on SQLite, which has no arrays;
// locks are sqldb's (Tx.Lock), no-ops on SQLite, whose write
// transactions exclude each other already.
package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"orderseal/internal/sqldb"
	"orderseal/vault/store"
)

// ErrStoreUnreachable is a configured data store that could not be created,
// opened or reached at start (issue 22 item 5).
var ErrStoreUnreachable = errors.New("cannot be created or opened")

// column is one column of an insert, with its PostgreSQL type.
type column struct{ name, pgType string }

// insert is one multi-row INSERT statement: every row in one statement, so
// one commit outside a transaction.
type insert struct {
	head string // INSERT INTO table (cols)
	cols []column
	tail string // after the rows: an ON CONFLICT clause, or ""
	pg   string // the whole statement on PostgreSQL
}

func newInsert(table string, cols []column, tail string) *insert {
	names := make([]string, len(cols))
	arrays := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
		arrays[i] = "$" + strconv.Itoa(i+1) + "::" + c.pgType + "[]"
	}
	in := &insert{head: `INSERT INTO ` + table + ` (` + strings.Join(names, ", ") + `)`, cols: cols, tail: tail}
	in.pg = in.head + ` SELECT * FROM unnest(` + strings.Join(arrays, ", ") + `)` + tail
	return in
}

// exec inserts rows (one value per column each, int64 for integers) and
// returns how many it inserted. On PostgreSQL each column is bound as one
// array (unnest): one statement whatever the number of rows, no limit on
// parameters, one round trip. On SQLite it is a VALUES list.
func (in *insert) exec(ctx context.Context, q sqldb.Querier, rows [][]any) (int64, error) {
	if q.Dialect() == sqldb.Postgres {
		arrays := make([]any, len(in.cols))
		for j, c := range in.cols {
			arrays[j] = pgArray(c.pgType, rows, j)
		}
		return q.Exec(ctx, in.pg, arrays...)
	}
	n := len(in.cols)
	args := make([]any, 0, n*len(rows))
	var b strings.Builder
	b.WriteString(in.head)
	b.WriteString(" VALUES ")
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		b.WriteString(sqldb.Placeholders(i*n+1, n))
		b.WriteByte(')')
		args = append(args, r...)
	}
	b.WriteString(in.tail)
	return q.Exec(ctx, b.String(), args...)
}

// pgArray collects column j of rows as the Go slice pgx binds as an array of typ.
func pgArray(typ string, rows [][]any, j int) any {
	switch typ {
	case "text":
		return collect[string](rows, j)
	case "bigint":
		return collect[int64](rows, j)
	case "bytea":
		return collect[[]byte](rows, j)
	case "boolean":
		return collect[bool](rows, j)
	}
	panic("sqlstore: no array of " + typ)
}

func collect[T any](rows [][]any, j int) []T {
	out := make([]T, len(rows))
	for i, r := range rows {
		out[i] = r[j].(T)
	}
	return out
}

// ReadCheckpoint returns the audit checkpoint a data store holds; ok is
// false when it holds none. SQLite keeps it in the meta table, PostgreSQL
// in a table of its own.
func ReadCheckpoint(ctx context.Context, q sqldb.Querier) (cp store.Checkpoint, ok bool, err error) {
	query := `SELECT v FROM checkpoint WHERE id = 1`
	if q.Dialect() == sqldb.SQLite {
		query = `SELECT v FROM meta WHERE k = 'audit_checkpoint'`
	}
	var v []byte
	err = q.QueryRow(ctx, query).Scan(&v)
	if errors.Is(err, sqldb.ErrNoRows) {
		return store.Checkpoint{}, false, nil
	}
	if err != nil {
		return store.Checkpoint{}, false, err
	}
	if err := json.Unmarshal(v, &cp); err != nil {
		return store.Checkpoint{}, false, fmt.Errorf("audit checkpoint: %w", err)
	}
	return cp, true, nil
}
