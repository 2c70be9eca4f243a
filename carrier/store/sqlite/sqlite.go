// Package sqlite keeps the carrier's store (package store, DESIGN.md §6.6,
// §8) in one SQLite database: shipments, their events, and the outbox that
// delivers the events, written in the same transaction as each event.
package sqlite

import (
	"cmp"
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"orderseal/carrier/api"
	"orderseal/carrier/store"
	"orderseal/internal/dsn"
	"orderseal/internal/outbox"
	outboxsql "orderseal/internal/outbox/sqlite"
	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncesql"
	"orderseal/internal/sqlitex"
)

// migrations are the numbered schema versions; never edit one, append.
var migrations = []string{
	`CREATE TABLE shipments (
		tracking        TEXT PRIMARY KEY,
		merchant        TEXT NOT NULL,
		order_id        TEXT NOT NULL,
		header_hash     BLOB NOT NULL CHECK (length(header_hash) = 32),
		ship_token      TEXT NOT NULL,
		token_source    TEXT NOT NULL CHECK (token_source IN ('granted', 'deposited')),
		invoice         TEXT NOT NULL,
		recipient_name  TEXT NOT NULL DEFAULT '',
		recipient_phone TEXT NOT NULL DEFAULT '',
		gift_note       TEXT NOT NULL DEFAULT '',
		status          TEXT NOT NULL,
		booked          TEXT NOT NULL,
		events_url      TEXT NOT NULL,
		UNIQUE (merchant, order_id)
	);
	CREATE TABLE events (
		tracking TEXT    NOT NULL REFERENCES shipments (tracking),
		seq      INTEGER NOT NULL CHECK (seq >= 1),
		status   TEXT    NOT NULL,
		at       TEXT    NOT NULL,
		note     TEXT    NOT NULL DEFAULT '',
		PRIMARY KEY (tracking, seq)
	);`,
	outboxsql.Migration,
	noncesql.Migration, // 3: the replay memory of signed requests (DESIGN.md §5 "Hardening")
	// 4: the merchant's parcel declaration and the bundle's section policy.
	`ALTER TABLE shipments ADD COLUMN parcel TEXT NOT NULL DEFAULT '';
	ALTER TABLE shipments ADD COLUMN policy TEXT NOT NULL DEFAULT '';`,
}

// Store is the carrier's database. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	outbox  *outboxsql.Store
	country string
	now     func() time.Time
	rand    io.Reader
}

var _ store.Store = (*Store)(nil)

// path returns the file a DSN names, refusing any other scheme (the
// parameters named dsn hide the package).
var path = dsn.SQLitePath

// Open opens the database dsn names (sqlite:PATH or a bare path) and applies
// the migrations.
func Open(ctx context.Context, dsn string, opt store.Options) (*Store, error) {
	return open(ctx, dsn, opt, false)
}

// OpenReadOnly opens the database for reading only (labels, listings); it
// runs no migration and refuses (store.ErrNotMigrated) a database that is
// not at this version.
func OpenReadOnly(ctx context.Context, dsn string) (*Store, error) {
	return open(ctx, dsn, store.Options{}, true)
}

func open(ctx context.Context, dsn string, cfg store.Options, readOnly bool) (*Store, error) {
	s := &Store{country: cfg.Country, now: cfg.Now, rand: cfg.Rand}
	if s.country == "" {
		s.country = "DE"
	}
	if err := store.CheckCountry(s.country); err != nil {
		return nil, err
	}
	p, err := path(dsn)
	if err != nil {
		return nil, err
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	var opts []sqlitex.Option
	switch {
	case readOnly:
		opts = append(opts, sqlitex.ReadOnly())
	case cfg.MustExist:
		opts = append(opts, sqlitex.MustExist(), sqlitex.Immediate(), sqlitex.Serialized())
	default:
		opts = append(opts, sqlitex.Immediate(), sqlitex.Serialized())
	}
	db, err := sqlitex.Open(p, opts...)
	if err != nil {
		return nil, err
	}
	if readOnly {
		v, err := sqlitex.Version(ctx, db)
		if err == nil && v != len(migrations) {
			err = fmt.Errorf("%w (schema version %d, want %d)", store.ErrNotMigrated, v, len(migrations))
		}
		if err != nil {
			db.Close()
			if !errors.Is(err, store.ErrNotMigrated) {
				err = fmt.Errorf("%w: %w", store.ErrNotMigrated, err)
			}
			return nil, err
		}
	} else if err := sqlitex.Migrate(ctx, db, migrations); err != nil {
		db.Close()
		return nil, err
	}
	s.db, s.outbox = db, outboxsql.New(db)
	return s, nil
}

// Outbox is the queue of tracking events to deliver, in the same database.
func (s *Store) Outbox() outbox.Store { return s.outbox }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Nonces is the signed requests' replay memory in this database (store.Store).
func (s *Store) Nonces(quota nonce.Quota) nonce.Store { return noncesql.New(s.db, quota) }

// Book records sh as a new shipment with a fresh tracking number and status
// booked, and returns it with created true. When (merchant, order id) is
// booked already with the same header hash, invoice and events URL, it
// returns that shipment with created false: a retry gets the same answer.
// Anything else under a booked order id is store.ErrOrderIDReused.
func (s *Store) Book(ctx context.Context, sh store.Shipment) (store.Shipment, bool, error) {
	if err := sh.Check(); err != nil {
		return store.Shipment{}, false, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return store.Shipment{}, false, err
	}
	defer tx.Rollback()
	old, err := scanShipment(tx.QueryRowContext(ctx, selectShipment+` WHERE merchant = ? AND order_id = ?`, sh.Merchant, sh.OrderID))
	switch {
	case err == nil:
		if old.HeaderHash != sh.HeaderHash || old.Invoice != sh.Invoice || old.EventsURL != sh.EventsURL {
			return store.Shipment{}, false, store.ErrOrderIDReused
		}
		return old, false, nil
	case !errors.Is(err, store.ErrNotFound):
		return store.Shipment{}, false, err
	}
	sh.Status = api.StatusBooked
	sh.Booked = s.now().UTC().Truncate(time.Second)
	for range store.MaxTrackingTries {
		if sh.Tracking, err = store.NewTracking(s.rand, cmp.Or(sh.Origin, s.country)); err != nil {
			return store.Shipment{}, false, err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM shipments WHERE tracking = ?`, sh.Tracking).Scan(&n); err != nil {
			return store.Shipment{}, false, err
		}
		if n == 0 {
			break
		}
		sh.Tracking = ""
	}
	if sh.Tracking == "" {
		return store.Shipment{}, false, errors.New("carrier: no free tracking number found; the serial space is nearly full")
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO shipments (tracking, merchant, order_id, header_hash, ship_token, token_source,
		invoice, recipient_name, recipient_phone, gift_note, status, booked, events_url, parcel, policy)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sh.Tracking, sh.Merchant, sh.OrderID, sh.HeaderHash[:], sh.ShipToken, string(sh.Source), sh.Invoice,
		sh.RecipientName, sh.RecipientPhone, sh.GiftNote, sh.Status, sh.Booked.Format(store.TimeLayout), sh.EventsURL,
		sh.Parcel, sh.Policy)
	if err != nil {
		return store.Shipment{}, false, err
	}
	if err := tx.Commit(); err != nil {
		return store.Shipment{}, false, err
	}
	return sh, true, nil
}

const selectShipment = `SELECT tracking, merchant, order_id, header_hash, ship_token, token_source, invoice,
	recipient_name, recipient_phone, gift_note, status, booked, events_url, parcel, policy FROM shipments`

type scanner interface{ Scan(dest ...any) error }

func scanShipment(row scanner) (store.Shipment, error) {
	var sh store.Shipment
	var hh []byte
	var src, booked string
	err := row.Scan(&sh.Tracking, &sh.Merchant, &sh.OrderID, &hh, &sh.ShipToken, &src, &sh.Invoice,
		&sh.RecipientName, &sh.RecipientPhone, &sh.GiftNote, &sh.Status, &booked, &sh.EventsURL, &sh.Parcel, &sh.Policy)
	if errors.Is(err, sql.ErrNoRows) {
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
	return scanShipment(s.db.QueryRowContext(ctx, selectShipment+` WHERE tracking = ?`, strings.ToUpper(tracking)))
}

// ByOrder returns merchant's shipment for orderID.
func (s *Store) ByOrder(ctx context.Context, merchant, orderID string) (store.Shipment, error) {
	return scanShipment(s.db.QueryRowContext(ctx, selectShipment+` WHERE merchant = ? AND order_id = ?`, merchant, orderID))
}

// List returns every shipment, newest booking first.
func (s *Store) List(ctx context.Context) ([]store.Shipment, error) {
	return s.shipments(ctx, selectShipment+` ORDER BY booked DESC, tracking`)
}

// MerchantShipments returns one merchant's shipments, newest booking first.
func (s *Store) MerchantShipments(ctx context.Context, merchant string) ([]store.Shipment, error) {
	return s.shipments(ctx, selectShipment+` WHERE merchant = ? ORDER BY booked DESC, tracking`, merchant)
}

// shipments runs a query selecting selectShipment's columns and scans every row.
func (s *Store) shipments(ctx context.Context, q string, args ...any) ([]store.Shipment, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Shipment
	for rows.Next() {
		sh, err := scanShipment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sh)
	}
	return out, rows.Err()
}

// Ping reads the database once.
func (s *Store) Ping(ctx context.Context) error { return sqlitex.Ping(ctx, s.db) }
