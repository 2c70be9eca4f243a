// Package storetest is the conformance suite every merchant store backend
// passes (DESIGN.md §8, §9): catalog, orders and their transitions, carrier
// events, assisted sessions, the outbox jobs each change enqueues, and the
// reads the test harness relies on.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncetest"
	"orderseal/merchant/store"
)

// Now is the clock of every store the suite opens.
var Now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// Run runs the suite; open returns a fresh, empty store whose clock reads Now.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, st store.Store)
	}{
		{"catalog", testCatalog},
		{"insert", testInsert},
		{"insert concurrent", testInsertConcurrent},
		{"apply", testApply},
		{"carrier event", testCarrierEvent},
		{"list", testList},
		{"sessions", testSessions},
		{"sessions concurrent", testSessionsConcurrent},
		{"briefs", testBriefs},
		{"first reached", testFirstReached},
		{"tally", testTally},
		{"payments", testPayments},
		{"operators", testOperators},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
	t.Run("nonces", func(t *testing.T) {
		noncetest.Run(t, func(t *testing.T, quota int) nonce.Store { return open(t).Nonces(nonce.Fixed(quota)) })
	})
}

func newOrder(id string, hh byte) *store.Order {
	return &store.Order{ID: id, Cardholder: "cardholder:alice@example.org", HeaderHash: []byte{hh, 2, 3},
		Bundle: []byte(`{"sealed":true}`), Issuer: "issuer:bank.example", Carrier: "carrier:parcel.example",
		Items: []byte(`[]`), Total: 100, Currency: "EUR", State: "received"}
}

// jobs counts the outbox's jobs by kind.
func jobs(t *testing.T, st store.Store) map[string]int {
	t.Helper()
	es, err := st.Outbox().List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range es {
		out[e.Kind]++
	}
	return out
}

func testCatalog(t *testing.T, st store.Store) {
	ctx := context.Background()
	if ps, err := st.Catalog(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("empty catalog: %v %v", ps, err)
	}
	mug := store.Product{SKU: "MUG", Name: "Mug", UnitPrice: 1290, Currency: "EUR"}
	if err := st.PutProducts(ctx, []store.Product{mug, {SKU: "BOOK", Name: "Book", UnitPrice: 999, Currency: "EUR"}}); err != nil {
		t.Fatal(err)
	}
	mug.UnitPrice, mug.Name = 1390, "Big mug"
	if err := st.PutProduct(ctx, mug); err != nil {
		t.Fatal(err)
	}
	ps, err := st.Catalog(ctx)
	if err != nil || len(ps) != 2 || ps[0].SKU != "BOOK" || ps[1] != mug {
		t.Fatalf("catalog %+v %v", ps, err)
	}
	// Products finds the SKUs asked for, and only those it has.
	for _, tc := range []struct {
		skus []string
		want []string
	}{
		{nil, nil},
		{[]string{"MUG"}, []string{"MUG"}},
		{[]string{"MUG", "NOPE", "BOOK"}, []string{"BOOK", "MUG"}},
		{[]string{"NOPE"}, nil},
	} {
		got, err := st.Products(ctx, tc.skus)
		var skus []string
		for _, p := range got {
			skus = append(skus, p.SKU)
			if p.SKU == "MUG" && p != mug {
				t.Fatalf("Products %v: %+v, want %+v", tc.skus, p, mug)
			}
		}
		slices.Sort(skus)
		if err != nil || !slices.Equal(skus, tc.want) {
			t.Fatalf("Products %v: %v %v, want %v", tc.skus, skus, err, tc.want)
		}
	}

	// Another currency next to EUR is refused, and the refused batch
	// changes nothing.
	err = st.PutProducts(ctx, []store.Product{{SKU: "TEA", Name: "Tea", UnitPrice: 5, Currency: "EUR"}, {SKU: "CUP", Name: "Cup", UnitPrice: 5, Currency: "USD"}})
	if !errors.Is(err, store.ErrCurrencyMixed) {
		t.Fatalf("mixed currencies: %v", err)
	}
	if err := st.PutProduct(ctx, store.Product{SKU: "MUG", Name: "Mug", UnitPrice: 5, Currency: "USD"}); !errors.Is(err, store.ErrCurrencyMixed) {
		t.Fatalf("repricing one product in USD: %v", err)
	}
	if ps, _ := st.Catalog(ctx); len(ps) != 2 || ps[1] != mug {
		t.Fatalf("a refused change left %+v", ps)
	}
	// Replacing every product at once changes the currency.
	if err := st.PutProducts(ctx, []store.Product{{SKU: "MUG", Name: "Mug", UnitPrice: 15, Currency: "USD"}, {SKU: "BOOK", Name: "Book", UnitPrice: 11, Currency: "USD"}}); err != nil {
		t.Fatal(err)
	}
	// A negative price is refused by the schema.
	if err := st.PutProduct(ctx, store.Product{SKU: "NEG", Name: "Neg", UnitPrice: -1, Currency: "USD"}); err == nil {
		t.Fatal("a negative price was stored")
	}
}

// TestInsert: an order is stored with its first timeline entry and relay
// job; the same header again returns it; another header is ErrOrderReused.
func testInsert(t *testing.T, st store.Store) {
	ctx := context.Background()
	o := newOrder("ord_1", 1)
	stored, created, err := st.Insert(ctx, o, "authorize")
	if err != nil || !created || stored.ID != "ord_1" {
		t.Fatalf("insert: %+v %v %v", stored, created, err)
	}
	again, created, err := st.Insert(ctx, newOrder("ord_1", 1), "authorize")
	if err != nil || created || again.State != "received" || again.Total != 100 {
		t.Fatalf("same header again: %+v %v %v", again, created, err)
	}
	if _, _, err := st.Insert(ctx, newOrder("ord_1", 9), "authorize"); !errors.Is(err, store.ErrOrderReused) {
		t.Fatalf("another header: %v", err)
	}
	if j := jobs(t, st); len(j) != 1 || j["authorize"] != 1 {
		t.Fatalf("jobs %v", j)
	}
	tl, err := st.Timeline(ctx, "ord_1")
	if err != nil || len(tl) != 1 || tl[0].State != "received" {
		t.Fatalf("timeline %+v %v", tl, err)
	}
	if _, err := st.Get(ctx, "ord_2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown order: %v", err)
	}
	if _, err := st.GetWithoutBundle(ctx, "ord_2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown order without its bundle: %v", err)
	}
	// Without the bundle the order is Get's, Bundle nil; IssuerSectionHash
	// tells the retained bundle from the one received.
	for _, retained := range []bool{false, true} {
		if retained {
			kept := &store.Retained{Bundle: []byte(`{"kept":true}`), IssuerSectionHash: bytes.Repeat([]byte{7}, 32)}
			if ok, err := st.Apply(ctx, "ord_1", store.Transition{From: []string{"received"}, To: "declined", Reason: "r", Detail: "d", Retain: kept}); err != nil || !ok {
				t.Fatalf("declining with the bundle retained: %v %v", ok, err)
			}
		}
		full, err := st.Get(ctx, "ord_1")
		if err != nil {
			t.Fatal(err)
		}
		light, err := st.GetWithoutBundle(ctx, "ord_1")
		if err != nil || light.Bundle != nil || (light.IssuerSectionHash != nil) != retained {
			t.Fatalf("retained %v: without the bundle %+v %v", retained, light, err)
		}
		if retained && !bytes.Equal(full.Bundle, []byte(`{"kept":true}`)) {
			t.Fatalf("retained bundle %q", full.Bundle)
		}
		full.Bundle = nil
		if !reflect.DeepEqual(full, light) {
			t.Fatalf("retained %v: without the bundle\n got %+v\nwant %+v", retained, light, full)
		}
	}
}

// TestInsertConcurrent: many submissions of one order id, half with another
// header, store one order.
func testInsertConcurrent(t *testing.T, st store.Store) {
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, reused := 0, 0
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, c, err := st.Insert(ctx, newOrder("ord_c", byte(i%2)), "authorize")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, store.ErrOrderReused):
				reused++
			case err != nil:
				t.Error(err)
			case c:
				created++
			}
		}()
	}
	wg.Wait()
	if created != 1 || reused != 8 {
		t.Fatalf("created %d, reused %d", created, reused)
	}
	if n, err := st.Counts(ctx); err != nil || n["received"] != 1 {
		t.Fatalf("counts %v %v", n, err)
	}
}

// TestApply: a transition applies only from its From states, sets only the
// fields it names, and enqueues its jobs with it.
func testApply(t *testing.T, st store.Store) {
	ctx := context.Background()
	if _, _, err := st.Insert(ctx, newOrder("ord_a", 1), "authorize"); err != nil {
		t.Fatal(err)
	}
	ok, err := st.Apply(ctx, "ord_a", store.Transition{From: []string{"received"}, To: "authorized", AuthCode: "A1", Invoice: "inv_1", Detail: "approved", Jobs: []string{"book"}})
	if err != nil || !ok {
		t.Fatalf("apply: %v %v", ok, err)
	}
	// Replayed: no longer in From, nothing changes.
	ok, err = st.Apply(ctx, "ord_a", store.Transition{From: []string{"received"}, To: "declined", Reason: "x"})
	if err != nil || ok {
		t.Fatalf("replayed apply: %v %v", ok, err)
	}
	ok, err = st.Apply(ctx, "ord_a", store.Transition{From: []string{"authorized"}, To: "shipped", Tracking: "OS1"})
	if err != nil || !ok {
		t.Fatalf("ship: %v %v", ok, err)
	}
	o, _ := st.Get(ctx, "ord_a")
	if o.State != "shipped" || o.AuthCode != "A1" || o.Invoice != "inv_1" || o.Tracking != "OS1" || o.Reason != "" {
		t.Fatalf("order %+v", o)
	}
	if j := jobs(t, st); j["book"] != 1 || j["authorize"] != 1 {
		t.Fatalf("jobs %v", j)
	}
	if _, err := st.Apply(ctx, "ord_none", store.Transition{From: []string{"received"}, To: "x"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown order: %v", err)
	}
	if err := st.Note(ctx, "ord_a", "shipped", "a note", "void"); err != nil {
		t.Fatal(err)
	}
	tl, _ := st.Timeline(ctx, "ord_a")
	var states []string
	for _, e := range tl {
		states = append(states, e.State)
	}
	if len(states) != 4 || states[3] != "shipped" || tl[3].Detail != "a note" {
		t.Fatalf("timeline %+v", tl)
	}
	if j := jobs(t, st); j["void"] != 1 {
		t.Fatalf("jobs %v", j)
	}
}

// TestCarrierEvent: one entry per sequence number; delivered moves a
// shipped order only.
func testCarrierEvent(t *testing.T, st store.Store) {
	ctx := context.Background()
	st.Insert(ctx, newOrder("ord_e", 1), "authorize")
	at := time.Date(2030, 1, 3, 0, 0, 0, 0, time.UTC)
	// Delivered before the order is shipped: recorded, state unchanged.
	if rec, err := st.CarrierEvent(ctx, "ord_e", 1, "delivered", "early", at); err != nil || !rec {
		t.Fatalf("event 1: %v %v", rec, err)
	}
	if o, _ := st.Get(ctx, "ord_e"); o.State != "received" {
		t.Fatalf("state %s", o.State)
	}
	st.Apply(ctx, "ord_e", store.Transition{From: []string{"received"}, To: "shipped"})
	if rec, err := st.CarrierEvent(ctx, "ord_e", 1, "delivered", "again", at); err != nil || rec {
		t.Fatalf("event 1 again: %v %v", rec, err)
	}
	if rec, err := st.CarrierEvent(ctx, "ord_e", 2, "in-transit", "", at); err != nil || !rec {
		t.Fatalf("event 2: %v %v", rec, err)
	}
	if rec, err := st.CarrierEvent(ctx, "ord_e", 3, "delivered", "", at); err != nil || !rec {
		t.Fatalf("event 3: %v %v", rec, err)
	}
	o, _ := st.Get(ctx, "ord_e")
	if o.State != "delivered" {
		t.Fatalf("state %s", o.State)
	}
	// The merchant's own entries first, then the carrier's by sequence
	// number, whatever order they arrived in.
	if rec, err := st.CarrierEvent(ctx, "ord_e", 0, "picked-up", "late", at.Add(-time.Hour)); err != nil || !rec {
		t.Fatalf("late event 0: %v %v", rec, err)
	}
	tl, _ := st.Timeline(ctx, "ord_e")
	var got []string
	for _, e := range tl {
		got = append(got, e.State+"/"+e.Detail)
	}
	want := []string{"received/bundle stored", "shipped/", "picked-up/late", "delivered/early", "in-transit/", "delivered/"}
	if len(got) != len(want) {
		t.Fatalf("timeline %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("timeline %v, want %v", got, want)
		}
	}
	if !tl[3].At.Equal(at) {
		t.Fatalf("event time %v", tl[3].At)
	}
}

func testList(t *testing.T, st store.Store) {
	ctx := context.Background()
	for _, id := range []string{"ord_b", "ord_a", "ord_c"} {
		if _, _, err := st.Insert(ctx, newOrder(id, 1), "authorize"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.List(ctx, 2)
	if err != nil || len(got) != 2 {
		t.Fatalf("list: %d %v", len(got), err)
	}
	all, _ := st.List(ctx, 10)
	if len(all) != 3 {
		t.Fatalf("list all: %d", len(all))
	}
}

func newSession(id, device, nonce string, expires time.Time) *store.Session {
	return &store.Session{ID: id, Consultant: "consultant:carol", Company: "company:cc", Device: device,
		SecretHash: make([]byte, 32), LoginNonce: nonce, Created: Now.Add(-time.Hour), Expires: expires}
}

func testSessions(t *testing.T, st store.Store) {
	ctx := context.Background()
	// An earlier session on desk-7 whose shift is over, one on desk-8 still open.
	for _, s := range []*store.Session{
		newSession("ses_a", "desk-7", "n1", Now.Add(-time.Minute)),
		newSession("ses_b", "desk-8", "n2", Now.Add(time.Hour)),
	} {
		if _, err := st.StartSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	ended, err := st.StartSession(ctx, newSession("ses_c", "desk-7", "n3", Now.Add(time.Hour)))
	if err != nil || len(ended) != 1 || ended[0] != "ses_a" {
		t.Fatalf("ended %v, %v", ended, err)
	}
	ended, err = st.StartSession(ctx, newSession("ses_d", "desk-8", "n4", Now.Add(time.Hour)))
	if err != nil || len(ended) != 1 || ended[0] != "ses_b" {
		t.Fatalf("ended %v, %v", ended, err)
	}
	if _, err := st.StartSession(ctx, newSession("ses_e", "desk-9", "n4", Now.Add(time.Hour))); !errors.Is(err, store.ErrLoginReplayed) {
		t.Fatalf("replayed login nonce: %v", err)
	}
	want := map[string]string{"ses_a": store.EndExpired, "ses_b": store.EndSuperseded, "ses_c": "live", "ses_d": "live"}
	all, err := st.Sessions(ctx, "consultant:carol")
	if err != nil || len(all) != len(want) {
		t.Fatalf("sessions %d, %v", len(all), err)
	}
	for _, s := range all {
		if got := s.State(Now); got != want[s.ID] {
			t.Errorf("%s: %s, want %s", s.ID, got, want[s.ID])
		}
	}

	// Orders go in only under a live session of their consultant.
	o := newOrder("ord-1", 1)
	o.Cardholder, o.Session = "consultant:carol", "ses_c"
	if _, _, err := st.Insert(ctx, o, "authorize"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		session, consultant string
		want                error
	}{
		{"ses_a", "consultant:carol", store.ErrSessionEnded},
		{"ses_b", "consultant:carol", store.ErrSessionEnded},
		{"ses_c", "consultant:dave", store.ErrNoSession},
		{"ses_zz", "consultant:carol", store.ErrNoSession},
	} {
		o := newOrder("ord-"+c.session+c.consultant, 2)
		o.Cardholder, o.Session = c.consultant, c.session
		if _, _, err := st.Insert(ctx, o, "authorize"); !errors.Is(err, c.want) {
			t.Errorf("%s by %s: %v, want %v", c.session, c.consultant, err, c.want)
		}
		// A refused order leaves nothing behind: no order, entry or job.
		if _, err := st.Get(ctx, o.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s by %s: the refused order was stored: %v", c.session, c.consultant, err)
		}
		if tl, err := st.Timeline(ctx, o.ID); err != nil || len(tl) != 0 {
			t.Errorf("%s by %s: timeline of a refused order %+v %v", c.session, c.consultant, tl, err)
		}
	}
	if n := jobs(t, st)["authorize"]; n != 1 {
		t.Fatalf("%d authorize jobs after one accepted order and refused ones, want 1", n)
	}
	expiring := newSession("ses_f", "desk-10", "n5", Now)
	if _, err := st.StartSession(ctx, expiring); err != nil {
		t.Fatal(err)
	}
	o = newOrder("ord-late", 3)
	o.Cardholder, o.Session = "consultant:carol", "ses_f"
	if _, _, err := st.Insert(ctx, o, "authorize"); !errors.Is(err, store.ErrSessionExpired) {
		t.Fatalf("order at the shift's end: %v", err)
	}

	got, err := st.SessionOrders(ctx, "ses_c")
	if err != nil || len(got) != 1 || got[0].ID != "ord-1" || got[0].Session != "ses_c" {
		t.Fatalf("session orders %v, %v", got, err)
	}

	s1, err := st.EndSession(ctx, "ses_c", store.EndLogout)
	if err != nil || s1.State(Now) != store.EndLogout {
		t.Fatalf("logout: %+v %v", s1, err)
	}
	s2, err := st.EndSession(ctx, "ses_c", store.EndSuperseded)
	if err != nil || s2.EndReason != store.EndLogout || !s2.Ended.Equal(s1.Ended) {
		t.Fatalf("second end changed the session: %+v %v", s2, err)
	}
	if _, err := st.EndSession(ctx, "ses_nope", store.EndLogout); !errors.Is(err, store.ErrNoSession) {
		t.Fatalf("unknown session: %v", err)
	}
	// An order stored while its session was open is the same order when
	// the terminal retries it after the logout: the retry is idempotent.
	retry := newOrder("ord-1", 1)
	retry.Cardholder, retry.Session = "consultant:carol", "ses_c"
	if prev, created, err := st.Insert(ctx, retry, "authorize"); err != nil || created || prev.ID != "ord-1" || prev.Session != "ses_c" {
		t.Fatalf("retry after logout: %+v %v %v", prev, created, err)
	}
	if n := jobs(t, st)["authorize"]; n != 1 {
		t.Fatalf("%d authorize jobs after a retried order, want 1", n)
	}
}

// testSessionsConcurrent: one login request replayed on several devices at
// once opens one session; every other attempt is store.ErrLoginReplayed.
func testSessionsConcurrent(t *testing.T, st store.Store) {
	ctx := context.Background()
	for round := range 10 {
		nonce := fmt.Sprintf("n%d", round)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for d := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := st.StartSession(ctx, newSession(fmt.Sprintf("ses_%d_%d", round, d), fmt.Sprintf("desk-%d", d), nonce, Now.Add(time.Hour)))
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		opened := 0
		for err := range errs {
			switch {
			case err == nil:
				opened++
			case !errors.Is(err, store.ErrLoginReplayed):
				t.Fatalf("round %d: %v, want nil or ErrLoginReplayed", round, err)
			}
		}
		if opened != 1 {
			t.Fatalf("round %d: %d sessions opened by one login, want 1", round, opened)
		}
	}
	all, err := st.Sessions(ctx, "consultant:carol")
	if err != nil || len(all) != 10 {
		t.Fatalf("sessions %d %v, want 10", len(all), err)
	}
}

// testBriefs: the harness's reads of many orders return each order's state,
// reason, tracking, token and total, whatever the number of ids.
func testBriefs(t *testing.T, st store.Store) {
	ctx := context.Background()
	for _, id := range []string{"ord_a", "ord_b", "ord_c"} {
		o := newOrder(id, 1)
		if id == "ord_c" {
			o.ShipToken = "tok_c"
		}
		if _, _, err := st.Insert(ctx, o, "authorize"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Apply(ctx, "ord_b", store.Transition{From: []string{"received"}, To: "shipped", Tracking: "OS1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(ctx, "ord_a", store.Transition{From: []string{"received"}, To: "declined", Reason: "no-funds"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]store.OrderBrief{
		"ord_a": {ID: "ord_a", State: "declined", Reason: "no-funds", Total: 100},
		"ord_b": {ID: "ord_b", State: "shipped", Tracking: "OS1", Total: 100},
		"ord_c": {ID: "ord_c", State: "received", ShipToken: "tok_c", Total: 100},
	}
	// More ids than one query takes, most of them unknown.
	ids := []string{"ord_a"}
	for i := range 1200 {
		ids = append(ids, fmt.Sprintf("ord_x%d", i))
	}
	ids = append(ids, "ord_b")
	got, err := st.Briefs(ctx, ids)
	if err != nil || len(got) != 2 {
		t.Fatalf("briefs %+v %v", got, err)
	}
	for _, b := range got {
		if b != want[b.ID] {
			t.Fatalf("brief %+v, want %+v", b, want[b.ID])
		}
	}
	if got, err := st.Briefs(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("no ids: %+v %v", got, err)
	}
	seen := map[string]bool{}
	err = st.EachBrief(ctx, func(b store.OrderBrief) error {
		if b != want[b.ID] || seen[b.ID] {
			t.Fatalf("brief %+v, want %+v once", b, want[b.ID])
		}
		seen[b.ID] = true
		return nil
	})
	if err != nil || len(seen) != 3 {
		t.Fatalf("every brief: %d %v", len(seen), err)
	}
	stop := errors.New("enough")
	n := 0
	if err := st.EachBrief(ctx, func(store.OrderBrief) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("stopping after one: %d calls, %v", n, err)
	}
}

// testFirstReached: the earliest timeline entry per order in the given
// states, for the orders that have one.
func testFirstReached(t *testing.T, st store.Store) {
	ctx := context.Background()
	for _, id := range []string{"ord_a", "ord_b"} {
		if _, _, err := st.Insert(ctx, newOrder(id, 1), "authorize"); err != nil {
			t.Fatal(err)
		}
	}
	for seq, at := range []time.Time{Now.Add(time.Hour), Now.Add(-time.Hour), Now.Add(2 * time.Hour)} {
		if _, err := st.CarrierEvent(ctx, "ord_a", int64(seq), "delivered", "", at); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.FirstReached(ctx, []string{"ord_a", "ord_b", "ord_none"}, []string{"delivered", "failed"})
	if err != nil || len(got) != 1 || !got["ord_a"].Equal(Now.Add(-time.Hour)) {
		t.Fatalf("first delivered: %v %v", got, err)
	}
	got, err = st.FirstReached(ctx, []string{"ord_a", "ord_b"}, []string{"received"})
	if err != nil || len(got) != 2 || !got["ord_a"].Equal(Now) || !got["ord_b"].Equal(Now) {
		t.Fatalf("first received: %v %v", got, err)
	}
	// More ids than one query takes, most of them unknown.
	many := []string{"ord_a"}
	for i := range 1200 {
		many = append(many, fmt.Sprintf("ord_x%d", i))
	}
	many = append(many, "ord_b")
	got, err = st.FirstReached(ctx, many, []string{"received", "delivered"})
	if err != nil || len(got) != 2 || !got["ord_a"].Equal(Now.Add(-time.Hour)) || !got["ord_b"].Equal(Now) {
		t.Fatalf("first received or delivered of many: %v %v", got, err)
	}
	if got, err := st.FirstReached(ctx, []string{"ord_a"}, nil); err != nil || len(got) != 0 {
		t.Fatalf("no states: %v %v", got, err)
	}
}

// testTally: products, orders, timeline entries and sessions are counted.
func testTally(t *testing.T, st store.Store) {
	ctx := context.Background()
	if n, err := st.Tally(ctx); err != nil || n != (store.Tally{}) {
		t.Fatalf("empty store: %+v %v", n, err)
	}
	if err := st.PutProduct(ctx, store.Product{SKU: "MUG", Name: "Mug", UnitPrice: 5, Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"ord_a", "ord_b"} {
		if _, _, err := st.Insert(ctx, newOrder(id, 1), "authorize"); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Note(ctx, "ord_a", "received", "a note"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.StartSession(ctx, newSession("ses_a", "desk-1", "n1", Now.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if n, err := st.Tally(ctx); err != nil || n != (store.Tally{Products: 1, Orders: 2, Events: 3, Sessions: 1}) {
		t.Fatalf("tally %+v %v", n, err)
	}
}
