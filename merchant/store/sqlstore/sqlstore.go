// Package sqlstore is the merchant's store (package store, DESIGN.md §6.4,
// §8, §9) written once against internal/sqldb, for every backend: the
// catalog, orders and their timeline, assisted sessions, operators and
// payments, with the outbox jobs each change enqueues in its own
// transaction (sqlout.Enqueue). The backend packages (store/sqlite,
// store/postgres) keep their migrations, Open, Close and the nonce store.
//
// Every change that reads before it writes locks what it read (FOR UPDATE,
// FOR SHARE, or an advisory lock for a row that does not exist yet), so two
// PostgreSQL nodes never both apply one transition; on SQLite those locks
// are no-ops because its write transactions exclude each other (the
// backend opens the database with sqlitex.Immediate and one connection).
package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"orderseal/internal/outbox"
	"orderseal/internal/outbox/sqlout"
	"orderseal/internal/sqldb"
	"orderseal/merchant/store"
)

// Store is the merchant database as one node sees it. Safe for concurrent
// use. It is every method of store.Store but Close and Nonces, which each
// backend adds.
type Store struct {
	db     sqldb.DB
	outbox outbox.Store
	now    func() time.Time
}

// New serves the merchant's tables of db, which the backend has migrated;
// jobs is the outbox table of the same database, as the backend serves it;
// now nil is time.Now.
func New(db sqldb.DB, jobs outbox.Store, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: db, outbox: jobs, now: now}
}

// Outbox is the relay jobs' queue, in the same database.
func (s *Store) Outbox() outbox.Store { return s.outbox }

// Ping reads the database once.
func (s *Store) Ping(ctx context.Context) error { return s.db.Ping(ctx) }

// PutProduct adds a product or replaces its name and price.
func (s *Store) PutProduct(ctx context.Context, p store.Product) error {
	return s.PutProducts(ctx, []store.Product{p})
}

// PutProducts adds or replaces products in one transaction: all of them or,
// on error, none. A change that would leave the catalog in more than one
// currency is refused with store.ErrCurrencyMixed; replacing every product
// at once is how a shop changes its currency. On PostgreSQL the table is
// locked against other writers for the check.
func (s *Store) PutProducts(ctx context.Context, ps []store.Product) error {
	return s.db.Tx(ctx, func(tx sqldb.Tx) error {
		if tx.Dialect() == sqldb.Postgres {
			if _, err := tx.Exec(ctx, `LOCK TABLE catalog IN SHARE ROW EXCLUSIVE MODE`); err != nil {
				return err
			}
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
	return sqldb.Collect(ctx, s.db, scanProduct, `SELECT sku, name, unit_price, currency FROM catalog ORDER BY sku`)
}

func (s *Store) Products(ctx context.Context, skus []string) ([]store.Product, error) {
	var out []store.Product
	for chunk := range slices.Chunk(skus, sqldb.ListChunk(s.db)) {
		cond, args := sqldb.In(s.db, "sku", 1, chunk)
		ps, err := sqldb.Collect(ctx, s.db, scanProduct, `SELECT sku, name, unit_price, currency FROM catalog WHERE `+cond, args...)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

func scanProduct(r sqldb.Row) (store.Product, error) {
	var p store.Product
	err := r.Scan(&p.SKU, &p.Name, &p.UnitPrice, &p.Currency)
	return p, err
}

const orderCols = `order_id, cardholder, header_hash, bundle, issuer, carrier, vault, ship_token, buyer_name, buyer_email,
	items, total, currency, state, reason, auth_code, invoice, tracking, session_id, created, updated, issuer_section_sha256`

func scanOrder(row sqldb.Row) (*store.Order, error) {
	var o store.Order
	var created, updated int64
	err := row.Scan(&o.ID, &o.Cardholder, &o.HeaderHash, &o.Bundle, &o.Issuer, &o.Carrier, &o.Vault, &o.ShipToken,
		&o.BuyerName, &o.BuyerEmail, &o.Items, &o.Total, &o.Currency, &o.State, &o.Reason, &o.AuthCode, &o.Invoice,
		&o.Tracking, &o.Session, &created, &updated, &o.IssuerSectionHash)
	if errors.Is(err, sqldb.ErrNoRows) {
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
// survives a crash and will be relayed. The same id again, from any node,
// returns the stored order (created=false) under the same header hash and
// store.ErrOrderReused under another: the primary key decides, never a
// check in one process.
func (s *Store) Insert(ctx context.Context, o *store.Order, job string) (stored *store.Order, created bool, err error) {
	now := s.now()
	err = s.db.Tx(ctx, func(tx sqldb.Tx) error {
		n, err := tx.Exec(ctx, `INSERT INTO orders (`+orderCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$20,$21)
			ON CONFLICT (order_id) DO NOTHING`,
			o.ID, o.Cardholder, sqldb.NotNull(o.HeaderHash), sqldb.NotNull(o.Bundle), o.Issuer, o.Carrier, o.Vault, o.ShipToken, o.BuyerName, o.BuyerEmail,
			sqldb.NotNull(o.Items), o.Total, o.Currency, o.State, o.Reason, o.AuthCode, o.Invoice, o.Tracking, o.Session, now.UnixMilli(), o.IssuerSectionHash)
		if err != nil {
			return err
		}
		if n == 0 {
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
		if o.Session != "" {
			// Checked again inside the transaction, the session's row
			// locked: a logout that raced the intake's own check wins, and
			// the order just written is rolled back.
			if err := sessionOpen(ctx, tx, o.Session, o.Cardholder, now); err != nil {
				return err
			}
		}
		if err := addEvent(ctx, tx, o.ID, now, o.State, "bundle stored", nil); err != nil {
			return err
		}
		if err := sqlout.Enqueue(ctx, tx, job, o.ID, nil, now); err != nil {
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
	return scanOrder(s.db.QueryRow(ctx, `SELECT `+orderCols+` FROM orders WHERE order_id = $1`, id))
}

// orderColsWithoutBundle is orderCols with NULL in the bundle's place.
var orderColsWithoutBundle = strings.Replace(orderCols, "bundle,", "NULL AS bundle,", 1)

func (s *Store) GetWithoutBundle(ctx context.Context, id string) (*store.Order, error) {
	return scanOrder(s.db.QueryRow(ctx, `SELECT `+orderColsWithoutBundle+` FROM orders WHERE order_id = $1`, id))
}

// List returns the newest orders first, at most limit.
func (s *Store) List(ctx context.Context, limit int) ([]*store.Order, error) {
	return sqldb.Collect(ctx, s.db, scanOrder, `SELECT `+orderCols+` FROM orders ORDER BY created DESC, order_id LIMIT $1`, limit)
}

// Timeline returns an order's events: the merchant's own in the order they
// happened, then the carrier's in sequence order (they may arrive out of order).
func (s *Store) Timeline(ctx context.Context, id string) ([]store.Event, error) {
	return sqldb.Collect(ctx, s.db, func(r sqldb.Row) (store.Event, error) {
		var e store.Event
		var at int64
		err := r.Scan(&at, &e.State, &e.Detail)
		e.At = time.UnixMilli(at).UTC()
		return e, err
	}, `SELECT at, state, detail FROM timeline WHERE order_id = $1
		ORDER BY carrier_seq IS NOT NULL, carrier_seq, id`, id)
}

func addEvent(ctx context.Context, tx sqldb.Tx, id string, at time.Time, state, detail string, carrierSeq *int64) error {
	_, err := tx.Exec(ctx, `INSERT INTO timeline (order_id, at, state, detail, carrier_seq) VALUES ($1, $2, $3, $4, $5)`,
		id, at.UnixMilli(), state, detail, carrierSeq)
	return err
}

// orderState locks the order's row and returns its state (store.ErrNotFound for none).
func orderState(ctx context.Context, tx sqldb.Tx, id string) (string, error) {
	var state string
	err := tx.QueryRow(ctx, `SELECT state FROM orders WHERE order_id = $1`+sqldb.ForUpdate(tx), id).Scan(&state)
	if errors.Is(err, sqldb.ErrNoRows) {
		return "", store.ErrNotFound
	}
	return state, err
}

// Apply makes t in one transaction, the order's row locked: of two nodes
// applying transitions from one state, the second finds the state changed
// and applies nothing (applied=false), as does a replayed job.
func (s *Store) Apply(ctx context.Context, id string, t store.Transition) (applied bool, err error) {
	err = s.db.Tx(ctx, func(tx sqldb.Tx) error {
		state, err := orderState(ctx, tx, id)
		if err != nil {
			return err
		}
		if !slices.Contains(t.From, state) {
			return nil
		}
		now := s.now()
		set := `UPDATE orders SET state = $1, updated = $2,
			reason = CASE WHEN $3 <> '' THEN $3 ELSE reason END,
			auth_code = CASE WHEN $4 <> '' THEN $4 ELSE auth_code END,
			invoice = CASE WHEN $5 <> '' THEN $5 ELSE invoice END,
			tracking = CASE WHEN $6 <> '' THEN $6 ELSE tracking END`
		args := []any{t.To, now.UnixMilli(), t.Reason, t.AuthCode, t.Invoice, t.Tracking, id}
		if r := t.Retain; r != nil {
			// In the same statement: the row, bundle and all, is written once.
			set += `, bundle = $8, issuer_section_sha256 = $9`
			args = append(args, sqldb.NotNull(r.Bundle), r.IssuerSectionHash)
		}
		if _, err := tx.Exec(ctx, set+` WHERE order_id = $7`, args...); err != nil {
			return err
		}
		if err := addEvent(ctx, tx, id, now, t.To, t.Detail, nil); err != nil {
			return err
		}
		for _, e := range t.Notes {
			if err := addEvent(ctx, tx, id, now, e.State, e.Detail, nil); err != nil {
				return err
			}
		}
		if p := t.Payment; p != nil {
			if err := putPayment(ctx, tx, id, *p, now); err != nil {
				return err
			}
		}
		for _, j := range t.Jobs {
			if err := sqlout.Enqueue(ctx, tx, j, id, nil, now); err != nil {
				return err
			}
		}
		if t.Finishes {
			if err := sqlout.FinishIn(ctx, tx); err != nil {
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
	return s.db.Tx(ctx, func(tx sqldb.Tx) error {
		now := s.now()
		if err := addEvent(ctx, tx, id, now, state, detail, nil); err != nil {
			return err
		}
		for _, j := range jobs {
			if err := sqlout.Enqueue(ctx, tx, j, id, nil, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// CarrierEvent records a tracking event once per sequence number (the
// unique constraint decides, between nodes too); a retried event changes
// nothing and returns recorded=false. A delivered event moves a shipped
// order to delivered.
func (s *Store) CarrierEvent(ctx context.Context, id string, seq int64, status, detail string, at time.Time) (recorded bool, err error) {
	err = s.db.Tx(ctx, func(tx sqldb.Tx) error {
		n, err := tx.Exec(ctx, `INSERT INTO timeline (order_id, at, state, detail, carrier_seq) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (order_id, carrier_seq) DO NOTHING`, id, at.UnixMilli(), status, detail, seq)
		if err != nil || n == 0 {
			return err
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
	out := map[string]int{}
	err := sqldb.Each(ctx, s.db, func(r sqldb.Row) error {
		var st string
		var n int
		if err := r.Scan(&st, &n); err != nil {
			return err
		}
		out[st] = n
		return nil
	}, `SELECT state, COUNT(*) FROM orders GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("merchant: counts: %w", err)
	}
	return out, nil
}

const briefCols = `order_id, state, reason, tracking, ship_token, total`

func scanBrief(r sqldb.Row) (store.OrderBrief, error) {
	var b store.OrderBrief
	err := r.Scan(&b.ID, &b.State, &b.Reason, &b.Tracking, &b.ShipToken, &b.Total)
	return b, err
}

// Briefs returns the orders among ids that exist.
func (s *Store) Briefs(ctx context.Context, ids []string) ([]store.OrderBrief, error) {
	var out []store.OrderBrief
	for c := range slices.Chunk(ids, sqldb.ListChunk(s.db)) {
		cond, args := sqldb.In(s.db, "order_id", 1, c)
		bs, err := sqldb.Collect(ctx, s.db, scanBrief, `SELECT `+briefCols+` FROM orders WHERE `+cond, args...)
		if err != nil {
			return nil, err
		}
		out = append(out, bs...)
	}
	return out, nil
}

// EachBrief calls fn with every order while the rows stream, so millions of
// orders are never held at once.
func (s *Store) EachBrief(ctx context.Context, fn func(store.OrderBrief) error) error {
	return sqldb.Each(ctx, s.db, func(r sqldb.Row) error {
		b, err := scanBrief(r)
		if err != nil {
			return err
		}
		return fn(b)
	}, `SELECT `+briefCols+` FROM orders`)
}

// FirstReached returns the time of each order's first timeline entry in one
// of states.
func (s *Store) FirstReached(ctx context.Context, ids, states []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if len(states) == 0 {
		return out, nil
	}
	for c := range slices.Chunk(ids, sqldb.ListChunk(s.db)) {
		byID, idArgs := sqldb.In(s.db, "order_id", 1, c)
		byState, stateArgs := sqldb.In(s.db, "state", 1+len(idArgs), states)
		err := sqldb.Each(ctx, s.db, func(r sqldb.Row) error {
			var id string
			var ms int64
			if err := r.Scan(&id, &ms); err != nil {
				return err
			}
			out[id] = time.UnixMilli(ms).UTC()
			return nil
		}, `SELECT order_id, MIN(at) FROM timeline WHERE `+byID+` AND `+byState+` GROUP BY order_id`, append(idArgs, stateArgs...)...)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Tally counts the rows of the merchant's tables.
func (s *Store) Tally(ctx context.Context) (store.Tally, error) {
	var t store.Tally
	err := s.db.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM catalog), (SELECT COUNT(*) FROM orders),
		(SELECT COUNT(*) FROM timeline), (SELECT COUNT(*) FROM assisted_sessions)`).Scan(&t.Products, &t.Orders, &t.Events, &t.Sessions)
	return t, err
}
