// Package postgres keeps the merchant's store (package store, DESIGN.md
// §6.4, §8, §9) in a PostgreSQL database that several merchant nodes share:
// the outbox table beside the orders so a relay job commits with the state
// change that calls for it, jobs leased to the node that claims them
// (internal/outbox/postgres), and the replay memory of signed requests in
// the same database (noncepg). Every change that reads before it writes
// locks what it read (FOR UPDATE, or an advisory lock for a row that does
// not exist yet), so two nodes never both apply one transition.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"orderseal/internal/dsn"
	"orderseal/internal/outbox"
	outboxpg "orderseal/internal/outbox/postgres"
	"orderseal/internal/pgdb"
	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncepg"
	"orderseal/merchant/store"
)

// Component names the merchant's migrations in schema_version.
const Component = "merchant"

// Times are unix milliseconds, as in the SQLite backend.
var migrations = []string{`
CREATE TABLE catalog (
	sku        TEXT   COLLATE "C" PRIMARY KEY, -- byte order, as in SQLite, whatever the database's locale
	name       TEXT   NOT NULL,
	unit_price BIGINT NOT NULL CHECK (unit_price >= 0),
	currency   TEXT   NOT NULL,
	updated    BIGINT NOT NULL
);
CREATE TABLE orders (
	order_id    TEXT   COLLATE "C" PRIMARY KEY,
	cardholder  TEXT   NOT NULL,
	header_hash BYTEA  NOT NULL,
	bundle      BYTEA  NOT NULL,      -- as received until the issuer answers
	issuer_section_sha256 BYTEA,      -- then the hash of the dropped issuer section
	issuer      TEXT   NOT NULL,
	carrier     TEXT   NOT NULL,
	vault       TEXT   NOT NULL DEFAULT '',
	ship_token  TEXT   NOT NULL DEFAULT '',
	buyer_name  TEXT   NOT NULL DEFAULT '',
	buyer_email TEXT   NOT NULL DEFAULT '',
	items       BYTEA  NOT NULL,      -- JSON of the merchant section's items, as sent
	total       BIGINT NOT NULL,
	currency    TEXT   NOT NULL,
	state       TEXT   NOT NULL,
	reason      TEXT   NOT NULL DEFAULT '',
	auth_code   TEXT   NOT NULL DEFAULT '',
	invoice     TEXT   NOT NULL DEFAULT '',
	tracking    TEXT   NOT NULL DEFAULT '',
	session_id  TEXT   COLLATE "C" NOT NULL DEFAULT '',
	created     BIGINT NOT NULL,
	updated     BIGINT NOT NULL
);
CREATE INDEX orders_cardholder ON orders (cardholder, created);
CREATE INDEX orders_created ON orders (created DESC, order_id);
CREATE INDEX orders_session ON orders (session_id, created) WHERE session_id <> '';
CREATE TABLE timeline (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	order_id    TEXT   COLLATE "C" NOT NULL REFERENCES orders (order_id),
	at          BIGINT NOT NULL,
	state       TEXT   NOT NULL,
	detail      TEXT   NOT NULL DEFAULT '',
	carrier_seq BIGINT,               -- set for carrier events: dedupes retries
	UNIQUE (order_id, carrier_seq)
);
CREATE INDEX timeline_order ON timeline (order_id, id);
CREATE TABLE assisted_sessions (
	session_id  TEXT   COLLATE "C" PRIMARY KEY,
	consultant  TEXT   NOT NULL,
	company     TEXT   NOT NULL,
	device      TEXT   NOT NULL,
	device_key  BYTEA  NOT NULL,
	secret_hash BYTEA  NOT NULL,
	login_nonce TEXT   NOT NULL CONSTRAINT assisted_login_nonce UNIQUE, -- a login request is good once
	created     BIGINT NOT NULL,
	expires     BIGINT NOT NULL,      -- the shift's end
	ended       BIGINT,               -- logout or a later login on the device
	end_reason  TEXT   NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX assisted_open ON assisted_sessions (consultant, device) WHERE ended IS NULL;
CREATE INDEX assisted_consultant ON assisted_sessions (consultant, created);
`, outboxpg.Migration, noncepg.Migration, paymentsMigration, operatorsMigration}

// Store is the merchant database as one node sees it. Safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	outbox *outboxpg.Store
	now    func() time.Time
}

var _ store.Store = (*Store)(nil)

// Open connects to and migrates the database a postgres:// DSN names; now
// nil is time.Now. Several nodes may open one database at once.
func Open(ctx context.Context, url string, now func() time.Time, opts ...outboxpg.Option) (*Store, error) {
	pool, err := pgdb.OpenMigrated(ctx, url, 0, Component, migrations)
	if err != nil {
		return nil, err
	}
	return newStore(pool, now, opts...), nil
}

// OpenReadOnly connects for reading only, in read-only transactions, and
// refuses (store.ErrNotMigrated) a database this version has not migrated.
func OpenReadOnly(ctx context.Context, url string) (*Store, error) {
	d, err := dsn.Parse(url)
	if err != nil {
		return nil, err
	}
	pool, err := pgdb.Open(ctx, url, 2)
	if err != nil {
		return nil, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		pool.Close()
		return nil, pgdb.Explain(err, d)
	}
	v, err := pgdb.Version(ctx, conn.Conn(), Component)
	conn.Release()
	switch {
	case err != nil:
		err = fmt.Errorf("%w: %w", store.ErrNotMigrated, pgdb.Explain(err, d))
	case v != len(migrations):
		err = fmt.Errorf("%w (schema version %d, want %d)", store.ErrNotMigrated, v, len(migrations))
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	pool.Close()
	// Reopen with every session read-only: the CLIs that read must never write.
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	cfg.MaxConns = 2
	if pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, pgdb.Explain(err, d)
	}
	return newStore(pool, nil), nil
}

func newStore(pool *pgxpool.Pool, now func() time.Time, opts ...outboxpg.Option) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{pool: pool, outbox: outboxpg.New(pool, opts...), now: now}
}

// Close closes the pool.
func (s *Store) Close() error { s.pool.Close(); return nil }

// Outbox is the relay jobs' queue, in the same database.
func (s *Store) Outbox() outbox.Store { return s.outbox }

// Nonces is the signed requests' replay memory in this database (store.Store).
func (s *Store) Nonces(quota nonce.Quota) nonce.Store { return noncepg.New(s.pool, quota) }

// tx runs fn in a read-committed transaction, committed when fn returns nil.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, fn)
}

// bytes keeps a nil slice out of a NOT NULL column.
func bytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// PutProduct adds a product or replaces its name and price.
func (s *Store) PutProduct(ctx context.Context, p store.Product) error {
	return s.PutProducts(ctx, []store.Product{p})
}

// PutProducts adds or replaces products in one transaction: all of them or,
// on error, none; store.ErrCurrencyMixed if the catalog would mix
// currencies. The table is locked against other writers for the check.
func (s *Store) PutProducts(ctx context.Context, ps []store.Product) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `LOCK TABLE catalog IN SHARE ROW EXCLUSIVE MODE`); err != nil {
			return err
		}
		now := s.now().UnixMilli()
		for _, p := range ps {
			if _, err := tx.Exec(ctx, `INSERT INTO catalog (sku, name, unit_price, currency, updated) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (sku) DO UPDATE SET name = excluded.name, unit_price = excluded.unit_price,
				currency = excluded.currency, updated = excluded.updated`,
				p.SKU, p.Name, p.UnitPrice, p.Currency, now); err != nil {
				return err
			}
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(DISTINCT currency) FROM catalog`).Scan(&n); err != nil {
			return err
		}
		if n > 1 {
			return store.ErrCurrencyMixed
		}
		return nil
	})
}

// Catalog lists the products by SKU.
func (s *Store) Catalog(ctx context.Context) ([]store.Product, error) {
	rows, err := s.pool.Query(ctx, `SELECT sku, name, unit_price, currency FROM catalog ORDER BY sku`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Product, error) {
		var p store.Product
		err := r.Scan(&p.SKU, &p.Name, &p.UnitPrice, &p.Currency)
		return p, err
	})
}

const orderCols = `order_id, cardholder, header_hash, bundle, issuer, carrier, vault, ship_token, buyer_name, buyer_email,
	items, total, currency, state, reason, auth_code, invoice, tracking, session_id, created, updated, issuer_section_sha256`

func scanOrder(row pgx.Row) (*store.Order, error) {
	var o store.Order
	var created, updated int64
	err := row.Scan(&o.ID, &o.Cardholder, &o.HeaderHash, &o.Bundle, &o.Issuer, &o.Carrier, &o.Vault, &o.ShipToken,
		&o.BuyerName, &o.BuyerEmail, &o.Items, &o.Total, &o.Currency, &o.State, &o.Reason, &o.AuthCode, &o.Invoice,
		&o.Tracking, &o.Session, &created, &updated, &o.IssuerSectionHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	o.Created, o.Updated = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return &o, nil
}

// Insert stores a new order, its first timeline entry and the job that
// relays it, in one transaction. The same id again, from any node, returns
// the stored order (created=false) under the same header hash and
// store.ErrOrderReused under another: the primary key decides, never a
// check in one process.
func (s *Store) Insert(ctx context.Context, o *store.Order, job string) (stored *store.Order, created bool, err error) {
	now := s.now()
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if o.Session != "" {
			// Checked again inside the transaction, the session's row
			// locked: a logout that raced the intake's own check wins.
			if err := sessionOpen(ctx, tx, o.Session, o.Cardholder, now); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `INSERT INTO orders (`+orderCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$20,$21)
			ON CONFLICT (order_id) DO NOTHING`,
			o.ID, o.Cardholder, bytes(o.HeaderHash), bytes(o.Bundle), o.Issuer, o.Carrier, o.Vault, o.ShipToken, o.BuyerName, o.BuyerEmail,
			bytes(o.Items), o.Total, o.Currency, o.State, o.Reason, o.AuthCode, o.Invoice, o.Tracking, o.Session, now.UnixMilli(), o.IssuerSectionHash)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			prev, err := scanOrder(tx.QueryRow(ctx, `SELECT `+orderCols+` FROM orders WHERE order_id = $1`, o.ID))
			if err != nil {
				return err
			}
			if string(prev.HeaderHash) != string(o.HeaderHash) {
				return store.ErrOrderReused
			}
			stored = prev
			return nil
		}
		if err := addEvent(ctx, tx, o.ID, now, o.State, "bundle stored", nil); err != nil {
			return err
		}
		if err := outboxpg.Enqueue(ctx, tx, job, o.ID, nil, now); err != nil {
			return err
		}
		o.Created, o.Updated = now.UTC(), now.UTC()
		stored, created = o, true
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return stored, created, nil
}

// Get returns one order.
func (s *Store) Get(ctx context.Context, id string) (*store.Order, error) {
	return scanOrder(s.pool.QueryRow(ctx, `SELECT `+orderCols+` FROM orders WHERE order_id = $1`, id))
}

// List returns the newest orders first, at most limit.
func (s *Store) List(ctx context.Context, limit int) ([]*store.Order, error) {
	return s.queryOrders(ctx, `SELECT `+orderCols+` FROM orders ORDER BY created DESC, order_id LIMIT $1`, limit)
}

func (s *Store) queryOrders(ctx context.Context, q string, args ...any) ([]*store.Order, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*store.Order, error) { return scanOrder(r) })
}

// Timeline returns an order's events: the merchant's own in the order they
// happened, then the carrier's in sequence order.
func (s *Store) Timeline(ctx context.Context, id string) ([]store.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT at, state, detail FROM timeline WHERE order_id = $1
		ORDER BY carrier_seq IS NOT NULL, carrier_seq, id`, id)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Event, error) {
		var e store.Event
		var at int64
		err := r.Scan(&at, &e.State, &e.Detail)
		e.At = time.UnixMilli(at).UTC()
		return e, err
	})
}

func addEvent(ctx context.Context, tx pgx.Tx, id string, at time.Time, state, detail string, carrierSeq *int64) error {
	_, err := tx.Exec(ctx, `INSERT INTO timeline (order_id, at, state, detail, carrier_seq) VALUES ($1, $2, $3, $4, $5)`,
		id, at.UnixMilli(), state, detail, carrierSeq)
	return err
}

// Apply makes t in one transaction, the order's row locked: of two nodes
// applying transitions from one state, the second finds the state changed
// and applies nothing (applied=false).
func (s *Store) Apply(ctx context.Context, id string, t store.Transition) (applied bool, err error) {
	err = s.tx(ctx, func(tx pgx.Tx) error {
		var state string
		if err := tx.QueryRow(ctx, `SELECT state FROM orders WHERE order_id = $1 FOR UPDATE`, id).Scan(&state); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return store.ErrNotFound
			}
			return err
		}
		ok := false
		for _, f := range t.From {
			ok = ok || f == state
		}
		if !ok {
			return nil
		}
		now := s.now()
		if _, err := tx.Exec(ctx, `UPDATE orders SET state = $1, updated = $2,
			reason = CASE WHEN $3 <> '' THEN $3 ELSE reason END,
			auth_code = CASE WHEN $4 <> '' THEN $4 ELSE auth_code END,
			invoice = CASE WHEN $5 <> '' THEN $5 ELSE invoice END,
			tracking = CASE WHEN $6 <> '' THEN $6 ELSE tracking END
			WHERE order_id = $7`, t.To, now.UnixMilli(), t.Reason, t.AuthCode, t.Invoice, t.Tracking, id); err != nil {
			return err
		}
		if r := t.Retain; r != nil {
			if _, err := tx.Exec(ctx, `UPDATE orders SET bundle = $1, issuer_section_sha256 = $2 WHERE order_id = $3`,
				bytes(r.Bundle), r.IssuerSectionHash, id); err != nil {
				return err
			}
		}
		if err := addEvent(ctx, tx, id, now, t.To, t.Detail, nil); err != nil {
			return err
		}
		for _, j := range t.Jobs {
			if err := outboxpg.Enqueue(ctx, tx, j, id, nil, now); err != nil {
				return err
			}
		}
		applied = true
		return nil
	})
	return applied, err
}

// Note appends a timeline entry without changing the order's state.
func (s *Store) Note(ctx context.Context, id, state, detail string, jobs ...string) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		now := s.now()
		if err := addEvent(ctx, tx, id, now, state, detail, nil); err != nil {
			return err
		}
		for _, j := range jobs {
			if err := outboxpg.Enqueue(ctx, tx, j, id, nil, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// CarrierEvent records a tracking event once per sequence number (the
// unique constraint decides between nodes); a delivered event moves a
// shipped order to delivered.
func (s *Store) CarrierEvent(ctx context.Context, id string, seq int64, status, detail string, at time.Time) (recorded bool, err error) {
	err = s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO timeline (order_id, at, state, detail, carrier_seq) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (order_id, carrier_seq) DO NOTHING`, id, at.UnixMilli(), status, detail, seq)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		if status == "delivered" {
			if _, err := tx.Exec(ctx, `UPDATE orders SET state = 'delivered', updated = $1 WHERE order_id = $2 AND state = 'shipped'`,
				s.now().UnixMilli(), id); err != nil {
				return err
			}
		}
		recorded = true
		return nil
	})
	return recorded, err
}

// Counts reports how many orders are in each state.
func (s *Store) Counts(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT state, COUNT(*) FROM orders GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("merchant: counts: %w", err)
	}
	return out, nil
}

const briefCols = `order_id, state, reason, tracking, ship_token, total`

func scanBriefs(rows pgx.Rows, fn func(store.OrderBrief) error) error {
	defer rows.Close()
	for rows.Next() {
		var b store.OrderBrief
		if err := rows.Scan(&b.ID, &b.State, &b.Reason, &b.Tracking, &b.ShipToken, &b.Total); err != nil {
			return err
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Briefs returns the orders among ids that exist.
func (s *Store) Briefs(ctx context.Context, ids []string) ([]store.OrderBrief, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+briefCols+` FROM orders WHERE order_id = ANY ($1)`, ids)
	if err != nil {
		return nil, err
	}
	var out []store.OrderBrief
	err = scanBriefs(rows, func(b store.OrderBrief) error { out = append(out, b); return nil })
	return out, err
}

// EachBrief calls fn with every order while the rows stream.
func (s *Store) EachBrief(ctx context.Context, fn func(store.OrderBrief) error) error {
	rows, err := s.pool.Query(ctx, `SELECT `+briefCols+` FROM orders`)
	if err != nil {
		return err
	}
	return scanBriefs(rows, fn)
}

// FirstReached returns the time of each order's first timeline entry in one
// of states.
func (s *Store) FirstReached(ctx context.Context, ids, states []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if len(states) == 0 || len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT order_id, MIN(at) FROM timeline WHERE order_id = ANY ($1) AND state = ANY ($2) GROUP BY order_id`, ids, states)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var ms int64
		if err := rows.Scan(&id, &ms); err != nil {
			return nil, err
		}
		out[id] = time.UnixMilli(ms).UTC()
	}
	return out, rows.Err()
}

// Tally counts the rows of the merchant's tables.
func (s *Store) Tally(ctx context.Context) (store.Tally, error) {
	var t store.Tally
	err := s.pool.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM catalog), (SELECT COUNT(*) FROM orders),
		(SELECT COUNT(*) FROM timeline), (SELECT COUNT(*) FROM assisted_sessions)`).Scan(&t.Products, &t.Orders, &t.Events, &t.Sessions)
	return t, err
}

// isUnique reports whether err is a unique violation of constraint.
func isUnique(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == constraint
}

// Ping checks the database answers a query.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }
