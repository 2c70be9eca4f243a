package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"orderseal/internal/dsn"
	"orderseal/internal/pgdb"
	"orderseal/internal/sqldb"
	"orderseal/vault/store"
	"orderseal/vault/store/sqlstore"
)

// DataComponent names a data store's migrations in schema_version.
const DataComponent = "vault-data"

var dataMigrations = []string{`
CREATE TABLE records (
	token   TEXT   COLLATE "C" PRIMARY KEY,
	dedupe  BYTEA  NOT NULL,
	nonce   BYTEA  NOT NULL,
	ct      BYTEA  NOT NULL,
	created BIGINT NOT NULL -- unix nanoseconds
);
CREATE INDEX records_dedupe ON records (dedupe);
CREATE INDEX records_created ON records (created);
CREATE TABLE key_check (id INTEGER PRIMARY KEY CHECK (id = 1), v BYTEA NOT NULL);
CREATE TABLE checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL, v BYTEA NOT NULL);
`}

// Data is a data store (store.Data, vault/store/sqlstore) in its own
// PostgreSQL database under its own role. The pool reconnects by itself
// once the server is back; every failure to reach it wraps
// store.ErrUnavailable. The schema is made by the first successful open
// only: afterwards a database whose tables went missing is an outage,
// never silently recreated.
type Data = sqlstore.Data

var _ store.Data = (*Data)(nil)

// dataConn reaches a data store's database (sqlstore.DataConn).
type dataConn struct {
	name  string // "primary" or "backup", for messages
	d     dsn.DSN
	check []byte
	pool  *pgxpool.Pool
	db    sqldb.DB

	mu     sync.Mutex
	ready  bool // migrated and its key checked
	closed bool
}

var errClosed = errors.New("store is closed")

// OpenData opens the data store a postgres:// DSN names for the data key
// whose store.KeyCheck is check; name ("primary", "backup") labels its
// messages. A server that cannot be reached now is an outage, not an
// error: it is logged and the Data starts unavailable, retrying at each
// use. A store sealed under another key (store.ErrWrongKey), a newer
// schema, or a DSN that does not parse is an error.
func OpenData(ctx context.Context, url, name string, check []byte, log *slog.Logger) (*Data, error) {
	d, err := dsn.Parse(url)
	if err != nil || d.Scheme != dsn.Postgres {
		return nil, fmt.Errorf("vault %s data store: %w: want postgres://…", name, dsn.ErrDSN)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("vault %s data store: %w: %s cannot be parsed", name, dsn.ErrDSN, d)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg) // connects lazily
	if err != nil {
		return nil, fmt.Errorf("vault %s data store: %w", name, pgdb.Explain(err, d))
	}
	c := &dataConn{name: name, d: d, check: check, pool: pool, db: pgdb.Wrap(pool)}
	switch _, err := c.DB(ctx); {
	case err == nil:
	case errors.Is(err, store.ErrWrongKey) || errors.Is(err, pgdb.ErrSchemaTooNew):
		pool.Close()
		return nil, fmt.Errorf("vault %s data store: %w", name, err)
	default:
		if log != nil {
			log.Warn("vault data store unavailable at start; writes go to the pending table", "store", name, "err", err)
		}
	}
	return sqlstore.NewData(name, d.String(), c), nil
}

// DB migrates the store and checks its key once, then returns the pool.
// Errors wrap store.ErrUnavailable, but for a wrong key and a newer schema.
func (c *dataConn) DB(ctx context.Context) (sqldb.DB, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("%s data store %w: %w", c.name, store.ErrUnavailable, errClosed)
	}
	if c.ready {
		return c.db, nil
	}
	if err := pgdb.Migrate(ctx, c.pool, DataComponent, dataMigrations); err != nil {
		if errors.Is(err, pgdb.ErrSchemaTooNew) {
			return nil, err
		}
		return nil, fmt.Errorf("%s data store %w: %w", c.name, store.ErrUnavailable, pgdb.Explain(err, c.d))
	}
	switch err := sqlstore.CheckKey(ctx, c.db, c.check); {
	case errors.Is(err, store.ErrWrongKey):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("%s data store %w: %w", c.name, store.ErrUnavailable, err)
	}
	c.ready = true
	return c.db, nil
}

// Drop does nothing: the pool reconnects by itself.
func (c *dataConn) Drop(sqldb.DB) {}

// PutCheckpoint keeps v unless a checkpoint of a higher seq is there: one
// statement, durable when it returns.
func (c *dataConn) PutCheckpoint(ctx context.Context, db sqldb.DB, seq int64, v []byte) error {
	_, err := db.Exec(ctx, `INSERT INTO checkpoint (id, seq, v) VALUES (1, $1, $2)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, v = excluded.v WHERE excluded.seq >= checkpoint.seq`, seq, v)
	return err
}

// Close closes the pool; later calls fail with store.ErrUnavailable.
func (c *dataConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		c.pool.Close()
	}
	return nil
}

// ReadCheckpoint connects to an existing data store read-only and returns
// its audit checkpoint (for 'vault audit verify', beside a running vault).
func ReadCheckpoint(ctx context.Context, url string) (store.Checkpoint, bool, error) {
	d, err := dsn.Parse(url)
	if err != nil {
		return store.Checkpoint{}, false, err
	}
	pool, err := pgdb.OpenReadOnly(ctx, url, 1)
	if err != nil {
		return store.Checkpoint{}, false, err
	}
	defer pool.Close()
	cp, ok, err := sqlstore.ReadCheckpoint(ctx, pgdb.Wrap(pool))
	if err != nil {
		return store.Checkpoint{}, false, pgdb.Explain(err, d)
	}
	return cp, ok, nil
}
