// Package postgres keeps the carrier's store (package store, DESIGN.md
// §6.6, §8, §9) in a PostgreSQL database several carrier nodes share:
// shipments, their events, the outbox that delivers the events (written in
// the same transaction as each event, claimed under leases by
// internal/outbox/postgres) and the replay memory of signed requests.
// A booking holds an advisory lock on its (merchant, order id) and an
// event its shipment's row, so retries on two nodes book once and events
// are numbered without gaps or twins.
package postgres

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"orderseal/carrier/api"
	"orderseal/carrier/store"
	"orderseal/internal/dsn"
	"orderseal/internal/outbox"
	outboxpg "orderseal/internal/outbox/postgres"
	"orderseal/internal/pgdb"
	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncepg"
)

// Component names the carrier's migrations in schema_version.
const Component = "carrier"

// Times are store.TimeLayout text, as in the SQLite backend.
var migrations = []string{`
CREATE TABLE shipments (
	tracking        TEXT COLLATE "C" PRIMARY KEY,
	merchant        TEXT NOT NULL,
	order_id        TEXT NOT NULL,
	header_hash     BYTEA NOT NULL CHECK (length(header_hash) = 32),
	ship_token      TEXT NOT NULL,
	token_source    TEXT NOT NULL CHECK (token_source IN ('granted', 'deposited')),
	invoice         TEXT NOT NULL,
	recipient_name  TEXT NOT NULL DEFAULT '',
	recipient_phone TEXT NOT NULL DEFAULT '',
	gift_note       TEXT NOT NULL DEFAULT '',
	status          TEXT NOT NULL,
	booked          TEXT NOT NULL,
	events_url      TEXT NOT NULL,
	parcel          TEXT NOT NULL DEFAULT '',
	policy          TEXT NOT NULL DEFAULT '',
	UNIQUE (merchant, order_id)
);
CREATE INDEX shipments_booked ON shipments (booked DESC, tracking);
CREATE TABLE events (
	tracking TEXT COLLATE "C" NOT NULL REFERENCES shipments (tracking),
	seq      BIGINT NOT NULL CHECK (seq >= 1),
	status   TEXT   NOT NULL,
	at       TEXT   NOT NULL,
	note     TEXT   NOT NULL DEFAULT '',
	PRIMARY KEY (tracking, seq)
);
`, outboxpg.Migration, noncepg.Migration}

// Store is the carrier's database as one node sees it. Safe for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	outbox  *outboxpg.Store
	country string
	now     func() time.Time
	rand    io.Reader
}

var _ store.Store = (*Store)(nil)

// Open connects to the database a postgres:// DSN names and applies the
// migrations; with opt.MustExist it refuses (store.ErrNotMigrated) one that
// holds no carrier store yet.
func Open(ctx context.Context, url string, opt store.Options) (*Store, error) {
	return open(ctx, url, opt, false)
}

// OpenReadOnly connects for reading only, in read-only sessions; it runs no
// migration and refuses (store.ErrNotMigrated) a database not at this version.
func OpenReadOnly(ctx context.Context, url string) (*Store, error) {
	return open(ctx, url, store.Options{}, true)
}

func open(ctx context.Context, url string, cfg store.Options, readOnly bool) (*Store, error) {
	s := &Store{country: cfg.Country, now: cfg.Now, rand: cfg.Rand}
	if s.country == "" {
		s.country = "DE"
	}
	if err := store.CheckCountry(s.country); err != nil {
		return nil, err
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	d, err := dsn.Parse(url)
	if err != nil {
		return nil, err
	}
	pool, err := pgdb.Open(ctx, url, 0)
	if err != nil {
		return nil, err
	}
	if readOnly || cfg.MustExist {
		v, err := version(ctx, pool)
		switch {
		case err != nil:
			err = fmt.Errorf("%w: %w", store.ErrNotMigrated, pgdb.Explain(err, d))
		case readOnly && v != len(migrations), v == 0:
			err = fmt.Errorf("%w (schema version %d, want %d)", store.ErrNotMigrated, v, len(migrations))
		}
		if err != nil {
			pool.Close()
			return nil, err
		}
	}
	if readOnly {
		pool.Close()
		pc, err := pgxpool.ParseConfig(url)
		if err != nil {
			return nil, err
		}
		pc.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
		pc.MaxConns = 2
		if pool, err = pgxpool.NewWithConfig(ctx, pc); err != nil {
			return nil, pgdb.Explain(err, d)
		}
	} else if err := pgdb.Migrate(ctx, pool, Component, migrations); err != nil {
		pool.Close()
		return nil, pgdb.Explain(err, d)
	}
	s.pool, s.outbox = pool, outboxpg.New(pool)
	return s, nil
}

// version is the carrier's schema version, 0 for a database without one.
func version(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('schema_version') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return 0, err
	}
	var v int
	err := pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version WHERE component = $1`, Component).Scan(&v)
	return v, err
}

// Outbox is the queue of tracking events to deliver, in the same database.
func (s *Store) Outbox() outbox.Store { return s.outbox }

// Close closes the pool.
func (s *Store) Close() error { s.pool.Close(); return nil }

// Nonces is the signed requests' replay memory in this database (store.Store).
func (s *Store) Nonces(quota nonce.Quota) nonce.Store { return noncepg.New(s.pool, quota) }

func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, fn)
}

// Book records sh as a new shipment with a fresh tracking number and status
// booked, and returns it with created true. When (merchant, order id) is
// booked already, by any node, with the same header hash, invoice and
// events URL, it returns that shipment with created false; anything else
// under a booked order id is store.ErrOrderIDReused.
func (s *Store) Book(ctx context.Context, sh store.Shipment) (out store.Shipment, created bool, err error) {
	if err := sh.Check(); err != nil {
		return store.Shipment{}, false, err
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('book ' || $1 || ' ' || $2, 0))`, sh.Merchant, sh.OrderID); err != nil {
			return err
		}
		old, err := scanShipment(tx.QueryRow(ctx, selectShipment+` WHERE merchant = $1 AND order_id = $2`, sh.Merchant, sh.OrderID))
		switch {
		case err == nil:
			if old.HeaderHash != sh.HeaderHash || old.Invoice != sh.Invoice || old.EventsURL != sh.EventsURL {
				return store.ErrOrderIDReused
			}
			out = old
			return nil
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		sh.Status = api.StatusBooked
		sh.Booked = s.now().UTC().Truncate(time.Second)
		for range store.MaxTrackingTries {
			if sh.Tracking, err = store.NewTracking(s.rand, cmp.Or(sh.Origin, s.country)); err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, `INSERT INTO shipments (tracking, merchant, order_id, header_hash, ship_token, token_source,
				invoice, recipient_name, recipient_phone, gift_note, status, booked, events_url, parcel, policy)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT (tracking) DO NOTHING`,
				sh.Tracking, sh.Merchant, sh.OrderID, sh.HeaderHash[:], sh.ShipToken, string(sh.Source), sh.Invoice,
				sh.RecipientName, sh.RecipientPhone, sh.GiftNote, sh.Status, sh.Booked.Format(store.TimeLayout), sh.EventsURL,
				sh.Parcel, sh.Policy)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 1 {
				out, created = sh, true
				return nil
			}
		}
		return errors.New("carrier: no free tracking number found; the serial space is nearly full")
	})
	if err != nil {
		return store.Shipment{}, false, err
	}
	return out, created, nil
}

const selectShipment = `SELECT tracking, merchant, order_id, header_hash, ship_token, token_source, invoice,
	recipient_name, recipient_phone, gift_note, status, booked, events_url, parcel, policy FROM shipments`

func scanShipment(row pgx.Row) (store.Shipment, error) {
	var sh store.Shipment
	var hh []byte
	var src, booked string
	err := row.Scan(&sh.Tracking, &sh.Merchant, &sh.OrderID, &hh, &sh.ShipToken, &src, &sh.Invoice,
		&sh.RecipientName, &sh.RecipientPhone, &sh.GiftNote, &sh.Status, &booked, &sh.EventsURL, &sh.Parcel, &sh.Policy)
	if errors.Is(err, pgx.ErrNoRows) {
		return sh, store.ErrNotFound
	}
	if err != nil {
		return sh, err
	}
	if len(hh) != 32 {
		return sh, fmt.Errorf("carrier: shipment %s: corrupt header hash", sh.Tracking)
	}
	sh.HeaderHash = [32]byte(hh)
	sh.Source = store.Source(src)
	if sh.Booked, err = time.Parse(store.TimeLayout, booked); err != nil {
		return sh, fmt.Errorf("carrier: shipment %s: corrupt booked time", sh.Tracking)
	}
	return sh, nil
}

// Lookup returns the shipment with tracking number tracking.
func (s *Store) Lookup(ctx context.Context, tracking string) (store.Shipment, error) {
	return scanShipment(s.pool.QueryRow(ctx, selectShipment+` WHERE tracking = $1`, strings.ToUpper(tracking)))
}

// ByOrder returns merchant's shipment for orderID.
func (s *Store) ByOrder(ctx context.Context, merchant, orderID string) (store.Shipment, error) {
	return scanShipment(s.pool.QueryRow(ctx, selectShipment+` WHERE merchant = $1 AND order_id = $2`, merchant, orderID))
}

// List returns every shipment, newest booking first.
func (s *Store) List(ctx context.Context) ([]store.Shipment, error) {
	return s.shipments(ctx, selectShipment+` ORDER BY booked DESC, tracking`)
}

// MerchantShipments returns one merchant's shipments, newest booking first.
func (s *Store) MerchantShipments(ctx context.Context, merchant string) ([]store.Shipment, error) {
	return s.shipments(ctx, selectShipment+` WHERE merchant = $1 ORDER BY booked DESC, tracking`, merchant)
}

func (s *Store) shipments(ctx context.Context, q string, args ...any) ([]store.Shipment, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Shipment, error) { return scanShipment(r) })
}

// AddEvent records the shipment's next event and sets its status, the
// shipment's row locked, and in the same transaction enqueues the job that
// posts the event to the merchant. A status change that makes no sense
// (see store.Allowed) is store.ErrTransition.
func (s *Store) AddEvent(ctx context.Context, tracking, status, note string) (ev store.Event, err error) {
	if err := store.CheckEvent(status, note); err != nil {
		return store.Event{}, err
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		sh, err := scanShipment(tx.QueryRow(ctx, selectShipment+` WHERE tracking = $1 FOR UPDATE`, strings.ToUpper(tracking)))
		if err != nil {
			return err
		}
		if !store.Allowed(sh.Status, status) {
			return fmt.Errorf("%w: %s is %s; it can go to %v", store.ErrTransition, tracking, sh.Status, store.NextStatuses(sh.Status))
		}
		ev, err = s.addEvent(ctx, tx, sh, status, note)
		return err
	})
	if err != nil {
		return store.Event{}, err
	}
	return ev, nil
}

// addEvent records sh's next event and status in tx, with the job that
// posts the event to the merchant; sh's row is locked.
func (s *Store) addEvent(ctx context.Context, tx pgx.Tx, sh store.Shipment, status, note string) (store.Event, error) {
	ev := store.Event{Tracking: sh.Tracking, Status: status, At: s.now().UTC().Truncate(time.Second), Note: note}
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE tracking = $1`, sh.Tracking).Scan(&ev.Seq); err != nil {
		return store.Event{}, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO events (tracking, seq, status, at, note) VALUES ($1, $2, $3, $4, $5)`,
		ev.Tracking, ev.Seq, ev.Status, ev.At.Format(store.TimeLayout), ev.Note); err != nil {
		return store.Event{}, err
	}
	if _, err := tx.Exec(ctx, `UPDATE shipments SET status = $1 WHERE tracking = $2`, status, sh.Tracking); err != nil {
		return store.Event{}, err
	}
	payload, err := store.DeliveryPayload(sh.Merchant, sh.EventsURL, ev.Wire(sh.OrderID))
	if err != nil {
		return store.Event{}, err
	}
	return ev, outboxpg.Enqueue(ctx, tx, store.JobTrackingEvent, fmt.Sprintf("%s/%d", sh.Tracking, ev.Seq), payload, s.now())
}

// Cancel cancels merchant's booking for orderID while it is booked, its
// row locked, with its cancelled event and that event's delivery job.
func (s *Store) Cancel(ctx context.Context, merchant, orderID string) (sh store.Shipment, changed bool, err error) {
	err = s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		sh, err = scanShipment(tx.QueryRow(ctx, selectShipment+` WHERE merchant = $1 AND order_id = $2 FOR UPDATE`, merchant, orderID))
		if err != nil {
			return err
		}
		switch sh.Status {
		case api.StatusCancelled:
			return nil
		case api.StatusBooked:
		default:
			return fmt.Errorf("%w (%s is %s)", store.ErrParcelLeft, sh.Tracking, sh.Status)
		}
		if _, err := s.addEvent(ctx, tx, sh, api.StatusCancelled, store.CancelNote); err != nil {
			return err
		}
		sh.Status, changed = api.StatusCancelled, true
		return nil
	})
	if err != nil {
		return store.Shipment{}, false, err
	}
	return sh, changed, nil
}

// Events returns a shipment's events in order, with each one's delivery
// state in the outbox ("pending", "done", "failed").
func (s *Store) Events(ctx context.Context, tracking string) ([]store.Event, []string, error) {
	rows, err := s.pool.Query(ctx, `SELECT e.tracking, e.seq, e.status, e.at, e.note, COALESCE(o.state, '')
		FROM events e LEFT JOIN outbox o ON o.kind = $1 AND o.key = e.tracking || '/' || e.seq
		WHERE e.tracking = $2 ORDER BY e.seq`, store.JobTrackingEvent, strings.ToUpper(tracking))
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var evs []store.Event
	var states []string
	for rows.Next() {
		var ev store.Event
		var at, state string
		if err := rows.Scan(&ev.Tracking, &ev.Seq, &ev.Status, &at, &ev.Note, &state); err != nil {
			return nil, nil, err
		}
		if ev.At, err = time.Parse(store.TimeLayout, at); err != nil {
			return nil, nil, fmt.Errorf("carrier: event %s/%d: corrupt time", ev.Tracking, ev.Seq)
		}
		evs = append(evs, ev)
		states = append(states, state)
	}
	return evs, states, rows.Err()
}

// Ping checks the database answers a query.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }
