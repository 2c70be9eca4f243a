package merchant_test

import (
	"context"
	"strings"
	"testing"
	"time"

	issuerapi "orderseal/issuer/api"
	"orderseal/merchant/api"
	"orderseal/order"
	"orderseal/tstest/keys"
)

// TestHoldSweep: an approval's hold is recorded with it; while it lasts
// the sweep asks the issuer nothing; once the merchant's clock passes it,
// the sweep asks, records the issuer's expiry on the payment and the
// timeline (the status shows it), and asks no more.
func TestHoldSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	e.holdSweep = 20 * time.Millisecond
	e.restart()
	hold := time.Now().Add(time.Hour).Truncate(time.Second)
	e.issuer.mu.Lock()
	e.issuer.hold, e.issuer.held = hold, issuerapi.StateExpired
	e.issuer.mu.Unlock()
	e.run()
	b := e.submit(t)
	e.waitState(t, b.OrderID, api.StateShipped)
	p, ok, err := e.st.Payment(ctx, b.OrderID)
	if err != nil || !ok || p.State != issuerapi.StateAuthorized || !p.HoldUntil.Equal(hold) {
		t.Fatalf("payment after approval: %+v %v %v, want authorized until %s", p, ok, err, hold)
	}
	time.Sleep(200 * time.Millisecond) // ten sweeps
	gets := func() int {
		e.issuer.mu.Lock()
		defer e.issuer.mu.Unlock()
		return e.issuer.gets
	}
	if n := gets(); n != 0 {
		t.Fatalf("the sweep asked about a live hold %d times", n)
	}
	e.skew.Store(int64(2 * time.Hour))
	deadline := time.Now().Add(10 * time.Second)
	for {
		p, _, err = e.st.Payment(ctx, b.OrderID)
		if err != nil {
			t.Fatal(err)
		}
		if p.State == issuerapi.StateExpired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("payment %+v: the expiry was never recorded", p)
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, err := e.client(t, keys.Alice).Status(ctx, b.OrderID)
	if err != nil || st.Payment == nil || st.Payment.State != issuerapi.StateExpired || !strings.Contains(st.Timeline[len(st.Timeline)-1].Detail, "hold expired at "+keys.Bank) {
		t.Fatalf("status %+v %v", st, err)
	}
	n := gets()
	time.Sleep(200 * time.Millisecond)
	if gets() != n || n != 1 {
		t.Fatalf("the sweep asked %d times, then %d: an expiry recorded is not asked about again", n, gets())
	}
}

// TestInstallmentsRecorded: the schedule an approval answers with goes on
// the timeline once, and the status carries it, each amount formatted.
func TestInstallmentsRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	e.run()
	token := e.vault.register(t, keys.Alice)
	b := seal(t, keys.Alice, testOrder(t, token), stdParties, order.SealOptions{})
	e.issuer.mu.Lock()
	e.issuer.plans = map[string]*issuerapi.Plan{b.OrderID: {Installments: 2, Schedule: []issuerapi.Installment{
		{N: 1, Due: "2031-01-07", Amount: 150000}, {N: 2, Due: "2031-02-07", Amount: 149999}}}}
	e.issuer.mu.Unlock()
	if _, err := e.client(t, keys.Alice).Submit(ctx, b); err != nil {
		t.Fatal(err)
	}
	e.waitState(t, b.OrderID, api.StateShipped)
	st, err := e.client(t, keys.Alice).Status(ctx, b.OrderID)
	want := "2 installments: 1,500.00 EUR due 2031-01-07, 1,499.99 EUR due 2031-02-07"
	if err != nil || st.Installments != want {
		t.Fatalf("status installments %q %v, want %q", st.Installments, err, want)
	}
	n := 0
	for _, ev := range st.Timeline {
		if ev.State == api.PlanEvent {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d plan entries in %+v", n, st.Timeline)
	}
}
