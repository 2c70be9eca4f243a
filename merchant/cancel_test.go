package merchant_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	carrierapi "orderseal/carrier/api"
	"orderseal/merchant/api"
	"orderseal/tstest/keys"
)

// timelineStates are the states of an order's timeline entries, in order.
func (e *env) timelineStates(t *testing.T, id string) []string {
	t.Helper()
	tl, err := e.st.Timeline(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range tl {
		out = append(out, ev.State)
	}
	return out
}

// TestCancelBooked: a booked order's cancel goes cancelling, cancels the
// booking at the carrier, then voids the hold, and only then is the order
// cancelled; a second cancel is refused and asks nobody.
func TestCancelBooked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	e.run()
	b := e.submit(t)
	e.waitState(t, b.OrderID, api.StateShipped)
	alice := e.client(t, keys.Alice)
	st, err := alice.Cancel(ctx, b.OrderID)
	if err != nil || st.State != api.StateCancelling {
		t.Fatalf("cancel: %+v %v", st, err)
	}
	e.waitState(t, b.OrderID, api.StateCancelled)
	e.waitJobs(t, b.OrderID)
	if got := e.carrier.cancelled(); !slices.Equal(got, []string{b.OrderID}) {
		t.Fatalf("carrier cancels %v", got)
	}
	if _, voids, _ := e.issuer.snapshot(); !slices.Equal(voids, []string{b.OrderID}) {
		t.Fatalf("voids %v", voids)
	}
	states := e.timelineStates(t, b.OrderID)
	if i, j := slices.Index(states, api.StateCancelling), slices.Index(states, api.StateCancelled); i < 0 || j < i {
		t.Fatalf("timeline %v", states)
	}
	_, err = alice.Cancel(ctx, b.OrderID)
	wantProblem(t, err, http.StatusConflict, api.CodeAlreadyCancelled)
	if got := e.carrier.cancelled(); len(got) != 1 {
		t.Fatalf("a second cancel reached the carrier: %v", got)
	}
}

// TestCancelRefusedByCarrier: when the carrier answers that the parcel
// left, nothing is voided and the order goes back to shipped; asked again,
// the merchant refuses at once.
func TestCancelRefusedByCarrier(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	e.carrier.refuse = carrierapi.CodeParcelLeft
	e.run()
	b := e.submit(t)
	e.waitState(t, b.OrderID, api.StateShipped)
	alice := e.client(t, keys.Alice)
	if st, err := alice.Cancel(ctx, b.OrderID); err != nil || st.State != api.StateCancelling {
		t.Fatalf("cancel: %+v %v", st, err)
	}
	e.waitJobs(t, b.OrderID) // the unbook job was queued with the cancel
	o := e.waitState(t, b.OrderID, api.StateShipped)
	if o.Tracking != trackingNumber {
		t.Fatalf("order %+v", o)
	}
	if _, voids, _ := e.issuer.snapshot(); len(voids) != 0 {
		t.Fatalf("a parcel that left was voided: %v", voids)
	}
	_, err := alice.Cancel(ctx, b.OrderID)
	wantProblem(t, err, http.StatusConflict, api.CodeOrderShipped)
	if got := e.carrier.cancelled(); len(got) != 1 {
		t.Fatalf("carrier cancels %v, want the first only", got)
	}
}
