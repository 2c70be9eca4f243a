package e2e

import (
	"context"
	"testing"
	"time"

	carrierapi "orderseal/carrier/api"
	issuerapi "orderseal/issuer/api"
	merchantapi "orderseal/merchant/api"
)

// kill9 kills a daemon with SIGKILL, between two of its writes as far as
// it knows, and starts it again on the same database.
func (c *cluster) kill9(name, bin string) {
	c.t.Helper()
	d := c.daemons[name]
	if err := d.cmd.Process.Kill(); err != nil {
		c.t.Fatal(err)
	}
	<-d.exited
	c.launch(d, bin)
}

// TestLifecycleChaos kills the merchant or the issuer with SIGKILL right
// after each step of the payment lifecycle is asked for — the capture on
// shipment, two partial refunds, each refund asked twice, and the cancel of
// a booked parcel (booking cancel, then revoke and void) — and checks that
// every order ends captured once and refunded exactly what was asked, every
// cancelled one voided with its booking cancelled exactly once, at every
// party and on the card, to the minor unit.
func TestLifecycleChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns every daemon")
	}
	start := time.Now()
	c := newCluster(t)
	const limit, orders, cancels = 5000_00, 4, 4
	c.enroll(cAlice, cardCanary, "2031-12", "500000")
	token := c.registerAddress(cAlice, "home", false)
	mdb := c.path("merchant", "merchant.db")
	ctx := context.Background()
	mc := c.merchantClient(cAlice)

	var ids, cancelled []string
	for i := range orders + cancels {
		b := c.sealFor(cAlice, cardCanary, token, 1)
		if _, err := mc.Submit(ctx, b); err != nil {
			t.Fatal(err)
		}
		if i < orders {
			ids = append(ids, b.OrderID)
		} else {
			cancelled = append(cancelled, b.OrderID)
		}
	}
	for _, id := range append(ids, cancelled...) {
		c.waitState(id, merchantapi.StateShipped)
	}
	if got := c.available(cAlice); got != limit-(orders+cancels)*1299 {
		t.Fatalf("available %d after %d authorizations", got, orders+cancels)
	}

	victims := []struct{ name, bin string }{{"merchant", "merchant"}, {"issuer", "issuer"}}
	kills := 0
	kill := func() {
		v := victims[kills%len(victims)]
		kills++
		c.kill9(v.name, v.bin)
	}
	steps := 0
	for i, id := range ids {
		c.must("", "carrier", "event", c.order(id).Tracking, "-status", "picked-up", "-db", c.path("carrier", "carrier.db"))
		steps++
		if i%2 == 0 {
			time.Sleep(time.Duration(i*40) * time.Millisecond) // vary where in the capture the kill lands
		}
		kill()
		for _, r := range []struct {
			key, amount string
			state       string // the payment the merchant records before the refund is asked
			refunded    int64
		}{{"a", "5.00", issuerapi.StateCaptured, 0}, {"b", "3.00", issuerapi.StatePartiallyRefunded, 500}} {
			// A refund is asked once the capture it refunds has reached
			// the merchant's record (the command checks against it).
			c.waitPayment(id, r.state, 1299, r.refunded)
			c.must("", "merchant", "refund", "-db", mdb, "-key", r.key, id, r.amount)
			steps++
			kill()
			c.must("", "merchant", "refund", "-db", mdb, "-key", r.key, id, r.amount) // asked again: refunded once
		}
	}
	// Cancels of booked parcels: a kill right after the merchant took the
	// cancel (the booking's cancel under way), and one once the carrier
	// cancelled the booking (the vault's revoke and the issuer's void under way).
	for i, id := range cancelled {
		if _, err := c.merchantClient(cAlice).Cancel(ctx, id); err != nil {
			t.Fatalf("cancel %s: %v", id, err)
		}
		steps++
		kill()
		deadline := time.Now().Add(30 * time.Second)
		for c.booking(id).Status != carrierapi.StatusCancelled {
			if time.Now().After(deadline) {
				t.Fatalf("booking of %s not cancelled: %+v\n%s", id, c.booking(id), c.log("merchant"))
			}
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Duration(i*30) * time.Millisecond) // vary where in the void the kill lands
		steps++
		kill()
	}
	voids := 0
	for _, id := range cancelled {
		c.waitState(id, merchantapi.StateCancelled)
		c.waitPayment(id, issuerapi.StateVoided, 0, 0)
		if a := c.issuerAuth(id); a.State() != issuerapi.StateVoided || a.Captured != 0 || !a.Voided {
			t.Fatalf("issuer: order %s %s captured %d", id, a.State(), a.Captured)
		}
		voids++
		sh := c.booking(id)
		evs, _, err := c.carrierStore().Events(ctx, sh.Tracking)
		if err != nil || sh.Status != carrierapi.StatusCancelled || len(evs) != 1 || evs[0].Status != carrierapi.StatusCancelled {
			t.Fatalf("carrier: order %s %+v, events %+v %v: want the booking cancelled exactly once", id, sh, evs, err)
		}
		c.checkRevoked(id)
	}
	for _, id := range ids {
		c.waitPayment(id, issuerapi.StatePartiallyRefunded, 1299, 800)
		if a := c.issuerAuth(id); a.Captured != 1299 || a.Refunded != 800 {
			t.Fatalf("issuer: order %s captured %d refunded %d, want 1299 and 800", id, a.Captured, a.Refunded)
		}
	}
	if got, want := c.available(cAlice), int64(limit-orders*(1299-800)); got != want {
		t.Fatalf("available %d, want %d: a capture or a refund was lost or doubled", got, want)
	}
	dead, err := c.merchantStore().Outbox().Count(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if dead.Failed != 0 {
		t.Fatalf("%d relay jobs failed for good:\n%s", dead.Failed, c.log("merchant"))
	}
	t.Logf("lifecycle chaos: %d orders captured and refunded, %d booked orders cancelled (%d voided at the issuer, each booking cancelled by exactly one carrier event), %d steps, %d SIGKILLs (merchant and issuer in turn), 0 double captures, 0 lost refunds, 0 double voids, %s",
		orders, cancels, voids, steps, kills, time.Since(start).Round(time.Second))
}
