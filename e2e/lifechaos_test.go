package e2e

import (
	"context"
	"testing"
	"time"

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
// shipment, two partial refunds, each refund asked twice — and checks that
// every order ends captured once and refunded exactly what was asked, at
// both parties and on the card, to the minor unit.
func TestLifecycleChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns every daemon")
	}
	start := time.Now()
	c := newCluster(t)
	const limit, orders = 5000_00, 4
	c.enroll(cAlice, cardCanary, "2031-12", "500000")
	token := c.registerAddress(cAlice, "home", false)
	mdb := c.path("merchant", "merchant.db")
	ctx := context.Background()
	mc := c.merchantClient(cAlice)

	var ids []string
	for range orders {
		b := c.sealFor(cAlice, cardCanary, token, 1)
		if _, err := mc.Submit(ctx, b); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, b.OrderID)
	}
	for _, id := range ids {
		c.waitState(id, merchantapi.StateShipped)
	}
	if got := c.available(cAlice); got != limit-orders*1299 {
		t.Fatalf("available %d after %d authorizations", got, orders)
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
	t.Logf("lifecycle chaos: %d orders, %d steps, %d SIGKILLs (merchant and issuer in turn), 0 double captures, 0 lost refunds, %s",
		orders, steps, kills, time.Since(start).Round(time.Second))
}
