// Package store is the carrier's database (DESIGN.md §6.6, §8): shipments
// keyed by S10 tracking number and by (merchant, order id), their tracking
// events, and the outbox that delivers those events to the merchant.
//
// It never holds an address. A shipment names its destination by a vault
// token only: either the cardholder's own token, which the carrier may reveal
// under the grant bound to (order id, invoice), or a token the carrier
// deposited itself for an inline address it was given. The recipient's name
// and phone and the gift note do live here: the carrier is where they belong.
//
// This package holds the domain types, errors, rules and the Store
// interface; store/sqlite is the SQLite backend, store/postgres the
// PostgreSQL one (shared by several carrier nodes), storetest the suite
// every backend passes (DESIGN.md §9).
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"orderseal/carrier/api"
	"orderseal/internal/outbox"
	"orderseal/internal/signedhttp/nonce"
)

// Errors. Callers test with errors.Is.
var (
	ErrNotFound      = errors.New("carrier: no such shipment")
	ErrOrderIDReused = errors.New("carrier: order id already booked with another bundle")
	ErrTransition    = errors.New("carrier: status change not allowed")
	ErrInvalid       = errors.New("carrier: invalid shipment")
	ErrNotMigrated   = errors.New("carrier: database has not been initialized by this version")
	// ErrParcelLeft refuses to cancel a booking whose parcel has moved on
	// from booked (picked up, or any later event).
	ErrParcelLeft = errors.New("carrier: the parcel has left; the booking cannot be cancelled")
)

// CancelNote is the note of the event a cancel records.
const CancelNote = "booking cancelled by the merchant"

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
	// Origin is the S10 country of a new tracking number: the country the
	// parcel is posted in (the sender's); "": the store's Options.Country.
	Origin string
	// Parcel is the merchant's declaration (carrier/api.Parcel as JSON:
	// sender, service, weight, pieces, customs contents); "" without one.
	Parcel string
	// Policy is the id of the section policy the bundle header names.
	Policy string
}

// Check refuses a shipment that lacks what booking needs (ErrInvalid).
func (sh *Shipment) Check() error {
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

// MaxTrackingTries bounds the retries on a serial collision; with 10^8
// serials per country a collision is rare until the space fills.
const MaxTrackingTries = 16

// CheckCountry refuses a country that cannot end an S10 tracking number.
func CheckCountry(country string) error {
	if _, err := api.FormatTracking(api.TrackingService, "00000000", country); err != nil {
		return fmt.Errorf("carrier: country %q: want two upper-case letters (ISO 3166-1)", country)
	}
	return nil
}

// NewTracking draws a tracking number with a random 8-digit serial from r
// in country.
func NewTracking(r io.Reader, country string) (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	var serial [8]byte
	for i, x := range b {
		// 250 = 25·10: reject the top of the byte range so every digit is as
		// likely as any other.
		for x >= 250 {
			var one [1]byte
			if _, err := io.ReadFull(r, one[:]); err != nil {
				return "", err
			}
			x = one[0]
		}
		serial[i] = '0' + x%10
	}
	return api.FormatTracking(api.TrackingService, string(serial[:]), country)
}

// Options tune a store's behaviour; the backend's Open takes them.
type Options struct {
	Country string           // S10 country of new tracking numbers; "": DE
	Now     func() time.Time // nil: time.Now
	Rand    io.Reader        // serials; nil: crypto/rand
	// MustExist refuses to create a missing store (the event command
	// writes to the daemon's store, never to a fresh one).
	MustExist bool
}

// Reader is the read-only side of the store, for the labels, the listings
// and the test harness.
type Reader interface {
	// Ping reads the database once: its readiness check.
	Ping(ctx context.Context) error
	// Lookup returns the shipment with a tracking number (any case), or ErrNotFound.
	Lookup(ctx context.Context, tracking string) (Shipment, error)
	// ByOrder returns merchant's shipment for orderID, or ErrNotFound.
	ByOrder(ctx context.Context, merchant, orderID string) (Shipment, error)
	// List returns every shipment, newest booking first.
	List(ctx context.Context) ([]Shipment, error)
	// MerchantShipments returns one merchant's shipments, newest booking first.
	MerchantShipments(ctx context.Context, merchant string) ([]Shipment, error)
	// Events returns a shipment's events in order, each with its delivery state in the outbox ("pending", "done", "failed").
	Events(ctx context.Context, tracking string) ([]Event, []string, error)
	// Outbox is the queue of tracking events to deliver, written with the events.
	Outbox() outbox.Store
	// Close releases the store.
	Close() error
}

// Store is the carrier's store. Implementations are safe for concurrent use.
type Store interface {
	Reader
	// Book records a new shipment with a fresh tracking number (created true); the same order again with the same header hash, invoice and events URL returns the booked one (created false), anything else ErrOrderIDReused.
	Book(ctx context.Context, sh Shipment) (Shipment, bool, error)
	// AddEvent records a shipment's next event and status and, in the same transaction, the job that posts it to the merchant; ErrTransition for a change Allowed refuses.
	AddEvent(ctx context.Context, tracking, status, note string) (Event, error)
	// Cancel cancels merchant's booking for orderID while its status is booked: the status becomes cancelled, with a cancelled event (CancelNote) and the job that posts it to the merchant, in one transaction (changed true). A booking cancelled already is returned as it is (changed false); ErrNotFound for no booking, ErrParcelLeft for a parcel in any other status, and nothing changes.
	Cancel(ctx context.Context, merchant, orderID string) (sh Shipment, changed bool, err error)
	// Nonces is the replay memory of signed requests to this party, in
	// this database: durable, and shared by every process serving from it
	// (DESIGN.md §5 "Hardening"); each caller holds at most quota(caller)
	// live nonces (nil: nonce.DefaultQuota).
	Nonces(quota nonce.Quota) nonce.Store
}
