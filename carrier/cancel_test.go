package carrier_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orderseal/carrier/api"
	"orderseal/carrier/store"
	"orderseal/order"
	"orderseal/tstest/keys"
)

// TestCancelBooking: the merchant cancels a booking whose parcel has not
// left; a second cancel answers the same and records nothing new; the
// cancelled parcel takes no event. A parcel picked up, an order never
// booked, another merchant's order and another role are refused with their
// own codes, and nothing changes.
func TestCancelBooking(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	shop := e.merchant(t, keys.Shop)
	b := sealOrder(t, keys.Shop, keys.Parcel, "", &inlineAddress, order.SealOptions{})
	booked, err := shop.Book(ctx, b, "INV-1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := shop.Cancel(ctx, b.OrderID)
	if err != nil || got.Status != api.StatusCancelled || got.Tracking != booked.Tracking || got.OrderID != b.OrderID || got.HeaderHash != booked.HeaderHash {
		t.Fatalf("cancel: %+v %v (booked %+v)", got, err, booked)
	}
	again, err := shop.Cancel(ctx, b.OrderID)
	if err != nil || *again != *got {
		t.Fatalf("second cancel: %+v %v, want %+v", again, err, got)
	}
	evs, _, err := e.st.Events(ctx, booked.Tracking)
	if err != nil || len(evs) != 1 || evs[0].Status != api.StatusCancelled {
		t.Fatalf("events after two cancels: %+v %v", evs, err)
	}
	// A retried booking answers the cancelled shipment: it is not booked again.
	if rebook, err := shop.Book(ctx, b, "INV-1"); err != nil || rebook.Status != api.StatusCancelled || rebook.Tracking != booked.Tracking {
		t.Fatalf("booking retried after the cancel: %+v %v", rebook, err)
	}
	if code, _, errs := run(t, "event", booked.Tracking, "-status", "picked-up", "-db", e.dbPath); code == 0 {
		t.Fatalf("a cancelled parcel was picked up: %s", errs)
	}
	// Nor does it get a label, though its deposited address still resolves.
	out := filepath.Join(t.TempDir(), "label.png")
	if code, _, errs := run(t, e.labelArgs(booked.Tracking, out)...); code == 0 || !strings.Contains(errs, "cancelled") {
		t.Fatalf("label of a cancelled booking: exit %d %s", code, errs)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a label was written for a cancelled booking")
	}

	left := sealOrder(t, keys.Shop, keys.Parcel, "", &inlineAddress, order.SealOptions{})
	sh, err := shop.Book(ctx, left, "INV-2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.AddEvent(ctx, sh.Tracking, api.StatusPickedUp, ""); err != nil {
		t.Fatal(err)
	}
	_, err = shop.Cancel(ctx, left.OrderID)
	wantProblem(t, err, http.StatusConflict, api.CodeParcelLeft)
	if s, _ := e.st.Lookup(ctx, sh.Tracking); s.Status != api.StatusPickedUp {
		t.Fatalf("a refused cancel left the parcel %s", s.Status)
	}
	_, err = shop.Cancel(ctx, "ord-never-booked")
	wantProblem(t, err, http.StatusNotFound, api.CodeUnknownShipment)
	_, err = e.merchant(t, keys.OtherShop).Cancel(ctx, left.OrderID)
	wantProblem(t, err, http.StatusNotFound, api.CodeUnknownShipment)
	err = e.raw(t, keys.Alice).DoJSON(ctx, keys.Parcel, http.MethodPost, e.ts.URL+api.PathShipments+left.OrderID+api.CancelSuffix, nil, nil)
	wantProblem(t, err, http.StatusForbidden, "forbidden-role")
	if s, err := e.st.ByOrder(ctx, keys.Shop, left.OrderID); err != nil || s.Status != api.StatusPickedUp {
		t.Fatalf("after the refusals: %+v %v", s, err)
	}
	if n, err := e.st.Outbox().Count(ctx, store.JobTrackingEvent); err != nil || n.Pending+n.Done+n.Failed != 2 {
		t.Fatalf("delivery jobs %+v %v, want the cancel's and the pickup's", n, err)
	}
}
