// Package storetest is the conformance suite every carrier store backend
// passes (DESIGN.md §6.6, §9): bookings and their idempotent retries,
// tracking numbers, events with the outbox job each one enqueues, and the
// reads the CLIs and the test harness rely on.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"orderseal/carrier/api"
	"orderseal/carrier/store"
	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncetest"
)

// Open returns a fresh, empty store with opt.
type Open func(t *testing.T, opt store.Options) store.Store

// Run runs the suite.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		run  func(t *testing.T, open Open)
	}{
		{"book", testBook},
		{"book concurrent", testBookConcurrent},
		{"tracking collision", testTrackingCollision},
		{"add event", testAddEvent},
		{"cancel", testCancel},
		{"cancel concurrent", testCancelConcurrent},
		{"merchant shipments", testMerchantShipments},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open) })
	}
	t.Run("nonces", func(t *testing.T) {
		noncetest.Run(t, func(t *testing.T, quota int) nonce.Store {
			return open(t, store.Options{}).Nonces(nonce.Fixed(quota))
		})
	})
}

func sample(orderID string) store.Shipment {
	return store.Shipment{Merchant: "merchant:shop.example", OrderID: orderID, HeaderHash: [32]byte{1, 2, 3},
		ShipToken: "tok_abc_adr", Source: store.Granted, Invoice: "INV-1", RecipientName: "Bob Beispiel",
		RecipientPhone: "+4917698765432", EventsURL: "http://127.0.0.1:1/events"}
}

func testBook(t *testing.T, open Open) {
	ctx := context.Background()
	now := time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)
	s := open(t, store.Options{Now: func() time.Time { return now }, Country: "AT"})

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
		edit    func(*store.Shipment)
		want    error
		created bool
	}{
		{"retry gets the same shipment", func(*store.Shipment) {}, nil, false},
		{"another header hash", func(x *store.Shipment) { x.HeaderHash[0] = 9 }, store.ErrOrderIDReused, false},
		{"another invoice", func(x *store.Shipment) { x.Invoice = "INV-2" }, store.ErrOrderIDReused, false},
		{"another events URL", func(x *store.Shipment) { x.EventsURL = "http://127.0.0.1:2/e" }, store.ErrOrderIDReused, false},
		{"another merchant, same order id", func(x *store.Shipment) { x.Merchant = "merchant:other.example" }, nil, true},
		{"no token", func(x *store.Shipment) { x.OrderID, x.ShipToken = "ord-2", "" }, store.ErrInvalid, false},
		{"bad source", func(x *store.Shipment) { x.OrderID, x.Source = "ord-3", "inline" }, store.ErrInvalid, false},
		{"no header hash", func(x *store.Shipment) { x.OrderID, x.HeaderHash = "ord-4", [32]byte{} }, store.ErrInvalid, false},
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
func testBookConcurrent(t *testing.T, open Open) {
	s := open(t, store.Options{})
	var wg sync.WaitGroup
	got := make([]store.Shipment, 8)
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
func testTrackingCollision(t *testing.T, open Open) {
	ctx := context.Background()
	// Both bookings draw serial 00000000 first; the second then draws 11111111.
	r := bytes.NewReader(append(append(make([]byte, 8), make([]byte, 8)...), bytes.Repeat([]byte{1}, 8)...))
	s := open(t, store.Options{Rand: r})
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

func testAddEvent(t *testing.T, open Open) {
	ctx := context.Background()
	s := open(t, store.Options{})
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
	if _, err := s.AddEvent(ctx, sh.Tracking, "in-transit", ""); !errors.Is(err, store.ErrTransition) {
		t.Fatalf("in-transit after delivered: %v", err)
	}
	if _, err := s.AddEvent(ctx, sh.Tracking, "lost", ""); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("unknown status: %v", err)
	}
	if _, err := s.AddEvent(ctx, sh.Tracking, "returned", "line\nbreak"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("two-line note: %v", err)
	}
	if _, err := s.AddEvent(ctx, sh.Tracking, "returned", strings.Repeat("x", store.MaxNoteLen+1)); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("long note: %v", err)
	}
	if _, err := s.AddEvent(ctx, "OS000000005DE", "returned", ""); !errors.Is(err, store.ErrNotFound) {
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
	st, err := s.Outbox().Count(ctx, store.JobTrackingEvent)
	if err != nil || st.Pending != 3 {
		t.Fatalf("outbox %+v %v", st, err)
	}
	jobs, err := s.Outbox().Claim(ctx, time.Now().Add(time.Hour), 10)
	if err != nil || len(jobs) != 3 || jobs[2].Key != sh.Tracking+"/3" {
		t.Fatalf("jobs %+v %v", jobs, err)
	}
	d, err := store.ParseDelivery(jobs[2].Payload)
	if err != nil || d.Merchant != sh.Merchant || d.EventsURL != sh.EventsURL || d.Event.Seq != 3 ||
		d.Event.OrderID != "ord-e" || d.Event.Status != "delivered" || d.Event.Tracking != sh.Tracking {
		t.Fatalf("delivery %+v %v", d, err)
	}
}

// testCancel: a booking whose parcel has not left is cancelled once, with
// its event and delivery job; a retry answers the same and adds nothing; a
// cancelled booking takes no event; a parcel that left, an unknown order and
// another merchant's order are refused and change nothing.
func testCancel(t *testing.T, open Open) {
	ctx := context.Background()
	s := open(t, store.Options{})
	sh, _, err := s.Book(ctx, sample("ord-x"))
	if err != nil {
		t.Fatal(err)
	}
	left, _, err := s.Book(ctx, sample("ord-y"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddEvent(ctx, left.Tracking, api.StatusPickedUp, ""); err != nil {
		t.Fatal(err)
	}
	jobs := func() int {
		t.Helper()
		n, err := s.Outbox().Count(ctx, store.JobTrackingEvent)
		if err != nil {
			t.Fatal(err)
		}
		return n.Pending
	}
	got, changed, err := s.Cancel(ctx, sh.Merchant, "ord-x")
	if err != nil || !changed || got.Tracking != sh.Tracking || got.Status != api.StatusCancelled {
		t.Fatalf("cancel: %+v changed=%v %v", got, changed, err)
	}
	if jobs() != 2 {
		t.Fatalf("%d delivery jobs, want the pickup's and the cancel's", jobs())
	}
	again, changed, err := s.Cancel(ctx, sh.Merchant, "ord-x")
	if err != nil || changed || again != got {
		t.Fatalf("second cancel: %+v changed=%v %v, want %+v", again, changed, err, got)
	}
	evs, _, err := s.Events(ctx, sh.Tracking)
	if err != nil || len(evs) != 1 || evs[0].Status != api.StatusCancelled || evs[0].Note != store.CancelNote || evs[0].Seq != 1 || jobs() != 2 {
		t.Fatalf("events after two cancels: %+v %v, %d jobs", evs, err, jobs())
	}
	claimed, err := s.Outbox().Claim(ctx, time.Now().Add(time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, j := range claimed {
		if j.Key == sh.Tracking+"/1" {
			d, err := store.ParseDelivery(j.Payload)
			found = err == nil && d.Event.Status == api.StatusCancelled && d.Event.OrderID == "ord-x" && d.Merchant == sh.Merchant
		}
	}
	if !found {
		t.Fatalf("no delivery job for the cancel among %+v", claimed)
	}
	if _, err := s.AddEvent(ctx, sh.Tracking, api.StatusPickedUp, ""); !errors.Is(err, store.ErrTransition) {
		t.Fatalf("pickup of a cancelled booking: %v", err)
	}
	if l, _ := s.Lookup(ctx, sh.Tracking); l.Status != api.StatusCancelled {
		t.Fatalf("status %s after a refused event", l.Status)
	}
	for _, tt := range []struct {
		name, merchant, order string
		want                  error
	}{
		{"parcel left", left.Merchant, "ord-y", store.ErrParcelLeft},
		{"unknown order", sh.Merchant, "ord-none", store.ErrNotFound},
		{"another merchant's order", "merchant:other.example", "ord-x", store.ErrNotFound},
	} {
		if _, changed, err := s.Cancel(ctx, tt.merchant, tt.order); !errors.Is(err, tt.want) || changed {
			t.Fatalf("%s: changed=%v %v, want %v", tt.name, changed, err, tt.want)
		}
	}
	if l, _ := s.Lookup(ctx, left.Tracking); l.Status != api.StatusPickedUp {
		t.Fatalf("a refused cancel left the parcel %s", l.Status)
	}
	if evs, _, _ := s.Events(ctx, left.Tracking); len(evs) != 1 {
		t.Fatalf("a refused cancel added events: %+v", evs)
	}
}

// testMerchantShipments: one merchant's shipments, newest first, and no
// other merchant's.
func testMerchantShipments(t *testing.T, open Open) {
	ctx := context.Background()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	s := open(t, store.Options{Now: func() time.Time { now = now.Add(time.Second); return now }})
	var want []string
	for _, id := range []string{"ord-1", "ord-2"} {
		sh, _, err := s.Book(ctx, sample(id))
		if err != nil {
			t.Fatal(err)
		}
		want = append([]string{sh.Tracking}, want...)
	}
	other := sample("ord-1")
	other.Merchant = "merchant:other.example"
	if _, _, err := s.Book(ctx, other); err != nil {
		t.Fatal(err)
	}
	got, err := s.MerchantShipments(ctx, "merchant:shop.example")
	if err != nil || len(got) != 2 || got[0].Tracking != want[0] || got[1].Tracking != want[1] {
		t.Fatalf("shipments %+v %v, want %v", got, err, want)
	}
	all, err := s.List(ctx)
	if err != nil || len(all) != 3 || all[1].Tracking != want[0] || all[2].Tracking != want[1] || all[0].Merchant != other.Merchant {
		t.Fatalf("list %+v %v, want %s's then %v", all, err, other.Merchant, want)
	}
	if got, err := s.MerchantShipments(ctx, "merchant:none.example"); err != nil || len(got) != 0 {
		t.Fatalf("unknown merchant: %+v %v", got, err)
	}
}

// Cancels of one booking racing each other (on PostgreSQL, from any node)
// cancel it once: one cancelled event, one delivery job, and every caller
// gets the cancelled shipment.
func testCancelConcurrent(t *testing.T, open Open) {
	ctx := context.Background()
	s := open(t, store.Options{})
	booked, _, err := s.Book(ctx, sample("ord-cc"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	var wg sync.WaitGroup
	// A round of concurrent reads first, so a pooled backend has its
	// connections open and the cancels really overlap.
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, err := s.Lookup(ctx, booked.Tracking); err != nil {
				t.Error(err)
			}
		}()
	}
	close(start)
	wg.Wait()
	start = make(chan struct{})
	got := make([]store.Shipment, n)
	changed := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got[i], changed[i], errs[i] = s.Cancel(ctx, booked.Merchant, booked.OrderID)
		}()
	}
	close(start)
	wg.Wait()
	changes := 0
	for i := range n {
		if errs[i] != nil || got[i].Status != api.StatusCancelled || got[i].Tracking != booked.Tracking {
			t.Fatalf("cancel %d: %+v %v", i, got[i], errs[i])
		}
		if changed[i] {
			changes++
		}
	}
	if changes != 1 {
		t.Fatalf("%d cancels changed the booking, want 1", changes)
	}
	evs, _, err := s.Events(ctx, booked.Tracking)
	if err != nil || len(evs) != 1 || evs[0].Seq != 1 || evs[0].Status != api.StatusCancelled {
		t.Fatalf("events %+v %v, want one cancelled event", evs, err)
	}
	if st, err := s.Outbox().Count(ctx, store.JobTrackingEvent); err != nil || st.Pending != 1 {
		t.Fatalf("outbox %+v %v, want one pending job", st, err)
	}
}
