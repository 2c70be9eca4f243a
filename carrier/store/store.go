// Package store is the carrier's database (DESIGN.md §6.6, §8): shipments
// keyed by S10 tracking number and by (merchant, order id), their tracking
// events, and the outbox that delivers those events to the merchant.
//
// It never holds an address. A shipment names its destination by a vault
// token only: either the cardholder's own token, which the carrier may reveal
// under the grant bound to (order id, invoice), or a token the carrier
// deposited itself for an inline address it was given. The recipient's name
// and phone and the gift note do live here: the carrier is where they belong.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"orderseal/carrier/api"
	outboxsql "orderseal/internal/outbox/sqlite"
	"orderseal/internal/sqlitex"
)

// Errors. Callers test with errors.Is.
var (
	ErrNotFound      = errors.New("carrier: no such shipment")
	ErrOrderIDReused = errors.New("carrier: order id already booked with another bundle")
	ErrTransition    = errors.New("carrier: status change not allowed")
	ErrInvalid       = errors.New("carrier: invalid shipment")
	ErrNotMigrated   = errors.New("carrier: database has not been initialized by this version")
)

// Source says where a shipment's token came from.
type Source string

// Token sources.
const (
	// Granted: the cardholder's own vault token; revealed with the grant
	// bound to the order id and invoice.
	Granted Source = "granted"
	// Deposited: an inline address the carrier deposited in the vault as
	// its own token; revealed as owner.
	Deposited Source = "deposited"
)

// JobTrackingEvent is the outbox job kind that posts one tracking event to
// the merchant; its key is "<tracking>/<seq>".
const JobTrackingEvent = "tracking-event"

// TimeLayout is how times are kept and shown: RFC 3339, UTC, whole seconds.
const TimeLayout = time.RFC3339

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
}

// Config says where the database is and how to open it.
type Config struct {
	Path     string
	Country  string           // S10 country of new tracking numbers; "": DE
	Now      func() time.Time // nil: time.Now
	Rand     io.Reader        // serials; nil: crypto/rand
	ReadOnly bool             // open for reading only (labels, listings); runs no migration
	// MustExist refuses to create a missing database (the event command
	// writes to the daemon's database, never to a fresh one).
	MustExist bool
}

// Store is the carrier's persistence. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	country string
	now     func() time.Time
	rand    io.Reader
}

// Open opens the database and, unless read-only, applies the migrations. A
// read-only open refuses a database that is not at this version.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	s := &Store{country: cfg.Country, now: cfg.Now, rand: cfg.Rand}
	if s.country == "" {
		s.country = "DE"
	}
	if _, err := api.FormatTracking(api.TrackingService, "00000000", s.country); err != nil {
		return nil, fmt.Errorf("carrier: country %q: want two upper-case letters (ISO 3166-1)", cfg.Country)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	var opts []sqlitex.Option
	switch {
	case cfg.ReadOnly:
		opts = append(opts, sqlitex.ReadOnly())
	case cfg.MustExist:
		opts = append(opts, sqlitex.MustExist(), sqlitex.Immediate(), sqlitex.Serialized())
	default:
		opts = append(opts, sqlitex.Immediate(), sqlitex.Serialized())
	}
	db, err := sqlitex.Open(cfg.Path, opts...)
	if err != nil {
		return nil, err
	}
	if cfg.ReadOnly {
		v, err := sqlitex.Version(ctx, db)
		if err == nil && v != len(migrations) {
			err = fmt.Errorf("%w (schema version %d, want %d)", ErrNotMigrated, v, len(migrations))
		}
		if err != nil {
			db.Close()
			if !errors.Is(err, ErrNotMigrated) {
				err = fmt.Errorf("%w: %w", ErrNotMigrated, err)
			}
			return nil, err
		}
	} else if err := sqlitex.Migrate(ctx, db, migrations); err != nil {
		db.Close()
		return nil, err
	}
	s.db = db
	return s, nil
}

// DB is the underlying database, for the outbox runner.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Shipment is one booked parcel. It holds a token, never an address.
type Shipment struct {
	Tracking       string
	Merchant       string
	OrderID        string
	HeaderHash     [32]byte
	ShipToken      string
	Source         Source
	Invoice        string
	RecipientName  string
	RecipientPhone string
	GiftNote       string
	Status         string
	Booked         time.Time // UTC, whole seconds
	EventsURL      string
}

func (sh *Shipment) check() error {
	switch {
	case sh.Merchant == "" || sh.OrderID == "" || sh.ShipToken == "" || sh.Invoice == "" || sh.EventsURL == "":
		return fmt.Errorf("%w: merchant, order id, token, invoice and events URL are required", ErrInvalid)
	case sh.Source != Granted && sh.Source != Deposited:
		return fmt.Errorf("%w: token source %q", ErrInvalid, sh.Source)
	case sh.HeaderHash == [32]byte{}:
		return fmt.Errorf("%w: header hash is required", ErrInvalid)
	}
	return nil
}

// maxTrackingTries bounds the retries on a serial collision; with 10^8
// serials per country a collision is rare until the space fills.
const maxTrackingTries = 16

// newTracking draws a random 8-digit serial.
func (s *Store) newTracking() (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", err
	}
	var serial [8]byte
	for i, x := range b {
		// 250 = 25·10: reject the top of the byte range so every digit is as
		// likely as any other.
		for x >= 250 {
			var one [1]byte
			if _, err := io.ReadFull(s.rand, one[:]); err != nil {
				return "", err
			}
			x = one[0]
		}
		serial[i] = '0' + x%10
	}
	return api.FormatTracking(api.TrackingService, string(serial[:]), s.country)
}

// Book records sh as a new shipment with a fresh tracking number and status
// booked, and returns it with created true. When (merchant, order id) is
// booked already with the same header hash, invoice and events URL, it
// returns that shipment with created false: a retry gets the same answer.
// Anything else under a booked order id is ErrOrderIDReused.
func (s *Store) Book(ctx context.Context, sh Shipment) (Shipment, bool, error) {
	if err := sh.check(); err != nil {
		return Shipment{}, false, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Shipment{}, false, err
	}
	defer tx.Rollback()
	old, err := scanShipment(tx.QueryRowContext(ctx, selectShipment+` WHERE merchant = ? AND order_id = ?`, sh.Merchant, sh.OrderID))
	switch {
	case err == nil:
		if old.HeaderHash != sh.HeaderHash || old.Invoice != sh.Invoice || old.EventsURL != sh.EventsURL {
			return Shipment{}, false, ErrOrderIDReused
		}
		return old, false, nil
	case !errors.Is(err, ErrNotFound):
		return Shipment{}, false, err
	}
	sh.Status = api.StatusBooked
	sh.Booked = s.now().UTC().Truncate(time.Second)
	for range maxTrackingTries {
		if sh.Tracking, err = s.newTracking(); err != nil {
			return Shipment{}, false, err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM shipments WHERE tracking = ?`, sh.Tracking).Scan(&n); err != nil {
			return Shipment{}, false, err
		}
		if n == 0 {
			break
		}
		sh.Tracking = ""
	}
	if sh.Tracking == "" {
		return Shipment{}, false, errors.New("carrier: no free tracking number found; the serial space is nearly full")
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO shipments (tracking, merchant, order_id, header_hash, ship_token, token_source,
		invoice, recipient_name, recipient_phone, gift_note, status, booked, events_url) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sh.Tracking, sh.Merchant, sh.OrderID, sh.HeaderHash[:], sh.ShipToken, string(sh.Source), sh.Invoice,
		sh.RecipientName, sh.RecipientPhone, sh.GiftNote, sh.Status, sh.Booked.Format(TimeLayout), sh.EventsURL)
	if err != nil {
		return Shipment{}, false, err
	}
	if err := tx.Commit(); err != nil {
		return Shipment{}, false, err
	}
	return sh, true, nil
}

const selectShipment = `SELECT tracking, merchant, order_id, header_hash, ship_token, token_source, invoice,
	recipient_name, recipient_phone, gift_note, status, booked, events_url FROM shipments`

type scanner interface{ Scan(dest ...any) error }

func scanShipment(row scanner) (Shipment, error) {
	var sh Shipment
	var hh []byte
	var src, booked string
	err := row.Scan(&sh.Tracking, &sh.Merchant, &sh.OrderID, &hh, &sh.ShipToken, &src, &sh.Invoice,
		&sh.RecipientName, &sh.RecipientPhone, &sh.GiftNote, &sh.Status, &booked, &sh.EventsURL)
	if errors.Is(err, sql.ErrNoRows) {
		return sh, ErrNotFound
	}
	if err != nil {
		return sh, err
	}
	if len(hh) != 32 {
		return sh, fmt.Errorf("carrier: shipment %s: corrupt header hash", sh.Tracking)
	}
	sh.HeaderHash = [32]byte(hh)
	sh.Source = Source(src)
	if sh.Booked, err = time.Parse(TimeLayout, booked); err != nil {
		return sh, fmt.Errorf("carrier: shipment %s: corrupt booked time", sh.Tracking)
	}
	return sh, nil
}

// Lookup returns the shipment with tracking number tracking.
func (s *Store) Lookup(ctx context.Context, tracking string) (Shipment, error) {
	return scanShipment(s.db.QueryRowContext(ctx, selectShipment+` WHERE tracking = ?`, strings.ToUpper(tracking)))
}

// ByOrder returns merchant's shipment for orderID.
func (s *Store) ByOrder(ctx context.Context, merchant, orderID string) (Shipment, error) {
	return scanShipment(s.db.QueryRowContext(ctx, selectShipment+` WHERE merchant = ? AND order_id = ?`, merchant, orderID))
}

// List returns every shipment, newest booking first.
func (s *Store) List(ctx context.Context) ([]Shipment, error) {
	rows, err := s.db.QueryContext(ctx, selectShipment+` ORDER BY booked DESC, tracking`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Shipment
	for rows.Next() {
		sh, err := scanShipment(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sh)
	}
	return out, rows.Err()
}
