package sqlitex

import (
	"context"
	"database/sql/driver"
	"errors"

	"modernc.org/sqlite"
)

// stmtCacheSize bounds the statements one connection keeps prepared. The
// daemons' queries are fixed strings, a few dozen per store; the bound is
// for queries built at run time (IN lists of varying length).
const stmtCacheSize = 128

// maxIdle is how many idle connections a pool without a bound keeps.
const maxIdle = 16

// sqliteDriver opens every connection of Open.
var sqliteDriver = &sqlite.Driver{}

// connector opens modernc.org/sqlite connections that keep their
// statements prepared: the driver parses and plans a query again on every
// call otherwise, which costs more than running it (a primary-key select
// spends most of its time in the SQL parser).
type connector struct {
	dsn string
	drv *sqlite.Driver
}

func (c connector) Connect(context.Context) (driver.Conn, error) {
	dc, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &cachingConn{sqliteConn: dc.(sqliteConn), stmts: make(map[string]*cachedStmt)}, nil
}

func (c connector) Driver() driver.Driver { return c.drv }

// sqliteConn is what database/sql uses of a modernc.org/sqlite connection.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

type sqliteStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// cachedStmt is a prepared statement kept by its connection; busy while a
// result set of it is open, since running it again would reset that one.
type cachedStmt struct {
	stmt sqliteStmt
	busy bool
}

// cachingConn runs queries through statements it keeps prepared, one per
// query text. database/sql uses a connection from one goroutine at a time,
// so the cache needs no lock. Exec without arguments goes straight to the
// driver: that is how scripts (migrations) and pragmas run, once each.
type cachingConn struct {
	sqliteConn
	stmts map[string]*cachedStmt
}

// stmt returns query's cached statement, preparing it the first time, or
// nil when it is in use by an open result set (the caller then runs the
// query uncached).
func (c *cachingConn) stmt(ctx context.Context, query string) (*cachedStmt, error) {
	if s, ok := c.stmts[query]; ok {
		if s.busy {
			return nil, nil
		}
		return s, nil
	}
	ds, err := c.sqliteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if len(c.stmts) >= stmtCacheSize {
		c.evict()
	}
	s := &cachedStmt{stmt: ds.(sqliteStmt)}
	c.stmts[query] = s
	return s, nil
}

// evict closes and forgets one statement not in use.
func (c *cachingConn) evict() {
	for q, s := range c.stmts {
		if !s.busy {
			s.stmt.Close()
			delete(c.stmts, q)
			return
		}
	}
}

func (c *cachingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	if len(args) == 0 {
		return c.sqliteConn.ExecContext(ctx, query, args)
	}
	query, args = positionalFor(query).bind(query, args)
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.sqliteConn.ExecContext(ctx, query, args)
	}
	return s.stmt.ExecContext(ctx, args)
}

func (c *cachingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	query, args = positionalFor(query).bind(query, args)
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.sqliteConn.QueryContext(ctx, query, args)
	}
	r, err := s.stmt.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	s.busy = true
	return &cachedRows{sqliteRows: r.(sqliteRows), stmt: s}, nil
}

// RegisterAuthorizer installs fn as the connection's SQLite authorizer
// (sqlite.AuthorizerRegisterer), which SQLite calls while it compiles a
// statement, and again when it recompiles one: reached through
// (*sql.Conn).Raw, it lets a test see how often a cached statement is
// compiled.
func (c *cachingConn) RegisterAuthorizer(fn sqlite.AuthorizerFn) error {
	r, ok := c.sqliteConn.(sqlite.AuthorizerRegisterer)
	if !ok {
		return errors.New("sqlitex: the driver's connection has no authorizer")
	}
	return r.RegisterAuthorizer(fn)
}

var _ sqlite.AuthorizerRegisterer = (*cachingConn)(nil)

// Close finalizes the cached statements, then closes the connection.
func (c *cachingConn) Close() error {
	for q, s := range c.stmts {
		s.stmt.Close()
		delete(c.stmts, q)
	}
	return c.sqliteConn.Close()
}

// sqliteRows is what database/sql uses of a modernc.org/sqlite result set.
type sqliteRows interface {
	driver.Rows
	driver.RowsColumnTypeDatabaseTypeName
	driver.RowsColumnTypeLength
	driver.RowsColumnTypeNullable
	driver.RowsColumnTypePrecisionScale
	driver.RowsColumnTypeScanType
}

// cachedRows is a result set of a cached statement; closing it resets the
// statement (the driver does) and frees it for the next query.
type cachedRows struct {
	sqliteRows
	stmt *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.sqliteRows.Close()
	r.stmt.busy = false
	return err
}
