// Package sqlstore is the carrier's store (package store, DESIGN.md §6.6,
// §8, §9) written once against internal/sqldb, for every SQL backend:
// shipments, their tracking events and, in the same transaction as each
// event, the outbox job that delivers it to the merchant (sqlout.Enqueue).
// The backend packages (store/sqlite, store/postgres) keep their
// migrations, Open, the outbox's claim and the replay memory of signed
// requests.
//
// Several carrier nodes may share one PostgreSQL database: a booking holds
// an advisory lock on its (merchant, order id) (Tx.Lock), and an event or a
// cancel its shipment's row (ForUpdate), so retries on two nodes book once
// and events are numbered without gaps or twins. On SQLite those locks are
// no-ops: its write transactions exclude each other (the backend opens the
// database with sqlitex.Immediate and one connection).
package sqlstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"orderseal/carrier/api"
	"orderseal/carrier/store"
	"orderseal/internal/outbox"
	"orderseal/internal/sqldb"
)

// Store is the carrier's database as one process sees it. Safe for
// concurrent use. It is every method of store.Store but Nonces, which each
// backend adds.
type Store struct {
	db      sqldb.DB
	outbox  outbox.Store
	country string
	now     func() time.Time
	rand    io.Reader
}

// Options returns opt with its defaults filled in (country DE, time.Now,
// crypto/rand), or an error for a country that cannot end a tracking
// number. A backend calls it before it opens anything.
func Options(opt store.Options) (store.Options, error) {
	opt.Country = cmp.Or(opt.Country, "DE")
	if err := store.CheckCountry(opt.Country); err != nil {
		return opt, err
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Rand == nil {
		opt.Rand = rand.Reader
	}
	return opt, nil
}

// New serves the carrier's tables of db, which the backend has migrated;
// jobs is the outbox table of the same database, as the backend serves it;
// opt is what Options returned.
func New(db sqldb.DB, jobs outbox.Store, opt store.Options) *Store {
	return &Store{db: db, outbox: jobs, country: opt.Country, now: opt.Now, rand: opt.Rand}
}

// Outbox is the queue of tracking events to deliver, in the same database.
func (s *Store) Outbox() outbox.Store { return s.outbox }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping reads the database once.
func (s *Store) Ping(ctx context.Context) error { return s.db.Ping(ctx) }

// Book records sh as a new shipment with a fresh tracking number and status
// booked, and returns it with created true. When (merchant, order id) is
// booked already, by any node, with the same header hash, invoice and
// events URL, it returns that shipment with created false: a retry gets
// the same answer. Anything else under a booked order id is
// store.ErrOrderIDReused.
func (s *Store) Book(ctx context.Context, sh store.Shipment) (out store.Shipment, created bool, err error) {
	if err := sh.Check(); err != nil {
		return store.Shipment{}, false, err
	}
	err = s.db.Tx(ctx, func(tx sqldb.Tx) error {
		// The order's row may not exist yet, so nothing to lock FOR UPDATE:
		// the lock is on its key. The key's text is the one earlier nodes
		// hashed ('book ' || merchant || ' ' || order id), so old and new
		// nodes exclude each other during an upgrade.
		if err := tx.Lock(ctx, "book "+sh.Merchant+" "+sh.OrderID); err != nil {
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
			// A serial another booking holds is drawn again.
			n, err := tx.Exec(ctx, `INSERT INTO shipments (tracking, merchant, order_id, header_hash, ship_token, token_source,
				invoice, recipient_name, recipient_phone, gift_note, status, booked, events_url, parcel, policy)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT (tracking) DO NOTHING`,
				sh.Tracking, sh.Merchant, sh.OrderID, sh.HeaderHash[:], sh.ShipToken, string(sh.Source), sh.Invoice,
				sh.RecipientName, sh.RecipientPhone, sh.GiftNote, sh.Status, sh.Booked.Format(store.TimeLayout), sh.EventsURL,
				sh.Parcel, sh.Policy)
			if err != nil {
				return err
			}
			if n == 1 {
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

func scanShipment(row sqldb.Row) (store.Shipment, error) {
	var sh store.Shipment
	var hh []byte
	var src, booked string
	err := row.Scan(&sh.Tracking, &sh.Merchant, &sh.OrderID, &hh, &sh.ShipToken, &src, &sh.Invoice,
		&sh.RecipientName, &sh.RecipientPhone, &sh.GiftNote, &sh.Status, &booked, &sh.EventsURL, &sh.Parcel, &sh.Policy)
	if errors.Is(err, sqldb.ErrNoRows) {
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

// Lookup returns the shipment with tracking number tracking (any case).
func (s *Store) Lookup(ctx context.Context, tracking string) (store.Shipment, error) {
	return scanShipment(s.db.QueryRow(ctx, selectShipment+` WHERE tracking = $1`, strings.ToUpper(tracking)))
}

// ByOrder returns merchant's shipment for orderID.
func (s *Store) ByOrder(ctx context.Context, merchant, orderID string) (store.Shipment, error) {
	return scanShipment(s.db.QueryRow(ctx, selectShipment+` WHERE merchant = $1 AND order_id = $2`, merchant, orderID))
}

// List returns every shipment, newest booking first.
func (s *Store) List(ctx context.Context) ([]store.Shipment, error) {
	return sqldb.Collect(ctx, s.db, scanShipment, selectShipment+` ORDER BY booked DESC, tracking`)
}

// MerchantShipments returns one merchant's shipments, newest booking first.
func (s *Store) MerchantShipments(ctx context.Context, merchant string) ([]store.Shipment, error) {
	return sqldb.Collect(ctx, s.db, scanShipment, selectShipment+` WHERE merchant = $1 ORDER BY booked DESC, tracking`, merchant)
}
