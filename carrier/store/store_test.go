package store

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"orderseal/carrier/api"
	outboxsql "orderseal/internal/outbox/sqlite"
)

func openStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	if cfg.Path == "" {
		cfg.Path = filepath.Join(t.TempDir(), "carrier.db")
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func sample(orderID string) Shipment {
	return Shipment{Merchant: "merchant:shop.example", OrderID: orderID, HeaderHash: [32]byte{1, 2, 3},
		ShipToken: "tok_abc_adr", Source: Granted, Invoice: "INV-1", RecipientName: "Bob Beispiel",
		RecipientPhone: "+4917698765432", EventsURL: "http://127.0.0.1:1/events"}
}

func TestBook(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)
	s := openStore(t, Config{Now: func() time.Time { return now }, Country: "AT"})

	sh, created, err := s.Book(ctx, sample("ord-1"))
	if err != nil || !created {
		t.Fatalf("book: %v created=%v", err, created)
	}
	if err := api.ValidateTracking(sh.Tracking); err != nil || !strings.HasPrefix(sh.Tracking, "OS") || !strings.HasSuffix(sh.Tracking, "AT") {
		t.Fatalf("tracking %q: %v", sh.Tracking, err)
	}
	if sh.Status != api.StatusBooked || !sh.Booked.Equal(now.Truncate(time.Second)) {
		t.Fatalf("booked shipment %+v", sh)
	}
	got, err := s.Lookup(ctx, strings.ToLower(sh.Tracking))
	if err != nil || got != sh {
		t.Fatalf("lookup: %+v %v, want %+v", got, err, sh)
	}

	tests := []struct {
		name    string
		edit    func(*Shipment)
		want    error
		created bool
	}{
		{"retry gets the same shipment", func(*Shipment) {}, nil, false},
		{"another header hash", func(x *Shipment) { x.HeaderHash[0] = 9 }, ErrOrderIDReused, false},
		{"another invoice", func(x *Shipment) { x.Invoice = "INV-2" }, ErrOrderIDReused, false},
		{"another events URL", func(x *Shipment) { x.EventsURL = "http://127.0.0.1:2/e" }, ErrOrderIDReused, false},
		{"another merchant, same order id", func(x *Shipment) { x.Merchant = "merchant:other.example" }, nil, true},
		{"no token", func(x *Shipment) { x.OrderID, x.ShipToken = "ord-2", "" }, ErrInvalid, false},
		{"bad source", func(x *Shipment) { x.OrderID, x.Source = "ord-3", "inline" }, ErrInvalid, false},
		{"no header hash", func(x *Shipment) { x.OrderID, x.HeaderHash = "ord-4", [32]byte{} }, ErrInvalid, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := sample("ord-1")
			tt.edit(&in)
			out, created, err := s.Book(ctx, in)
			if !errors.Is(err, tt.want) || created != tt.created {
				t.Fatalf("err %v created %v, want %v %v", err, created, tt.want, tt.created)
			}
			if err == nil && !created && out != sh {
				t.Fatalf("retry answered %+v, want %+v", out, sh)
			}
		})
	}
	list, err := s.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %d %v", len(list), err)
	}
}

// Concurrent bookings of one order make one shipment, and every caller gets it.
func TestBookConcurrent(t *testing.T) {
	s := openStore(t, Config{})
	var wg sync.WaitGroup
	got := make([]Shipment, 8)
	errs := make([]error, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _, errs[i] = s.Book(context.Background(), sample("ord-c"))
		}()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i] != got[0] {
			t.Fatalf("booking %d: %+v %v, want %+v", i, got[i], errs[i], got[0])
		}
	}
}

// A serial that is taken is drawn again.
func TestTrackingCollision(t *testing.T) {
	ctx := context.Background()
	// Both bookings draw serial 00000000 first; the second then draws 11111111.
	r := bytes.NewReader(append(append(make([]byte, 8), make([]byte, 8)...), bytes.Repeat([]byte{1}, 8)...))
	s := openStore(t, Config{Rand: r})
	a, _, err := s.Book(ctx, sample("ord-a"))
	if err != nil || a.Tracking != "OS000000005DE" {
		t.Fatalf("first: %s %v", a.Tracking, err)
	}
	b, _, err := s.Book(ctx, sample("ord-b"))
	if err != nil || b.Tracking != "OS111111115DE" { // 44 mod 11 = 0 → 5
		t.Fatalf("second: %s %v", b.Tracking, err)
	}
	if err := api.ValidateTracking(b.Tracking); err != nil {
		t.Fatal(err)
	}
}

func TestTransitions(t *testing.T) {
	tests := []struct {
		path []string
		ok   bool
	}{
		{[]string{"picked-up", "in-transit", "in-transit", "out-for-delivery", "delivered"}, true},
		{[]string{"picked-up", "exception", "out-for-delivery", "delivered", "returned"}, true},
		{[]string{"returned"}, true},
		{[]string{"delivered"}, false},
		{[]string{"picked-up", "picked-up"}, false},
		{[]string{"in-transit", "delivered", "in-transit"}, false},
		{[]string{"in-transit", "delivered", "exception"}, false},
		{[]string{"in-transit", "delivered", "delivered"}, false},
		{[]string{"returned", "in-transit"}, false},
		{[]string{"returned", "returned"}, false},
		{[]string{"booked"}, false},
		{[]string{"lost"}, false},
	}
	for _, tt := range tests {
		from, ok := api.StatusBooked, true
		for _, to := range tt.path {
			ok = ok && Allowed(from, to)
			from = to
		}
		if ok != tt.ok {
			t.Errorf("%v: allowed %v, want %v", tt.path, ok, tt.ok)
		}
	}
}

func TestAddEvent(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, Config{})
	sh, _, err := s.Book(ctx, sample("ord-e"))
	if err != nil {
		t.Fatal(err)
	}
	for i, st := range []string{"picked-up", "in-transit", "delivered"} {
		ev, err := s.AddEvent(ctx, sh.Tracking, st, "hub "+st)
		if err != nil || ev.Seq != int64(i+1) || ev.Status != st {
			t.Fatalf("event %d: %+v %v", i, ev, err)
		}
	}
	if _, err := s.AddEvent(ctx, sh.Tracking, "in-transit", ""); !errors.Is(err, ErrTransition) {
		t.Fatalf("in-transit after delivered: %v", err)
	}
	if _, err := s.AddEvent(ctx, sh.Tracking, "lost", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown status: %v", err)
	}
	if _, err := s.AddEvent(ctx, sh.Tracking, "returned", "line\nbreak"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("two-line note: %v", err)
	}
	if _, err := s.AddEvent(ctx, sh.Tracking, "returned", strings.Repeat("x", MaxNoteLen+1)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("long note: %v", err)
	}
	if _, err := s.AddEvent(ctx, "OS000000005DE", "returned", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown tracking: %v", err)
	}
	got, _ := s.Lookup(ctx, sh.Tracking)
	if got.Status != api.StatusDelivered {
		t.Fatalf("status %s", got.Status)
	}
	evs, states, err := s.Events(ctx, sh.Tracking)
	if err != nil || len(evs) != 3 || evs[2].Note != "hub delivered" || states[0] != "pending" {
		t.Fatalf("events %+v %v %v", evs, states, err)
	}
	// One outbox job per event, with everything delivery needs.
	st, err := outboxsql.New(s.DB()).Count(ctx, "")
	if err != nil || st.Pending != 3 {
		t.Fatalf("outbox %+v %v", st, err)
	}
	var payload []byte
	if err := s.DB().QueryRow(`SELECT payload FROM outbox WHERE key = ?`, sh.Tracking+"/3").Scan(&payload); err != nil {
		t.Fatal(err)
	}
	d, err := ParseDelivery(payload)
	if err != nil || d.Merchant != sh.Merchant || d.EventsURL != sh.EventsURL || d.Event.Seq != 3 ||
		d.Event.OrderID != "ord-e" || d.Event.Status != "delivered" || d.Event.Tracking != sh.Tracking {
		t.Fatalf("delivery %+v %v", d, err)
	}
}

func TestOpenModes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "c.db")
	if _, err := Open(ctx, Config{Path: path, MustExist: true}); err == nil {
		t.Fatal("MustExist created a database")
	}
	if _, err := Open(ctx, Config{Path: path, Country: "de"}); err == nil {
		t.Fatal("lower-case country accepted")
	}
	w := openStore(t, Config{Path: path})
	sh, _, err := w.Book(ctx, sample("ord-ro"))
	if err != nil {
		t.Fatal(err)
	}
	ro := openStore(t, Config{Path: path, ReadOnly: true})
	if got, err := ro.Lookup(ctx, sh.Tracking); err != nil || got != sh {
		t.Fatalf("read-only lookup %+v %v", got, err)
	}
	if _, _, err := ro.Book(ctx, sample("ord-ro2")); err == nil {
		t.Fatal("a read-only store booked")
	}
	// A database that is not the carrier's is refused read-only.
	other := filepath.Join(dir, "other.db")
	db, _ := Open(ctx, Config{Path: other})
	db.DB().Exec(`DELETE FROM schema_version WHERE version = 2`)
	db.Close()
	if _, err := Open(ctx, Config{Path: other, ReadOnly: true}); !errors.Is(err, ErrNotMigrated) {
		t.Fatalf("read-only open of an old schema: %v", err)
	}
}
