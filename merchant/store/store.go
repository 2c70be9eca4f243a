// Package store is the merchant's database (DESIGN.md §6.4, §8): catalog,
// orders with their status timeline, and the outbox of relays to the issuer,
// the vault and the carrier. It holds the sealed bundle, the merchant's own
// section's fields and tokens — never a card number or an address, which the
// merchant cannot read in the first place.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	outboxsql "orderseal/internal/outbox/sqlite"
	"orderseal/internal/sqlitex"
)

// Errors. Callers test with errors.Is.
var (
	ErrNotFound    = errors.New("merchant: no such order")
	ErrOrderReused = errors.New("merchant: order id already used by a different bundle")
	ErrNoProduct   = errors.New("merchant: no such product")
	// ErrCurrencyMixed refuses a catalog change that would leave products
	// priced in two currencies: the order form has one currency.
	ErrCurrencyMixed = errors.New("merchant: the catalog would mix currencies")
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
`, outboxsql.Migration, assistedMigration}

// Store is the merchant database. Safe for concurrent use.
type Store struct {
	db  *sql.DB
	now func() time.Time
}

// Open opens (creating if need be) and migrates the database at path.
func Open(ctx context.Context, path string, now func() time.Time) (*Store, error) {
	db, err := sqlitex.Open(path, sqlitex.Immediate(), sqlitex.Serialized())
	if err != nil {
		return nil, err
	}
	if err := sqlitex.Migrate(ctx, db, migrations); err != nil {
		db.Close()
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, now: now}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// DB is the database the outbox runner reads.
func (s *Store) DB() *sql.DB { return s.db }

// Product is one catalog entry.
type Product struct {
	SKU, Name, Currency string
	UnitPrice           int64
}

// PutProduct adds a product or replaces its name and price.
func (s *Store) PutProduct(ctx context.Context, p Product) error {
	return s.PutProducts(ctx, []Product{p})
}

// PutProducts adds or replaces products in one transaction: all of them or,
// on error, none. A change that would leave the catalog in more than one
// currency is refused with ErrCurrencyMixed; replacing every product at once
// is how a shop changes its currency.
func (s *Store) PutProducts(ctx context.Context, ps []Product) error {
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
		return ErrCurrencyMixed
	}
	return tx.Commit()
}

// Catalog lists the products by SKU.
func (s *Store) Catalog(ctx context.Context) ([]Product, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT sku, name, unit_price, currency FROM catalog ORDER BY sku`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Product
	for rows.Next() {
		var p Product
		if err := rows.Scan(&p.SKU, &p.Name, &p.UnitPrice, &p.Currency); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Order is one stored order.
type Order struct {
	ID, Cardholder              string
	HeaderHash                  []byte
	Bundle                      []byte
	Issuer, Carrier, Vault      string
	ShipToken                   string
	BuyerName, BuyerEmail       string
	Items                       []byte // JSON
	Total                       int64
	Currency                    string
	State, Reason               string
	AuthCode, Invoice, Tracking string
	Session                     string // the assisted session that keyed it; "" online
	Created, Updated            time.Time
}

// Event is one timeline entry.
type Event struct {
	At            time.Time
	State, Detail string
}

const orderCols = `order_id, cardholder, header_hash, bundle, issuer, carrier, vault, ship_token, buyer_name, buyer_email,
	items, total, currency, state, reason, auth_code, invoice, tracking, session_id, created, updated`

func scanOrder(row interface{ Scan(...any) error }) (*Order, error) {
	var o Order
	var created, updated int64
	err := row.Scan(&o.ID, &o.Cardholder, &o.HeaderHash, &o.Bundle, &o.Issuer, &o.Carrier, &o.Vault, &o.ShipToken,
		&o.BuyerName, &o.BuyerEmail, &o.Items, &o.Total, &o.Currency, &o.State, &o.Reason, &o.AuthCode, &o.Invoice,
		&o.Tracking, &o.Session, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
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
// different one, ErrOrderReused.
func (s *Store) Insert(ctx context.Context, o *Order, job string) (stored *Order, created bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback()
	prev, err := scanOrder(tx.QueryRowContext(ctx, `SELECT `+orderCols+` FROM orders WHERE order_id = ?`, o.ID))
	switch {
	case err == nil:
		if string(prev.HeaderHash) != string(o.HeaderHash) {
			return nil, false, ErrOrderReused
		}
		return prev, false, nil
	case !errors.Is(err, ErrNotFound):
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
	if _, err := tx.ExecContext(ctx, `INSERT INTO orders (`+orderCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		o.ID, o.Cardholder, o.HeaderHash, o.Bundle, o.Issuer, o.Carrier, o.Vault, o.ShipToken, o.BuyerName, o.BuyerEmail,
		o.Items, o.Total, o.Currency, o.State, o.Reason, o.AuthCode, o.Invoice, o.Tracking, o.Session, now.UnixMilli(), now.UnixMilli()); err != nil {
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
func (s *Store) Get(ctx context.Context, id string) (*Order, error) {
	return scanOrder(s.db.QueryRowContext(ctx, `SELECT `+orderCols+` FROM orders WHERE order_id = ?`, id))
}

// List returns the newest orders first, at most limit.
func (s *Store) List(ctx context.Context, limit int) ([]*Order, error) {
	return s.queryOrders(ctx, `SELECT `+orderCols+` FROM orders ORDER BY created DESC, order_id LIMIT ?`, limit)
}

// queryOrders runs a query selecting orderCols and scans every row.
func (s *Store) queryOrders(ctx context.Context, q string, args ...any) ([]*Order, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Order
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
func (s *Store) Timeline(ctx context.Context, id string) ([]Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, state, detail FROM timeline WHERE order_id = ? ORDER BY carrier_seq IS NOT NULL, carrier_seq, id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
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

// Transition is one state change of an order: the fields to set, the
// timeline entry to append, and the jobs it calls for.
type Transition struct {
	From     []string // the change applies only in one of these states
	To       string
	Reason   string
	Detail   string
	AuthCode string
	Invoice  string
	Tracking string
	Jobs     []string // outbox kinds to enqueue, keyed by order id
}

// Apply makes t in one transaction. applied is false, and nothing changes,
// when the order is no longer in a From state (a replayed job).
func (s *Store) Apply(ctx context.Context, id string, t Transition) (applied bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var state string
	if err := tx.QueryRowContext(ctx, `SELECT state FROM orders WHERE order_id = ?`, id).Scan(&state); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return false, ErrNotFound
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
