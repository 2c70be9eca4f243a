package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"orderseal/issuer/api"
	"orderseal/issuer/store"
)

// op is a merchant operation of shop on orderID, amounts in EUR.
func op(orderID, key, kind string, amount int64) store.Op {
	o := store.Op{Merchant: shop, OrderID: orderID, Key: key, Kind: kind, Amount: amount}
	if amount > 0 {
		o.Currency = "EUR"
	}
	return o
}

// step is one operation and what it must leave: its error, the record's
// state and totals, and the card's available credit.
type step struct {
	name      string
	op        store.Op
	err       error
	replayed  bool
	state     string
	captured  int64
	refunded  int64
	available int64
}

func (e *env) steps(t *testing.T, cardID string, steps []step) {
	t.Helper()
	ctx := context.Background()
	for _, s := range steps {
		a, replayed, err := e.st.Operate(ctx, s.op)
		if !errors.Is(err, s.err) || (s.err == nil) != (err == nil) {
			t.Fatalf("%s: error %v, want %v", s.name, err, s.err)
		}
		if replayed != s.replayed {
			t.Fatalf("%s: replayed %v", s.name, replayed)
		}
		got, err := e.st.Authorization(ctx, s.op.Merchant, s.op.OrderID)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got.State() != s.state || got.Captured != s.captured || got.Refunded != s.refunded {
			t.Fatalf("%s: stored %s captured %d refunded %d, want %s %d %d", s.name, got.State(), got.Captured, got.Refunded, s.state, s.captured, s.refunded)
		}
		if s.err == nil && a != got {
			t.Fatalf("%s: answer %+v, stored %+v", s.name, a, got)
		}
		if av := e.card(t, cardID).Available; av != s.available {
			t.Fatalf("%s: available %d, want %d", s.name, av, s.available)
		}
	}
}

// testLifecycleCapture: partial captures up to the authorized amount, the
// remainder released by the final one, refunds up to the captured total;
// every retry under its key changes nothing, every refusal changes nothing.
func testLifecycleCapture(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.add(t, visa, alice, "2031-12", 100_00)
	if a, _, err := e.st.Authorize(ctx, request("ord-1", 1, 40_00)); err != nil || a.State() != store.StateAuthorized || a.HoldUntil.IsZero() {
		t.Fatalf("authorize: %+v %v", a, err)
	}
	e.steps(t, c.ID, []step{
		{"first shipment", op("ord-1", "cap-1", store.OpCapture, 15_00), nil, false, store.StatePartiallyCaptured, 15_00, 0, 60_00},
		{"first shipment retried", op("ord-1", "cap-1", store.OpCapture, 15_00), nil, true, store.StatePartiallyCaptured, 15_00, 0, 60_00},
		{"key reused for another amount", op("ord-1", "cap-1", store.OpCapture, 10_00), store.ErrIdempotencyKeyReused, false, store.StatePartiallyCaptured, 15_00, 0, 60_00},
		{"above the remainder", op("ord-1", "cap-2", store.OpCapture, 25_01), store.ErrCaptureExceeds, false, store.StatePartiallyCaptured, 15_00, 0, 60_00},
		{"wrong currency", store.Op{Merchant: shop, OrderID: "ord-1", Key: "cap-2", Kind: store.OpCapture, Amount: 5_00, Currency: "USD"}, store.ErrOpCurrency, false, store.StatePartiallyCaptured, 15_00, 0, 60_00},
		{"refund before it is captured", op("ord-1", "ref-0", store.OpRefund, 15_01), store.ErrRefundExceeds, false, store.StatePartiallyCaptured, 15_00, 0, 60_00},
		{"last shipment, remainder released", store.Op{Merchant: shop, OrderID: "ord-1", Key: "cap-2", Kind: store.OpCapture, Amount: 10_00, Currency: "EUR", Final: true}, nil, false, store.StateCaptured, 25_00, 0, 75_00},
		{"capture after completion", op("ord-1", "cap-3", store.OpCapture, 1_00), store.ErrAuthorizationClosed, false, store.StateCaptured, 25_00, 0, 75_00},
		{"release again", op("ord-1", "rel-1", store.OpRelease, 0), nil, false, store.StateCaptured, 25_00, 0, 75_00},
		{"void after capture", op("ord-1", "void-1", store.OpVoid, 0), store.ErrVoidAfterCapture, false, store.StateCaptured, 25_00, 0, 75_00},
		{"refund above captured", op("ord-1", "ref-1", store.OpRefund, 25_01), store.ErrRefundExceeds, false, store.StateCaptured, 25_00, 0, 75_00},
		{"partial refund", op("ord-1", "ref-1", store.OpRefund, 10_00), nil, false, store.StatePartiallyRefunded, 25_00, 10_00, 85_00},
		{"partial refund retried", op("ord-1", "ref-1", store.OpRefund, 10_00), nil, true, store.StatePartiallyRefunded, 25_00, 10_00, 85_00},
		{"second refund above the rest", op("ord-1", "ref-2", store.OpRefund, 15_01), store.ErrRefundExceeds, false, store.StatePartiallyRefunded, 25_00, 10_00, 85_00},
		{"second refund, the rest", op("ord-1", "ref-2", store.OpRefund, 15_00), nil, false, store.StateRefunded, 25_00, 25_00, 100_00},
		{"nothing left to refund", op("ord-1", "ref-3", store.OpRefund, 1), store.ErrRefundExceeds, false, store.StateRefunded, 25_00, 25_00, 100_00},
	})
	// A whole capture releases nothing and completes the authorization.
	if _, _, err := e.st.Authorize(ctx, request("ord-2", 2, 30_00)); err != nil {
		t.Fatal(err)
	}
	e.steps(t, c.ID, []step{
		{"whole capture", op("ord-2", "cap-w", store.OpCapture, 30_00), nil, false, store.StateCaptured, 30_00, 0, 70_00},
		{"release after a whole capture", op("ord-2", "rel-w", store.OpRelease, 0), nil, false, store.StateCaptured, 30_00, 0, 70_00},
	})
}

// testLifecycleVoid: a void releases the hold once; nothing is captured
// after it; declines and other merchants' orders take no operation.
func testLifecycleVoid(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.add(t, visa, alice, "2031-12", 100_00)
	if _, _, err := e.st.Authorize(ctx, request("ord-1", 1, 40_00)); err != nil {
		t.Fatal(err)
	}
	if d, _, err := e.st.Authorize(ctx, request("ord-d", 2, 70_00)); err != nil || d.Decision != api.Declined {
		t.Fatalf("want a decline: %+v %v", d, err)
	}
	e.steps(t, c.ID, []step{
		{"void", op("ord-1", "void-1", store.OpVoid, 0), nil, false, store.StateVoided, 0, 0, 100_00},
		{"void retried", op("ord-1", "void-1", store.OpVoid, 0), nil, true, store.StateVoided, 0, 0, 100_00},
		{"void again under another key", op("ord-1", "void-2", store.OpVoid, 0), nil, false, store.StateVoided, 0, 0, 100_00},
		{"capture after void", op("ord-1", "cap-1", store.OpCapture, 40_00), store.ErrCaptureAfterVoid, false, store.StateVoided, 0, 0, 100_00},
		{"refund after void", op("ord-1", "ref-1", store.OpRefund, 1_00), store.ErrRefundExceeds, false, store.StateVoided, 0, 0, 100_00},
		{"capture a decline", op("ord-d", "cap-d", store.OpCapture, 70_00), store.ErrNotApproved, false, store.StateDeclined, 0, 0, 100_00},
		{"release with nothing captured voids", op("ord-d", "rel-d", store.OpRelease, 0), store.ErrNotApproved, false, store.StateDeclined, 0, 0, 100_00},
	})
	if _, _, err := e.st.Authorize(ctx, request("ord-2", 3, 20_00)); err != nil {
		t.Fatal(err)
	}
	e.steps(t, c.ID, []step{
		{"release uncaptured", op("ord-2", "rel-2", store.OpRelease, 0), nil, false, store.StateVoided, 0, 0, 100_00},
	})
	if _, _, err := e.st.Authorize(ctx, request("ord-3", 4, 20_00)); err != nil {
		t.Fatal(err)
	}
	other3 := op("ord-3", "cap-x", store.OpCapture, 20_00)
	other3.Merchant = other
	if _, _, err := e.st.Operate(ctx, other3); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another merchant captured: %v", err)
	}
	if _, _, err := e.st.Operate(ctx, op("ord-none", "cap-y", store.OpCapture, 1_00)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown order captured: %v", err)
	}
	if _, _, err := e.st.Operate(ctx, op("ord-1", "void-1", store.OpCapture, 1_00)); !errors.Is(err, store.ErrIdempotencyKeyReused) {
		t.Fatalf("a void's key reused for a capture: %v", err)
	}
	for name, o := range map[string]store.Op{
		"no key":           op("ord-3", "", store.OpCapture, 1_00),
		"key with a space": op("ord-3", "a b", store.OpCapture, 1_00),
		"zero amount":      op("ord-3", "k", store.OpCapture, 0),
		"negative refund":  op("ord-3", "k", store.OpRefund, -1),
		"void with amount": {Merchant: shop, OrderID: "ord-3", Key: "k", Kind: store.OpVoid, Amount: 1, Currency: "EUR"},
		"final refund":     {Merchant: shop, OrderID: "ord-3", Key: "k", Kind: store.OpRefund, Amount: 1, Currency: "EUR", Final: true},
		"unknown kind":     {Merchant: shop, OrderID: "ord-3", Key: "k", Kind: "chargeback"},
		"bad currency":     {Merchant: shop, OrderID: "ord-3", Key: "k", Kind: store.OpCapture, Amount: 1, Currency: "eur"},
		"not a merchant":   {Merchant: alice, OrderID: "ord-3", Key: "k", Kind: store.OpVoid},
	} {
		if _, _, err := e.st.Operate(ctx, o); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if a, err := e.st.Authorization(ctx, shop, "ord-3"); err != nil || a.State() != store.StateAuthorized || e.card(t, c.ID).Available != 80_00 {
		t.Fatalf("refused operations changed the record: %+v %v", a, err)
	}
}

// testLifecycleExpiry: a hold lapses at its period's end, whether the
// sweep or the next operation finds it first; the credit comes back once.
func testLifecycleExpiry(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.add(t, visa, alice, "2031-12", 100_00)
	for i, id := range []string{"ord-sweep", "ord-lazy", "ord-part"} {
		r := request(id, byte(i+1), 20_00)
		r.Hold = time.Hour
		a, _, err := e.st.Authorize(ctx, r)
		if err != nil || !a.HoldUntil.Equal(now.Add(time.Hour)) {
			t.Fatalf("%s: %+v %v", id, a, err)
		}
	}
	e.steps(t, c.ID, []step{
		{"partial capture in time", op("ord-part", "cap-p", store.OpCapture, 5_00), nil, false, store.StatePartiallyCaptured, 5_00, 0, 40_00},
	})
	if n, err := e.st.ExpireHolds(ctx); err != nil || n != 0 {
		t.Fatalf("expired before the period: %d %v", n, err)
	}
	later, err := e.open(store.Options{CardKey: e.key, Now: func() time.Time { return now.Add(time.Hour + time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { later.Close() })
	e.st = later
	// The next operation finds the lapsed hold: it is released, and the capture refused.
	e.steps(t, c.ID, []step{
		{"capture after the hold", op("ord-lazy", "cap-l", store.OpCapture, 20_00), store.ErrAuthorizationExpired, false, store.StateExpired, 0, 0, 60_00},
		{"capture after the hold again", op("ord-lazy", "cap-l", store.OpCapture, 20_00), store.ErrAuthorizationExpired, false, store.StateExpired, 0, 0, 60_00},
	})
	if n, err := e.st.ExpireHolds(ctx); err != nil || n != 2 {
		t.Fatalf("sweep expired %d (%v), want 2", n, err)
	}
	if n, err := e.st.ExpireHolds(ctx); err != nil || n != 0 {
		t.Fatalf("second sweep expired %d (%v)", n, err)
	}
	e.steps(t, c.ID, []step{
		{"void an expired hold", op("ord-sweep", "void-s", store.OpVoid, 0), nil, false, store.StateExpired, 0, 0, 95_00},
		{"captured part stays captured", op("ord-part", "cap-p2", store.OpCapture, 1_00), store.ErrAuthorizationExpired, false, store.StateCaptured, 5_00, 0, 95_00},
		{"refund of the captured part", op("ord-part", "ref-p", store.OpRefund, 5_00), nil, false, store.StateRefunded, 5_00, 5_00, 100_00},
	})
}

// testLifecycleConcurrent: racing retries under one key capture once;
// racing captures and refunds under distinct keys never pass the
// authorized or the captured amount.
func testLifecycleConcurrent(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.add(t, visa, alice, "2031-12", 100_00)
	if _, _, err := e.st.Authorize(ctx, request("ord-1", 1, 40_00)); err != nil {
		t.Fatal(err)
	}
	race := func(n int, mk func(i int) store.Op) (ok, fresh int, errs map[string]int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		errs = map[string]int{}
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, replayed, err := e.st.Operate(ctx, mk(i))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
					if !replayed {
						fresh++
					}
				default:
					errs[err.Error()]++
				}
			}()
		}
		wg.Wait()
		return ok, fresh, errs
	}
	if ok, fresh, errs := race(16, func(int) store.Op { return op("ord-1", "cap-same", store.OpCapture, 10_00) }); ok != 16 || fresh != 1 {
		t.Fatalf("one key: %d answers, %d fresh, errors %v", ok, fresh, errs)
	}
	if ok, _, errs := race(16, func(i int) store.Op { return op("ord-1", fmt.Sprintf("cap-%d", i), store.OpCapture, 5_00) }); ok != 6 || errs[store.ErrCaptureExceeds.Error()] != 10 {
		t.Fatalf("distinct keys: %d captures, errors %v", ok, errs)
	}
	if ok, _, errs := race(16, func(i int) store.Op { return op("ord-1", fmt.Sprintf("ref-%d", i), store.OpRefund, 3_00) }); ok != 13 || errs[store.ErrRefundExceeds.Error()] != 3 {
		t.Fatalf("refunds: %d, errors %v", ok, errs)
	}
	a, err := e.st.Authorization(ctx, shop, "ord-1")
	if err != nil || a.Captured != 40_00 || a.Refunded != 39_00 {
		t.Fatalf("after the races: %+v %v", a, err)
	}
	if av := e.card(t, c.ID).Available; av != 99_00 {
		t.Fatalf("available %d, want 9900", av)
	}
}

// testInstallments: an allowed plan is stored with the approval (and its
// schedule derived from it after a reopen); a plan the card's product does
// not allow is declined installments-not-allowed and holds nothing.
func testInstallments(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.add(t, visa, alice, "2031-12", 1000_00)
	r := request("ord-3x", 1, 300_00)
	r.Installments = 3
	a, _, err := e.st.Authorize(ctx, r)
	if err != nil || a.Decision != api.Approved || a.Installments != 3 || len(a.Schedule()) != 3 {
		t.Fatalf("plan of 3: %+v %v", a, err)
	}
	r = request("ord-5x", 2, 300_00)
	r.Installments = 5
	if d, _, err := e.st.Authorize(ctx, r); err != nil || d.Decision != api.Declined || d.Reason != api.ReasonInstallments || d.Installments != 1 {
		t.Fatalf("plan of 5: %+v %v", d, err)
	}
	if av := e.card(t, c.ID).Available; av != 700_00 {
		t.Fatalf("available %d", av)
	}
	got, err := e.reopen(t, e.key).Authorization(ctx, shop, "ord-3x")
	if err != nil || got.Installments != 3 || len(got.Schedule()) != 3 || got.Schedule()[0] != a.Schedule()[0] {
		t.Fatalf("stored plan: %+v %v", got, err)
	}
}
