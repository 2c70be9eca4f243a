package postgres

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"orderseal/internal/dsn"
	"orderseal/internal/pgdb"
	"orderseal/vault/store"
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

// Data is a data store (store.Data) in its own PostgreSQL database under
// its own role. The pool reconnects by itself once the server is back;
// every failure to reach it wraps store.ErrUnavailable. The schema is made
// by the first successful open only: afterwards a database whose tables
// went missing is an outage, never silently recreated.
type Data struct {
	name  string // "primary" or "backup", for messages
	d     dsn.DSN
	check []byte
	pool  *pgxpool.Pool

	mu     sync.Mutex
	ready  bool // migrated and its key checked
	closed bool
}

var _ store.Data = (*Data)(nil)

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
	s := &Data{name: name, d: d, check: check, pool: pool}
	switch err := s.ensure(ctx); {
	case err == nil:
	case errors.Is(err, store.ErrWrongKey) || errors.Is(err, pgdb.ErrSchemaTooNew):
		pool.Close()
		return nil, fmt.Errorf("vault %s data store: %w", name, err)
	default:
		if log != nil {
			log.Warn("vault data store unavailable at start; writes go to the pending table", "store", name, "err", err)
		}
	}
	return s, nil
}

// ensure migrates the store and checks its key once. Errors wrap
// store.ErrUnavailable, but for a wrong key and a newer schema.
func (s *Data) ensure(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%s data store %w: %w", s.name, store.ErrUnavailable, errClosed)
	}
	if s.ready {
		return nil
	}
	if err := pgdb.Migrate(ctx, s.pool, DataComponent, dataMigrations); err != nil {
		if errors.Is(err, pgdb.ErrSchemaTooNew) {
			return err
		}
		return fmt.Errorf("%s data store %w: %w", s.name, store.ErrUnavailable, pgdb.Explain(err, s.d))
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO key_check (id, v) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, s.check); err != nil {
		return fmt.Errorf("%s data store %w: %w", s.name, store.ErrUnavailable, err)
	}
	var got []byte
	if err := s.pool.QueryRow(ctx, `SELECT v FROM key_check WHERE id = 1`).Scan(&got); err != nil {
		return fmt.Errorf("%s data store %w: %w", s.name, store.ErrUnavailable, err)
	}
	if !bytes.Equal(got, s.check) {
		return store.ErrWrongKey
	}
	s.ready = true
	return nil
}

// fail wraps err from a statement: the context's own end as it is, a
// conflicting record as ErrCorrupt, anything else as ErrUnavailable.
func (s *Data) fail(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrCorrupt) {
		return fmt.Errorf("%s data store: %w", s.name, err)
	}
	return fmt.Errorf("%s data store %w: %w", s.name, store.ErrUnavailable, err)
}

// Put writes rs in one transaction.
func (s *Data) Put(ctx context.Context, rs ...store.Record) error {
	if len(rs) == 0 {
		return nil
	}
	if err := s.ensure(ctx); err != nil {
		return err
	}
	if err := putRecords(ctx, s.pool, "records", rs...); err != nil {
		return s.fail(err)
	}
	return nil
}

// Get returns token's record.
func (s *Data) Get(ctx context.Context, token string) (store.Record, bool, error) {
	if err := s.ensure(ctx); err != nil {
		return store.Record{}, false, err
	}
	r, ok, err := getRecord(ctx, s.pool, "records", token)
	if err != nil {
		return store.Record{}, false, s.fail(err)
	}
	return r, ok, nil
}

// TokensByHash returns the tokens of the records with each of hashes, oldest first.
func (s *Data) TokensByHash(ctx context.Context, hashes [][]byte) (map[string][]string, error) {
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	toks, err := tokensByHash(ctx, s.pool, "records", hashes)
	if err != nil {
		return nil, s.fail(err)
	}
	return toks, nil
}

// Ping checks the store can be reached and queried now.
func (s *Data) Ping(ctx context.Context) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `SELECT 1 FROM records LIMIT 1`); err != nil {
		return s.fail(err)
	}
	return nil
}

// Delete removes the records of tokens in one statement.
func (s *Data) Delete(ctx context.Context, tokens ...string) error {
	if len(tokens) == 0 {
		return nil
	}
	if err := s.ensure(ctx); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM records WHERE token = ANY ($1)`, tokens); err != nil {
		return s.fail(err)
	}
	return nil
}

// CreatedIn returns the tokens of records with after < created <= upTo, oldest first.
func (s *Data) CreatedIn(ctx context.Context, after, upTo int64) ([]string, error) {
	if err := s.ensure(ctx); err != nil {
		return nil, err
	}
	toks, err := createdIn(ctx, s.pool, "records", after, upTo)
	if err != nil {
		return nil, s.fail(err)
	}
	return toks, nil
}

// DeleteOld removes token's record if it was created at or before upTo.
func (s *Data) DeleteOld(ctx context.Context, token string, upTo int64) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM records WHERE token = $1 AND created <= $2`, token, upTo); err != nil {
		return s.fail(err)
	}
	return nil
}

// Scan yields every record in token order.
func (s *Data) Scan(ctx context.Context) iter.Seq2[store.Record, error] {
	return func(yield func(store.Record, error) bool) {
		if err := s.ensure(ctx); err != nil {
			yield(store.Record{}, err)
			return
		}
		rows, err := s.pool.Query(ctx, `SELECT token, dedupe, nonce, ct, created FROM records ORDER BY token`)
		if err != nil {
			yield(store.Record{}, s.fail(err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var r store.Record
			if err := rows.Scan(&r.Token, &r.Dedupe, &r.Nonce, &r.Sealed, &r.Created); err != nil {
				yield(store.Record{}, s.fail(err))
				return
			}
			if !yield(r, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(store.Record{}, s.fail(err))
		}
	}
}

// Close closes the pool; later calls fail with store.ErrUnavailable.
func (s *Data) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.pool.Close()
	}
	return nil
}

// PutCheckpoint keeps cp unless a checkpoint of a higher seq is there: one statement.
func (s *Data) PutCheckpoint(ctx context.Context, cp store.Checkpoint) error {
	if err := s.ensure(ctx); err != nil {
		return err
	}
	v, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO checkpoint (id, seq, v) VALUES (1, $1, $2)
		ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, v = excluded.v WHERE excluded.seq >= checkpoint.seq`, cp.Seq, v); err != nil {
		return s.fail(err)
	}
	return nil
}

// Checkpoint returns the audit checkpoint the store holds.
func (s *Data) Checkpoint(ctx context.Context) (store.Checkpoint, bool, error) {
	if err := s.ensure(ctx); err != nil {
		return store.Checkpoint{}, false, err
	}
	cp, ok, err := readCheckpoint(ctx, s.pool)
	if err != nil {
		return store.Checkpoint{}, false, s.fail(err)
	}
	return cp, ok, nil
}

func readCheckpoint(ctx context.Context, q querier) (store.Checkpoint, bool, error) {
	var v []byte
	err := q.QueryRow(ctx, `SELECT v FROM checkpoint WHERE id = 1`).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
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

// ReadCheckpoint connects to an existing data store read-only and returns
// its audit checkpoint (for 'vault audit verify', beside a running vault).
func ReadCheckpoint(ctx context.Context, url string) (store.Checkpoint, bool, error) {
	d, err := dsn.Parse(url)
	if err != nil {
		return store.Checkpoint{}, false, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return store.Checkpoint{}, false, fmt.Errorf("%w: %s cannot be parsed", dsn.ErrDSN, d)
	}
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return store.Checkpoint{}, false, pgdb.Explain(err, d)
	}
	defer pool.Close()
	cp, ok, err := readCheckpoint(ctx, pool)
	if err != nil {
		return store.Checkpoint{}, false, pgdb.Explain(err, d)
	}
	return cp, ok, nil
}

// putRecords inserts rs in one statement; the same record again is a
// no-op, a different record under a token held is ErrCorrupt.
func putRecords(ctx context.Context, pool *pgxpool.Pool, table string, rs ...store.Record) error {
	toks, dedupes, nonces, cts, created := make([]string, len(rs)), make([][]byte, len(rs)), make([][]byte, len(rs)), make([][]byte, len(rs)), make([]int64, len(rs))
	for i, r := range rs {
		toks[i], dedupes[i], nonces[i], cts[i], created[i] = r.Token, r.Dedupe, r.Nonce, r.Sealed, r.Created
	}
	tag, err := pool.Exec(ctx, `INSERT INTO `+table+` (token, dedupe, nonce, ct, created)
		SELECT * FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::bytea[], $5::bigint[])
		ON CONFLICT (token) DO NOTHING`, toks, dedupes, nonces, cts, created)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == int64(len(rs)) {
		return nil
	}
	for _, r := range rs {
		got, ok, err := getRecord(ctx, pool, table, r.Token)
		if err != nil {
			return err
		}
		if !ok || !got.Same(r) {
			return fmt.Errorf("%s: %w: another record holds this token", table, store.ErrCorrupt)
		}
	}
	return nil
}

func getRecord(ctx context.Context, q querier, table, token string) (store.Record, bool, error) {
	r := store.Record{Token: token}
	err := q.QueryRow(ctx, `SELECT dedupe, nonce, ct, created FROM `+table+` WHERE token = $1`, token).
		Scan(&r.Dedupe, &r.Nonce, &r.Sealed, &r.Created)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Record{}, false, nil
	}
	return r, err == nil, err
}

func tokensByHash(ctx context.Context, q querier, table string, hashes [][]byte) (map[string][]string, error) {
	toks := map[string][]string{}
	rows, err := q.Query(ctx, `SELECT dedupe, token FROM `+table+` WHERE dedupe = ANY ($1) ORDER BY created, token`, hashes)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var h []byte
		var t string
		if err := rows.Scan(&h, &t); err != nil {
			return nil, err
		}
		toks[string(h)] = append(toks[string(h)], t)
	}
	return toks, rows.Err()
}

func createdIn(ctx context.Context, q querier, table string, after, upTo int64) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT token FROM `+table+` WHERE created > $1 AND created <= $2 ORDER BY created`, after, upTo)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
