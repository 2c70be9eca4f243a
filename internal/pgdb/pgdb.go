// Package pgdb opens PostgreSQL databases (github.com/jackc/pgx/v5, its pool)
// the way every orderseal daemon needs them and applies versioned schema
// migrations at start under an advisory lock, so several nodes starting at
// once apply each migration once (DESIGN.md §9, STYLE.md "PostgreSQL with
// pgx"). Its errors are one line with a hint, and never carry the DSN's
// password.
package pgdb

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"orderseal/internal/cli"
	"orderseal/internal/dsn"
)

// ErrSchemaTooNew is returned by Migrate for a database written by newer code.
var ErrSchemaTooNew = errors.New("database schema is newer than this program knows")

// Errors Open and Migrate classify, for errors.Is.
var (
	ErrDSN         = dsn.ErrDSN
	ErrUnreachable = errors.New("PostgreSQL server unreachable")
	ErrAuth        = errors.New("PostgreSQL refused the login")
	ErrNoDatabase  = errors.New("PostgreSQL database does not exist")
	ErrRights      = errors.New("PostgreSQL role lacks the rights")
)

// Open connects a pool to the database a postgres:// DSN names and pings
// it, so a wrong DSN, an unreachable server or a refused login fails here
// with a hint. maxConns <= 0 keeps pgxpool's default.
func Open(ctx context.Context, url string, maxConns int) (*pgxpool.Pool, error) {
	return open(ctx, url, maxConns, false)
}

// OpenReadOnly opens the pool as Open does, every session of it read-only
// (default_transaction_read_only): for the CLIs and tools that read a
// database a daemon serves and must never write it.
func OpenReadOnly(ctx context.Context, url string, maxConns int) (*pgxpool.Pool, error) {
	return open(ctx, url, maxConns, true)
}

func open(ctx context.Context, url string, maxConns int, readOnly bool) (*pgxpool.Pool, error) {
	d, err := dsn.Parse(url)
	if err != nil {
		return nil, cli.WithHint(err, "use postgres://USER:PASSWORD@HOST:PORT/DATABASE")
	}
	if d.Scheme != dsn.Postgres {
		return nil, cli.WithHint(fmt.Errorf("%w: %s is not a PostgreSQL DSN", ErrDSN, d), "use postgres://USER:PASSWORD@HOST:PORT/DATABASE")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the DSN, password and all: say only where it is wrong.
		return nil, cli.WithHint(fmt.Errorf("%w: %s: cannot be parsed", ErrDSN, d), "use postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=disable|require")
	}
	if maxConns > 0 {
		cfg.MaxConns = int32(maxConns)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	if readOnly {
		cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, Explain(err, d)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, Explain(err, d)
	}
	return pool, nil
}

// OpenMigrated opens the pool as Open does and applies component's
// migrations; a migration refused for want of rights says so with a hint.
func OpenMigrated(ctx context.Context, url string, maxConns int, component string, migrations []string) (*pgxpool.Pool, error) {
	pool, err := Open(ctx, url, maxConns)
	if err != nil {
		return nil, err
	}
	if err := Migrate(ctx, pool, component, migrations); err != nil {
		pool.Close()
		d, _ := dsn.Parse(url)
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return nil, Explain(err, d)
		}
		return nil, err
	}
	return pool, nil
}

// Explain turns a connection or statement error into one line naming the
// server, role and database (never the password), with a hint.
func Explain(err error, d dsn.DSN) error {
	if err == nil {
		return nil
	}
	where := target(d)
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "28P01" || pe.Code == "28000":
			return cli.WithHint(fmt.Errorf("%w: %s: %s", ErrAuth, where, pe.Message), "check the user and password in the DSN, and pg_hba.conf on the server")
		case pe.Code == "3D000":
			return cli.WithHint(fmt.Errorf("%w: %s: %s", ErrNoDatabase, where, pe.Message), "create it first (createdb -O ROLE DATABASE)")
		case pe.Code == "42501":
			return cli.WithHint(fmt.Errorf("%w: %s: %s", ErrRights, where, pe.Message), "grant the role CONNECT on the database and CREATE on its schema, or run with the database's owner")
		case strings.HasPrefix(pe.Code, "08") || pe.Code == "57P03" || pe.Code == "53300":
			return cli.WithHint(fmt.Errorf("%w: %s: %s", ErrUnreachable, where, pe.Message), "the server is starting, shutting down or full; retry shortly")
		}
		return fmt.Errorf("postgres %s: %s (SQLSTATE %s)", where, pe.Message, pe.Code)
	}
	var ne net.Error
	var ce *pgconn.ConnectError
	if errors.As(err, &ne) || errors.As(err, &ce) || errors.Is(err, context.DeadlineExceeded) {
		why := cause(err)
		if ne != nil {
			why = ne.Error()
		}
		return cli.WithHint(fmt.Errorf("%w: %s: %s", ErrUnreachable, where, why), "is PostgreSQL running and listening on that host and port (pg_isready -h HOST -p PORT)?")
	}
	return fmt.Errorf("postgres %s: %w", where, err)
}

// target names server, role and database, never the password.
func target(d dsn.DSN) string {
	cfg, err := pgconn.ParseConfig(d.URL)
	if err != nil {
		return d.String()
	}
	return fmt.Sprintf("%s:%d role %s database %s", cfg.Host, cfg.Port, cfg.User, cfg.Database)
}

// cause is the innermost error's message: pgx's outer ones repeat the
// server and role.
func cause(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

const versionTable = `CREATE TABLE IF NOT EXISTS schema_version (
	component TEXT        NOT NULL,
	version   INTEGER     NOT NULL,
	applied   TIMESTAMPTZ NOT NULL DEFAULT now(),
	PRIMARY KEY (component, version)
)`

// lockKey is the advisory lock of component's migrations.
func lockKey(component string) int64 {
	h := fnv.New64a()
	h.Write([]byte("orderseal migrate " + component))
	return int64(h.Sum64())
}

// Migrate applies component's numbered migrations (index i = version i+1),
// each in its own transaction with its row in schema_version, holding a
// session advisory lock while it does, so several nodes starting at once
// apply each migration once and a node never sees half a schema. It is
// idempotent, and it refuses (ErrSchemaTooNew) a database whose version is
// newer than len(migrations). A migration may hold several statements.
func Migrate(ctx context.Context, pool *pgxpool.Pool, component string, migrations []string) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("pgdb: migrate %s: %w", component, err)
	}
	defer conn.Release()
	key := lockKey(component)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		return fmt.Errorf("pgdb: migrate %s: lock: %w", component, err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key)
	if _, err := conn.Exec(ctx, versionTable); err != nil {
		return fmt.Errorf("pgdb: migrate %s: %w", component, err)
	}
	cur, err := Version(ctx, conn.Conn(), component)
	if err != nil {
		return fmt.Errorf("pgdb: migrate %s: %w", component, err)
	}
	if cur > len(migrations) {
		return fmt.Errorf("pgdb: %s at version %d, this program knows up to %d: %w", component, cur, len(migrations), ErrSchemaTooNew)
	}
	for v := cur + 1; v <= len(migrations); v++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_version (component, version) VALUES ($1, $2)`, component, v)
			return err
		})
		if err != nil {
			return fmt.Errorf("pgdb: %s migration %d: %w", component, v, err)
		}
	}
	return nil
}

// SchemaVersion returns component's highest applied migration, 0 for a
// database without a schema_version table (never migrated).
func SchemaVersion(ctx context.Context, pool *pgxpool.Pool, component string) (int, error) {
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('schema_version') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return 0, err
	}
	var v int
	err := pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version WHERE component = $1`, component).Scan(&v)
	return v, err
}

// Version returns component's highest applied migration (0 for none).
func Version(ctx context.Context, conn *pgx.Conn, component string) (int, error) {
	var v int
	err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version WHERE component = $1`, component).Scan(&v)
	return v, err
}
