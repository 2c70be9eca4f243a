package store_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	outboxsql "orderseal/internal/outbox/sqlite"
	"orderseal/merchant/store"
)

func open(t *testing.T) (*store.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "merchant.db")
	st, err := store.Open(context.Background(), path, func() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, path
}

func newOrder(id string, hh byte) *store.Order {
	return &store.Order{ID: id, Cardholder: "cardholder:alice@example.org", HeaderHash: []byte{hh, 2, 3},
		Bundle: []byte(`{"sealed":true}`), Issuer: "issuer:bank.example", Carrier: "carrier:parcel.example",
		Items: []byte(`[]`), Total: 100, Currency: "EUR", State: "received"}
}

func jobs(t *testing.T, st *store.Store) map[string]int {
	t.Helper()
	rows, err := st.DB().Query(`SELECT kind, COUNT(*) FROM outbox GROUP BY kind`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			t.Fatal(err)
		}
		out[k] = n
	}
	return out
}

func TestCatalog(t *testing.T) {
	ctx := context.Background()
	st, _ := open(t)
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
func TestInsert(t *testing.T) {
	ctx := context.Background()
	st, path := open(t)
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

	// Durable: a new Store on the same file sees the order and its job.
	st.Close()
	st2, err := store.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	got, err := st2.Get(ctx, "ord_1")
	if err != nil || string(got.HeaderHash) != string([]byte{1, 2, 3}) || got.Created.IsZero() {
		t.Fatalf("after reopening: %+v %v", got, err)
	}
	if s, err := outboxsql.New(st2.DB()).Count(ctx, ""); err != nil || s.Pending != 1 {
		t.Fatalf("outbox after reopening: %+v %v", s, err)
	}
}

// TestInsertConcurrent: many submissions of one order id, half with another
// header, store one order.
func TestInsertConcurrent(t *testing.T) {
	ctx := context.Background()
	st, _ := open(t)
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
func TestApply(t *testing.T) {
	ctx := context.Background()
	st, _ := open(t)
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
func TestCarrierEvent(t *testing.T) {
	ctx := context.Background()
	st, _ := open(t)
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

func TestList(t *testing.T) {
	ctx := context.Background()
	st, _ := open(t)
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
