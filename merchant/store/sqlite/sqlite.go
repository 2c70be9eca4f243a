// Package sqlite keeps the merchant's store (package store, DESIGN.md §6.4,
// §8) in one SQLite database: WAL, synchronous=FULL, one connection so
// transactions queue in order, and the outbox table beside the orders so a
// relay job commits with the state change that calls for it.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"orderseal/internal/dsn"
	"orderseal/internal/outbox"
	outboxsql "orderseal/internal/outbox/sqlite"
	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncesql"
	"orderseal/internal/sqlitex"
	"orderseal/merchant/store"
)

var migrations = []string{`
CREATE TABLE catalog (
	sku        TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	unit_price INTEGER NOT NULL CHECK (unit_price >= 0),
	currency   TEXT NOT NULL,
	updated    INTEGER NOT NULL
);
CREATE TABLE orders (
	order_id    TEXT PRIMARY KEY,
	cardholder  TEXT NOT NULL,
	header_hash BLOB NOT NULL,
	bundle      BLOB NOT NULL,     -- as received: every section still sealed
	issuer      TEXT NOT NULL,
	carrier     TEXT NOT NULL,
	vault       TEXT NOT NULL DEFAULT '',
	ship_token  TEXT NOT NULL DEFAULT '',
	buyer_name  TEXT NOT NULL DEFAULT '',
	buyer_email TEXT NOT NULL DEFAULT '',
	items       TEXT NOT NULL,     -- JSON of the merchant section's items
	total       INTEGER NOT NULL,
	currency    TEXT NOT NULL,
	state       TEXT NOT NULL,
	reason      TEXT NOT NULL DEFAULT '',
	auth_code   TEXT NOT NULL DEFAULT '',
	invoice     TEXT NOT NULL DEFAULT '',
	tracking    TEXT NOT NULL DEFAULT '',
	created     INTEGER NOT NULL,
	updated     INTEGER NOT NULL
);
CREATE INDEX orders_cardholder ON orders (cardholder, created);
CREATE TABLE timeline (
	id          INTEGER PRIMARY KEY,
	order_id    TEXT NOT NULL REFERENCES orders (order_id),
	at          INTEGER NOT NULL,
	state       TEXT NOT NULL,
	detail      TEXT NOT NULL DEFAULT '',
	carrier_seq INTEGER,           -- set for carrier events: dedupes retries
	UNIQUE (order_id, carrier_seq)
);
CREATE INDEX timeline_order ON timeline (order_id, id);
`, outboxsql.Migration, assistedMigration,
	// Retention (DESIGN.md §8): once the issuer has answered, the bundle
	// loses its issuer section; this is the SHA-256 of its ciphertext.
	`ALTER TABLE orders ADD COLUMN issuer_section_sha256 BLOB;`,
	deviceKeyMigration, noncesql.Migration,
	// The issuer's word on each order's payment after authorization (DESIGN.md §6.8).
	paymentsMigration, operatorsMigration}

// Store is the merchant database. Safe for concurrent use.
type Store struct {
	writer bool
	db     *sql.DB
	outbox *outboxsql.Store
	now    func() time.Time
}

var _ store.Store = (*Store)(nil)

// path returns the file a DSN names, refusing any other scheme (the
// parameters named dsn hide the package).
var path = dsn.SQLitePath

// Open opens (creating if need be) and migrates the database dsn names
// (sqlite:PATH or a bare path); now nil is time.Now.
func Open(ctx context.Context, dsn string, now func() time.Time) (*Store, error) {
	p, err := path(dsn)
	if err != nil {
		return nil, err
	}
	// secure_delete: a dropped issuer section is zeroed, not left in free space.
	db, err := sqlitex.Open(p, sqlitex.Immediate(), sqlitex.Serialized(), sqlitex.SecureDelete())
	if err != nil {
		return nil, err
	}
	if err := sqlitex.Migrate(ctx, db, migrations); err != nil {
		db.Close()
		return nil, err
	}
	st := newStore(db, now)
	st.writer = true
	return st, nil
}

// OpenReadOnly opens an existing database for reading only: nothing is
// created or migrated. A missing file is its os.Stat error (fs.ErrNotExist),
// a database at another schema version store.ErrNotMigrated.
func OpenReadOnly(ctx context.Context, dsn string) (*Store, error) {
	p, err := path(dsn)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(p); err != nil {
		return nil, err
	}
	db, err := sqlitex.Open(p, sqlitex.ReadOnly(), sqlitex.MustExist())
	if err != nil {
		return nil, err
	}
	v, err := sqlitex.Version(ctx, db)
	if err == nil && v != len(migrations) {
		err = fmt.Errorf("%w (schema version %d, want %d)", store.ErrNotMigrated, v, len(migrations))
	} else if err != nil {
		err = fmt.Errorf("%w: %w", store.ErrNotMigrated, err)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return newStore(db, nil), nil
}

func newStore(db *sql.DB, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, outbox: outboxsql.New(db), now: now}
}

// Close closes the database. A writer first checkpoints and truncates the
// WAL, whose older frames still hold bundles as received (issuer sections
// included) even when other processes keep the database open.
func (s *Store) Close() error {
	if s.writer {
		s.db.ExecContext(context.Background(), `PRAGMA wal_checkpoint(TRUNCATE)`) // best effort: a reader mid-transaction keeps the WAL
	}
	return s.db.Close()
}

// Outbox is the relay jobs' queue, in the same database.
func (s *Store) Outbox() outbox.Store { return s.outbox }

// Nonces is the signed requests' replay memory in this database (store.Store).
func (s *Store) Nonces(quota nonce.Quota) nonce.Store { return noncesql.New(s.db, quota) }

// PutProduct adds a product or replaces its name and price.
func (s *Store) PutProduct(ctx context.Context, p store.Product) error {
	return s.PutProducts(ctx, []store.Product{p})
}

// PutProducts adds or replaces products in one transaction: all of them or,
// on error, none. A change that would leave the catalog in more than one
// currency is refused with store.ErrCurrencyMixed; replacing every product at once
// is how a shop changes its currency.
func (s *Store) PutProducts(ctx context.Context, ps []store.Product) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := s.now().UnixMilli()
	for _, p := range ps {
		if _, err := tx.ExecContext(ctx, `INSERT INTO catalog (sku, name, unit_price, currency, updated) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (sku) DO UPDATE SET name = excluded.name, unit_price = excluded.unit_price,
			currency = excluded.currency, updated = excluded.updated`,
			p.SKU, p.Name, p.UnitPrice, p.Currency, now); err != nil {
			return err
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(DISTINCT currency) FROM catalog`).Scan(&n); err != nil {
		return err
	}
	if n > 1 {
		return store.ErrCurrencyMixed
	}
	return tx.Commit()
}

// Catalog lists the products by SKU.
func (s *Store) Catalog(ctx context.Context) ([]store.Product, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT sku, name, unit_price, currency FROM catalog ORDER BY sku`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Product
	for rows.Next() {
		var p store.Product
		if err := rows.Scan(&p.SKU, &p.Name, &p.UnitPrice, &p.Currency); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

const orderCols = `order_id, cardholder, header_hash, bundle, issuer, carrier, vault, ship_token, buyer_name, buyer_email,
	items, total, currency, state, reason, auth_code, invoice, tracking, session_id, created, updated, issuer_section_sha256`

func scanOrder(row interface{ Scan(...any) error }) (*store.Order, error) {
	var o store.Order
	var created, updated int64
	err := row.Scan(&o.ID, &o.Cardholder, &o.HeaderHash, &o.Bundle, &o.Issuer, &o.Carrier, &o.Vault, &o.ShipToken,
		&o.BuyerName, &o.BuyerEmail, &o.Items, &o.Total, &o.Currency, &o.State, &o.Reason, &o.AuthCode, &o.Invoice,
		&o.Tracking, &o.Session, &created, &updated, &o.IssuerSectionHash)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	o.Created, o.Updated = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return &o, nil
}

// Insert stores a new order, its first timeline entry and the job that
// relays it, in one durable transaction: once Insert returns, the order
// survives a crash and will be relayed. An order id already stored under the
// same header hash returns the stored order and created=false; under a
// different one, store.ErrOrderReused.
func (s *Store) Insert(ctx context.Context, o *store.Order, job string) (stored *store.Order, created bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback()
	prev, err := scanOrder(tx.QueryRowContext(ctx, `SELECT `+orderCols+` FROM orders WHERE order_id = ?`, o.ID))
	switch {
	case err == nil:
		if string(prev.HeaderHash) != string(o.HeaderHash) {
			return nil, false, store.ErrOrderReused
		}
		return prev, false, nil
	case !errors.Is(err, store.ErrNotFound):
		return nil, false, err
	}
	now := s.now()
	if o.Session != "" {
		// Checked again inside the transaction: a logout that raced the
		// intake's own check wins.
		if err := sessionOpen(ctx, tx, o.Session, o.Cardholder, now); err != nil {
			return nil, false, err
		}
	}
	o.Created, o.Updated = now.UTC(), now.UTC()
	if _, err := tx.ExecContext(ctx, `INSERT INTO orders (`+orderCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		o.ID, o.Cardholder, o.HeaderHash, o.Bundle, o.Issuer, o.Carrier, o.Vault, o.ShipToken, o.BuyerName, o.BuyerEmail,
		o.Items, o.Total, o.Currency, o.State, o.Reason, o.AuthCode, o.Invoice, o.Tracking, o.Session, now.UnixMilli(), now.UnixMilli(), o.IssuerSectionHash); err != nil {
		return nil, false, err
	}
	if err := addEvent(ctx, tx, o.ID, now, o.State, "bundle stored", nil); err != nil {
		return nil, false, err
	}
	if err := outboxsql.Enqueue(ctx, tx, job, o.ID, nil, now); err != nil {
		return nil, false, err
	}
	return o, true, tx.Commit()
}

// Get returns one order.
func (s *Store) Get(ctx context.Context, id string) (*store.Order, error) {
	return scanOrder(s.db.QueryRowContext(ctx, `SELECT `+orderCols+` FROM orders WHERE order_id = ?`, id))
}

// List returns the newest orders first, at most limit.
func (s *Store) List(ctx context.Context, limit int) ([]*store.Order, error) {
	return s.queryOrders(ctx, `SELECT `+orderCols+` FROM orders ORDER BY created DESC, order_id LIMIT ?`, limit)
}

// queryOrders runs a query selecting orderCols and scans every row.
func (s *Store) queryOrders(ctx context.Context, q string, args ...any) ([]*store.Order, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Order
	for rows.Next() {
		o, err := scanOrder(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Timeline returns an order's events: the merchant's own in the order they
// happened, then the carrier's in sequence order (they may arrive out of order).
func (s *Store) Timeline(ctx context.Context, id string) ([]store.Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, state, detail FROM timeline WHERE order_id = ? ORDER BY carrier_seq IS NOT NULL, carrier_seq, id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var e store.Event
		var at int64
		if err := rows.Scan(&at, &e.State, &e.Detail); err != nil {
			return nil, err
		}
		e.At = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

func addEvent(ctx context.Context, tx *sql.Tx, id string, at time.Time, state, detail string, carrierSeq *int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO timeline (order_id, at, state, detail, carrier_seq) VALUES (?, ?, ?, ?, ?)`,
		id, at.UnixMilli(), state, detail, carrierSeq)
	return err
}

// Apply makes t in one transaction. applied is false, and nothing changes,
// when the order is no longer in a From state (a replayed job).
func (s *Store) Apply(ctx context.Context, id string, t store.Transition) (applied bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var state string
	if err := tx.QueryRowContext(ctx, `SELECT state FROM orders WHERE order_id = ?`, id).Scan(&state); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return false, store.ErrNotFound
		}
		return false, err
	}
	ok := false
	for _, f := range t.From {
		ok = ok || f == state
	}
	if !ok {
		return false, nil
	}
	now := s.now()
	if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = ?, updated = ?,
		reason = CASE WHEN ? != '' THEN ? ELSE reason END,
		auth_code = CASE WHEN ? != '' THEN ? ELSE auth_code END,
		invoice = CASE WHEN ? != '' THEN ? ELSE invoice END,
		tracking = CASE WHEN ? != '' THEN ? ELSE tracking END
		WHERE order_id = ?`, t.To, now.UnixMilli(), t.Reason, t.Reason, t.AuthCode, t.AuthCode,
		t.Invoice, t.Invoice, t.Tracking, t.Tracking, id); err != nil {
		return false, err
	}
	if r := t.Retain; r != nil {
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET bundle = ?, issuer_section_sha256 = ? WHERE order_id = ?`,
			r.Bundle, r.IssuerSectionHash, id); err != nil {
			return false, err
		}
	}
	if err := addEvent(ctx, tx, id, now, t.To, t.Detail, nil); err != nil {
		return false, err
	}
	for _, j := range t.Jobs {
		if err := outboxsql.Enqueue(ctx, tx, j, id, nil, now); err != nil {
			return false, err
		}
	}
	return true, tx.Commit()
}

// Note appends a timeline entry without changing the order's state.
func (s *Store) Note(ctx context.Context, id, state, detail string, jobs ...string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := s.now()
	if err := addEvent(ctx, tx, id, now, state, detail, nil); err != nil {
		return err
	}
	for _, j := range jobs {
		if err := outboxsql.Enqueue(ctx, tx, j, id, nil, now); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// CarrierEvent records a tracking event once per sequence number; a retried
// event changes nothing and returns recorded=false. A delivered event moves
// a shipped order to delivered.
func (s *Store) CarrierEvent(ctx context.Context, id string, seq int64, status, detail string, at time.Time) (recorded bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO timeline (order_id, at, state, detail, carrier_seq) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (order_id, carrier_seq) DO NOTHING`, id, at.UnixMilli(), status, detail, seq)
	if err != nil {
		return false, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return false, nil
	}
	if status == "delivered" {
		if _, err := tx.ExecContext(ctx, `UPDATE orders SET state = 'delivered', updated = ? WHERE order_id = ? AND state = 'shipped'`,
			s.now().UnixMilli(), id); err != nil {
			return false, err
		}
	}
	return true, tx.Commit()
}

// Counts reports how many orders are in each state.
func (s *Store) Counts(ctx context.Context) (map[string]int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT state, COUNT(*) FROM orders GROUP BY state`)
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

// briefChunk bounds the ids of one IN list, well under SQLite's limit on
// bound parameters.
const briefChunk = 500

const briefCols = `order_id, state, reason, tracking, ship_token, total`

func scanBriefs(rows *sql.Rows, fn func(store.OrderBrief) error) error {
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
	var out []store.OrderBrief
	for chunk := range slices.Chunk(ids, briefChunk) {
		rows, err := s.db.QueryContext(ctx, `SELECT `+briefCols+` FROM orders WHERE order_id IN (`+
			sqlitex.Placeholders(len(chunk))+`)`, sqlitex.Args(chunk)...)
		if err != nil {
			return nil, err
		}
		if err := scanBriefs(rows, func(b store.OrderBrief) error { out = append(out, b); return nil }); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// EachBrief calls fn with every order while the rows stream, so millions of
// orders are never held at once.
func (s *Store) EachBrief(ctx context.Context, fn func(store.OrderBrief) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT `+briefCols+` FROM orders`)
	if err != nil {
		return err
	}
	return scanBriefs(rows, fn)
}

// FirstReached returns the time of each order's first timeline entry in one
// of states.
func (s *Store) FirstReached(ctx context.Context, ids, states []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if len(states) == 0 {
		return out, nil
	}
	for chunk := range slices.Chunk(ids, briefChunk) {
		args := append(sqlitex.Args(chunk), sqlitex.Args(states)...)
		rows, err := s.db.QueryContext(ctx, `SELECT order_id, MIN(at) FROM timeline WHERE order_id IN (`+
			sqlitex.Placeholders(len(chunk))+`) AND state IN (`+sqlitex.Placeholders(len(states))+`) GROUP BY order_id`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id string
			var ms int64
			if err := rows.Scan(&id, &ms); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = time.UnixMilli(ms).UTC()
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Tally counts the rows of the merchant's tables.
func (s *Store) Tally(ctx context.Context) (store.Tally, error) {
	var t store.Tally
	err := s.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM catalog), (SELECT COUNT(*) FROM orders),
		(SELECT COUNT(*) FROM timeline), (SELECT COUNT(*) FROM assisted_sessions)`).Scan(&t.Products, &t.Orders, &t.Events, &t.Sessions)
	return t, err
}

// Ping reads the database once.
func (s *Store) Ping(ctx context.Context) error { return sqlitex.Ping(ctx, s.db) }
