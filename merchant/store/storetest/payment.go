package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"orderseal/merchant/store"
)

// testPayments: the issuer's word on a payment is stored and replaced
// with a timeline entry; jobs under their own keys enqueue once, noted once.
func testPayments(t *testing.T, st store.Store) {
	ctx := context.Background()
	if _, _, err := st.Insert(ctx, newOrder("ord_1", 1), "authorize"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := st.Payment(ctx, "ord_1"); err != nil || ok {
		t.Fatalf("payment before any answer: %v %v", ok, err)
	}
	hold := time.Date(2030, 6, 22, 12, 0, 0, 0, time.UTC)
	for _, p := range []store.Payment{
		{OrderID: "ord_1", State: "partially-captured", Captured: 40, HoldUntil: hold},
		{OrderID: "ord_1", State: "partially-refunded", Captured: 100, Refunded: 25, HoldUntil: hold},
	} {
		if err := st.RecordPayment(ctx, p, "issuer: "+p.State); err != nil {
			t.Fatal(err)
		}
		got, ok, err := st.Payment(ctx, "ord_1")
		if err != nil || !ok || got.State != p.State || got.Captured != p.Captured || got.Refunded != p.Refunded ||
			!got.HoldUntil.Equal(hold) || got.Updated.IsZero() {
			t.Fatalf("payment %+v %v %v, want %+v", got, ok, err, p)
		}
	}
	if err := st.RecordPayment(ctx, store.Payment{OrderID: "ord_1", State: "refunded", Captured: 10, Refunded: 20}, ""); err == nil {
		t.Fatal("a refund above the captured amount was stored")
	}
	if err := st.RecordPayment(ctx, store.Payment{OrderID: "ord_none", State: "captured"}, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("payment of no order: %v", err)
	}

	for i, want := range []bool{true, false} {
		queued, err := st.Enqueue(ctx, "ord_1", store.Job{Kind: "refund", Key: "ord_1/refund/a", Payload: []byte(`{"amount":25}`)}, "refund asked")
		if err != nil || queued != want {
			t.Fatalf("enqueue %d: %v %v", i, queued, err)
		}
	}
	if queued, err := st.Enqueue(ctx, "ord_1", store.Job{Kind: "refund", Key: "ord_1/refund/b"}, "refund asked"); err != nil || !queued {
		t.Fatalf("second refund: %v %v", queued, err)
	}
	if _, err := st.Enqueue(ctx, "ord_none", store.Job{Kind: "refund", Key: "x"}, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("enqueue for no order: %v", err)
	}
	if j := jobs(t, st); j["refund"] != 2 {
		t.Fatalf("jobs %v", j)
	}
	tl, err := st.Timeline(ctx, "ord_1")
	if err != nil {
		t.Fatal(err)
	}
	notes := map[string]int{}
	for _, e := range tl {
		notes[e.Detail]++
		if e.State != "received" && e.State != store.PaymentEvent {
			t.Errorf("a timeline entry of state %q: %+v", e.State, e)
		}
	}
	if o, err := st.Get(ctx, "ord_1"); err != nil || o.State != "received" {
		t.Fatalf("payment notes moved the order: %+v %v", o, err)
	}
	if notes["refund asked"] != 2 || notes["issuer: partially-captured"] != 1 || notes["issuer: partially-refunded"] != 1 {
		t.Fatalf("timeline %+v", tl)
	}
}
