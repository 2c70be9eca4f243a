// Package store is the merchant's database seen through an interface
// (DESIGN.md §6.4, §8, §9): catalog, orders with their status timeline,
// assisted sessions, the dashboard's operators and their sessions, and the
// outbox of relays to the issuer, the vault and
// the carrier. It holds the sealed bundle, the merchant's own section's
// fields and tokens — never a card number or an address, which the merchant
// cannot read in the first place. Backends: store/sqlite, store/postgres
// (shared by several merchant nodes), both serving the queries of
// store/sqlstore; storetest is the suite every backend passes.
package store

import (
	"context"
	"errors"
	"time"

	"orderseal/internal/outbox"
	"orderseal/internal/signedhttp/nonce"
)

// Errors. Callers test with errors.Is.
var (
	ErrNotFound    = errors.New("merchant: no such order")
	ErrOrderReused = errors.New("merchant: order id already used by a different bundle")
	ErrNoProduct   = errors.New("merchant: no such product")
	// ErrCurrencyMixed refuses a catalog change that would leave products
	// priced in two currencies: the order form has one currency.
	ErrCurrencyMixed = errors.New("merchant: the catalog would mix currencies")
	// ErrNotMigrated refuses a read-only open of a database this version
	// did not create (or has not upgraded yet).
	ErrNotMigrated = errors.New("merchant: database has not been initialized by this version")
)

// Product is one catalog entry.
type Product struct {
	SKU, Name, Currency string
	UnitPrice           int64
}

// Order is one stored order.
type Order struct {
	ID, Cardholder string
	HeaderHash     []byte
	// Bundle is the bundle as received until the issuer has answered; from
	// then on without its issuer section (card number, expiry and, online,
	// the CVC: DESIGN.md §8 Retention), whose ciphertext's SHA-256 is
	// IssuerSectionHash.
	Bundle                      []byte
	IssuerSectionHash           []byte
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

// OrderBrief is the part of an order the test harness checks, without the
// bundle: cheap to read for millions of orders.
type OrderBrief struct {
	ID, State, Reason   string
	Tracking, ShipToken string
	Total               int64
}

// Event is one timeline entry.
type Event struct {
	At            time.Time
	State, Detail string
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
	// Notes are more timeline entries, after Detail's, each in its own state.
	Notes []Event
	// Payment, when set, is the issuer's word on the payment, recorded
	// with the change (RecordPayment's row, without its timeline entry).
	Payment *Payment
	// Finishes marks the outbox job running the change (the caller's
	// context, outbox.Running) done in the change's own transaction when
	// the change applies: the handler's last write.
	Finishes bool
	// Retain, when set, replaces the stored bundle with one whose issuer
	// section is dropped, in the same transaction as the issuer's answer.
	Retain *Retained
}

// Retained is what the merchant keeps of a bundle once the issuer has
// answered: the bundle without its issuer section, and the SHA-256 of that
// section's ciphertext.
type Retained struct {
	Bundle            []byte
	IssuerSectionHash []byte
}

// Tally counts what the store holds, so tests can show that refused input
// left nothing behind.
type Tally struct {
	Products, Orders, Events, Sessions int
}

// Reader is the read-only side of the store: what the dashboard, the CLIs
// and the test harness read.
type Reader interface {
	// Ping reads the database once: its readiness check.
	Ping(ctx context.Context) error
	// Catalog lists the products by SKU.
	Catalog(ctx context.Context) ([]Product, error)
	// Products returns the catalog's products among skus, in no order:
	// what an order's lines are checked against, without reading the
	// whole catalog.
	Products(ctx context.Context, skus []string) ([]Product, error)
	// Get returns one order, or ErrNotFound.
	Get(ctx context.Context, id string) (*Order, error)
	// GetWithoutBundle is Get without the bundle (Bundle nil), for a reader
	// that holds it parsed already; IssuerSectionHash tells which one is
	// stored (nil: the bundle as received, else the one retained). A bundle
	// is several pages of the database: reading it is most of a Get.
	GetWithoutBundle(ctx context.Context, id string) (*Order, error)
	// List returns the newest orders first, at most limit.
	List(ctx context.Context, limit int) ([]*Order, error)
	// Timeline returns an order's events: the merchant's own in the order they happened, then the carrier's by sequence number.
	Timeline(ctx context.Context, id string) ([]Event, error)
	// Counts reports how many orders are in each state.
	Counts(ctx context.Context) (map[string]int, error)
	// Briefs returns the orders among ids that exist, in no particular order.
	Briefs(ctx context.Context, ids []string) ([]OrderBrief, error)
	// EachBrief calls fn with every order, in no particular order, until fn returns an error.
	EachBrief(ctx context.Context, fn func(OrderBrief) error) error
	// FirstReached returns, for each of ids that has one, the time of its first timeline entry in one of states.
	FirstReached(ctx context.Context, ids, states []string) (map[string]time.Time, error)
	// Tally counts products, orders, timeline entries and assisted sessions.
	Tally(ctx context.Context) (Tally, error)
	// Session returns one assisted session, or ErrNoSession.
	Session(ctx context.Context, id string) (*Session, error)
	// Sessions lists a consultant's sessions, oldest login first.
	Sessions(ctx context.Context, consultant string) ([]*Session, error)
	// SessionOrders lists the orders keyed in a session, oldest first.
	SessionOrders(ctx context.Context, session string) ([]*Order, error)
	// Payment returns the issuer's last word on an order's payment; ok is false when there is none yet.
	Payment(ctx context.Context, id string) (p Payment, ok bool, err error)
	// Outbox is the queue of relay jobs, written with the orders' state changes.
	Outbox() outbox.Store
	// Close releases the store.
	Close() error
}

// Store is the merchant's store. Every method that changes an order does so
// in one durable transaction together with the outbox jobs it calls for.
// Implementations are safe for concurrent use.
type Store interface {
	Reader
	Operators
	// PutProduct adds a product or replaces its name and price.
	PutProduct(ctx context.Context, p Product) error
	// PutProducts adds or replaces products all at once or, on error, not at all; ErrCurrencyMixed if the catalog would mix currencies.
	PutProducts(ctx context.Context, ps []Product) error
	// Insert stores a new order, its first timeline entry and the job that relays it; the same id and header hash again returns the stored order and created=false, another header hash ErrOrderReused; an order of a session that is not open fails with a session error.
	Insert(ctx context.Context, o *Order, job string) (stored *Order, created bool, err error)
	// Apply makes t; applied is false, and nothing changes, when the order is in none of t.From (a replayed job).
	Apply(ctx context.Context, id string, t Transition) (applied bool, err error)
	// Note appends a timeline entry without changing the order's state, and enqueues jobs keyed by the order id.
	Note(ctx context.Context, id, state, detail string, jobs ...string) error
	// RecordPayment stores the issuer's word on an order's payment and appends detail to its timeline as a PaymentEvent, in one transaction (ErrNotFound for no order).
	RecordPayment(ctx context.Context, p Payment, detail string) error
	// Enqueue enqueues j for order id and, when j is new, appends detail to its timeline as a PaymentEvent; queued is false when a job of j's kind and key exists (ErrNotFound for no order).
	Enqueue(ctx context.Context, id string, j Job, detail string) (queued bool, err error)
	// CarrierEvent records a tracking event once per sequence number (recorded=false for a retry); delivered moves a shipped order to delivered.
	CarrierEvent(ctx context.Context, id string, seq int64, status, detail string, at time.Time) (recorded bool, err error)
	// StartSession stores a new login, ending any session still open on its consultant's device; ErrLoginReplayed for a nonce seen before.
	StartSession(ctx context.Context, sess *Session) (ended []string, err error)
	// EndSession ends a session now with reason; ending an ended session returns it unchanged.
	EndSession(ctx context.Context, id, reason string) (*Session, error)
	// Nonces is the replay memory of signed requests to this party, in
	// this database: durable, and shared by every process serving from it
	// (DESIGN.md §5 "Hardening"); each caller holds at most quota(caller)
	// live nonces (nil: nonce.DefaultQuota).
	Nonces(quota nonce.Quota) nonce.Store
}
