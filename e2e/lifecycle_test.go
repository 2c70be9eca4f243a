package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	carrierapi "orderseal/carrier/api"
	carrierstore "orderseal/carrier/store"
	issuerapi "orderseal/issuer/api"
	issuerstore "orderseal/issuer/store"
	merchantapi "orderseal/merchant/api"
	merchantstore "orderseal/merchant/store"
)

// payment is the merchant's record of an order's payment (the issuer's last word).
func (c *cluster) payment(id string) (merchantstore.Payment, bool) {
	c.t.Helper()
	p, ok, err := c.merchantStore().Payment(context.Background(), id)
	if err != nil {
		c.t.Fatalf("merchant payment %s: %v", id, err)
	}
	return p, ok
}

// waitPayment polls the merchant's record until the order's payment is
// in state with captured and refunded as given.
func (c *cluster) waitPayment(id, state string, captured, refunded int64) merchantstore.Payment {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, ok := c.payment(id)
		if ok && p.State == state && p.Captured == captured && p.Refunded == refunded {
			return p
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("order %s payment %+v (recorded %v), want %s captured %d refunded %d\nmerchant log:\n%s",
				id, p, ok, state, captured, refunded, c.log("merchant"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// issuerAuth is the issuer's own record of the shop's authorization of id.
func (c *cluster) issuerAuth(id string) issuerstore.Authorization {
	c.t.Helper()
	a, err := c.issuerStore().Authorization(context.Background(), cShop, id)
	if err != nil {
		c.t.Fatalf("issuer authorization %s: %v", id, err)
	}
	return a
}

// checkParties holds the order's status at every party: the merchant's
// order state and payment, the issuer's record, what 'cardholder status'
// prints, and the rows of 'merchant orders' and 'issuer authorizations'.
func (c *cluster) checkParties(id, orderState, payState string, captured, refunded int64) {
	c.t.Helper()
	if o := c.order(id); o.State != orderState {
		c.t.Fatalf("merchant: order %s is %s, want %s", id, o.State, orderState)
	}
	c.waitPayment(id, payState, captured, refunded)
	if a := c.issuerAuth(id); a.State() != payState || a.Captured != captured || a.Refunded != refunded {
		c.t.Fatalf("issuer: %s captured %d refunded %d, want %s %d %d", a.State(), a.Captured, a.Refunded, payState, captured, refunded)
	}
	out := c.must("", "cardholder", "status", id, "-merchant", c.url("merchant"), "-merchant-id", cShop, "-key", c.keyFile(cAlice), "-json")
	var st merchantapi.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		c.t.Fatal(err)
	}
	if st.State != orderState || st.Payment == nil || st.Payment.State != payState || st.Payment.Captured != captured || st.Payment.Refunded != refunded {
		c.t.Fatalf("cardholder status: %s %+v", st.State, st.Payment)
	}
	row := func(out string) []string {
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[0] == id {
				return f
			}
		}
		c.t.Fatalf("no row for %s in:\n%s", id, out)
		return nil
	}
	if f := row(c.must("", "merchant", "orders", "-db", c.path("merchant", "merchant.db"))); !strings.Contains(strings.Join(f, " "), payState) {
		c.t.Fatalf("merchant orders: %q lacks %s", f, payState)
	}
	if f := row(c.must("", "issuer", "authorizations", "-db", c.path("issuer", "issuer.db"))); !strings.Contains(strings.Join(f, " "), payState) {
		c.t.Fatalf("issuer authorizations: %q lacks %s", f, payState)
	}
}

// rowOf is the line of a table that starts with id.
func rowOf(t *testing.T, out, id string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == id {
			return l
		}
	}
	t.Fatalf("no row for %s in:\n%s", id, out)
	return ""
}

// booking is the carrier's record of the shop's shipment of id.
func (c *cluster) booking(id string) carrierstore.Shipment {
	c.t.Helper()
	sh, err := c.carrierStore().ByOrder(context.Background(), cShop, id)
	if err != nil {
		c.t.Fatalf("carrier shipment of %s: %v", id, err)
	}
	return sh
}

// checkRevoked holds every vault grant of order id revoked.
func (c *cluster) checkRevoked(id string) {
	c.t.Helper()
	grants, err := c.vaultIndex().Grants(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	n := 0
	for _, g := range grants {
		if g.OrderID == id {
			n++
			if g.State != "revoked" {
				c.t.Fatalf("the cancelled order's grant is %s", g.State)
			}
		}
	}
	if n == 0 {
		c.t.Fatalf("order %s has no grant at the vault", id)
	}
}

// refused runs a merchant payment command that must fail with code and
// change nothing at any party.
func (c *cluster) refused(code string, args ...string) {
	c.t.Helper()
	before, credit := c.stored(), c.available(cAlice)
	out, errs, exit := c.run("", "merchant", args...)
	if exit == 0 || !strings.Contains(errs, "["+code+"]") || !strings.Contains(errs, "hint:") || out != "" {
		c.t.Fatalf("merchant %s: exit %d, stdout %q, stderr %q; want a refusal [%s]", strings.Join(args, " "), exit, out, errs, code)
	}
	time.Sleep(300 * time.Millisecond) // three relay polls: nothing may have been queued
	if after := c.stored(); !equalCounts(before, after) || c.available(cAlice) != credit {
		c.t.Fatalf("refused %s changed %v → %v (credit %d → %d)", code, before, after, credit, c.available(cAlice))
	}
}

// TestLifecycle runs every path of the payment after authorization
// (DESIGN.md §6.8) across the real daemons, holding the issuer's available
// credit to the minor unit and the order's status at every party.
func TestLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns every daemon")
	}
	c := newCluster(t)
	top := c // daemons started again from a subtest belong to the whole test, not to that subtest
	const limit = 500_00
	c.enroll(cAlice, cardCanary, "2031-12", "50000")
	alice := c.wallet("alice", cAlice, cardCanary)
	token := c.registerAddress(cAlice, "home", false)
	mdb := c.path("merchant", "merchant.db")
	ship := func(t *testing.T, id string, statuses ...string) {
		t.Helper()
		for _, s := range statuses {
			c.with(t).must("", "carrier", "event", c.order(id).Tracking, "-status", s, "-db", c.path("carrier", "carrier.db"))
		}
	}
	place := func(t *testing.T, qty string) string {
		t.Helper()
		id, state, rest, code, errs := c.with(t).orderCLI(alice, "-item", "BOOK-1984.pb="+qty, "-ship-to", "home")
		if code != 0 || state != merchantapi.StateShipped {
			t.Fatalf("order %s: exit %d state %s %s\n%s", id, code, state, rest, errs)
		}
		return id
	}
	var captured string // an order captured whole, refunded below

	t.Run("capture on shipment", func(t *testing.T) {
		c := c.with(t)
		before := c.available(cAlice)
		id := place(t, "1")
		if got := c.available(cAlice); got != before-1299 {
			t.Fatalf("available %d after authorization, want %d", got, before-1299)
		}
		if a := c.issuerAuth(id); a.State() != issuerstore.StateAuthorized || a.HoldUntil.IsZero() {
			t.Fatalf("issuer: %+v", a)
		}
		ship(t, id, "picked-up")
		c.checkParties(id, merchantapi.StateShipped, issuerapi.StateCaptured, 1299, 0)
		if got := c.available(cAlice); got != before-1299 {
			t.Fatalf("available %d after capture, want %d: a capture turns the hold into a charge", got, before-1299)
		}
		// Later events find the capture made: nothing is captured twice.
		ship(t, id, "in-transit", "delivered")
		c.waitState(id, merchantapi.StateDelivered)
		c.checkParties(id, merchantapi.StateDelivered, issuerapi.StateCaptured, 1299, 0)
		if got := c.available(cAlice); got != before-1299 {
			t.Fatalf("available %d after delivery, want %d", got, before-1299)
		}
		captured = id
	})

	t.Run("partial capture of split shipments", func(t *testing.T) {
		c := c.with(t)
		before := c.available(cAlice)
		id := place(t, "3") // 38.97
		c.must("", "merchant", "capture", "-db", mdb, id, "10.00")
		c.checkParties(id, merchantapi.StateShipped, issuerapi.StatePartiallyCaptured, 1000, 0)
		c.must("", "merchant", "capture", "-db", mdb, "-final", id, "15.00")
		c.checkParties(id, merchantapi.StateShipped, issuerapi.StateCaptured, 2500, 0)
		// The last shipment releases the rest of the hold: 38.97 − 25.00.
		if got := c.available(cAlice); got != before-2500 {
			t.Fatalf("available %d, want %d", got, before-2500)
		}
		ship(t, id, "picked-up", "in-transit", "delivered")
		c.waitState(id, merchantapi.StateDelivered)
		c.checkParties(id, merchantapi.StateDelivered, issuerapi.StateCaptured, 2500, 0)
		if got := c.available(cAlice); got != before-2500 {
			t.Fatalf("available %d after delivery, want %d", got, before-2500)
		}
	})

	t.Run("partial refund, then refund of the rest", func(t *testing.T) {
		c := c.with(t)
		before := c.available(cAlice)
		c.must("", "merchant", "refund", "-db", mdb, "-key", "return-1", captured, "5.00")
		c.checkParties(captured, merchantapi.StateDelivered, issuerapi.StatePartiallyRefunded, 1299, 500)
		if got := c.available(cAlice); got != before+500 {
			t.Fatalf("available %d after a 5.00 refund, want %d", got, before+500)
		}
		// The same key again refunds nothing twice.
		c.must("", "merchant", "refund", "-db", mdb, "-key", "return-1", captured, "5.00")
		time.Sleep(300 * time.Millisecond)
		if got := c.available(cAlice); got != before+500 {
			t.Fatalf("available %d after the refund was asked again, want %d", got, before+500)
		}
		c.must("", "merchant", "refund", "-db", mdb, captured, "7.99")
		c.checkParties(captured, merchantapi.StateDelivered, issuerapi.StateRefunded, 1299, 1299)
		if got := c.available(cAlice); got != before+1299 {
			t.Fatalf("available %d after the whole refund, want %d", got, before+1299)
		}
	})

	t.Run("cancel before shipment voids and revokes", func(t *testing.T) {
		c := c.with(t)
		before := c.available(cAlice)
		c.stop("carrier") // the booking waits: the order stays authorized
		b := c.sealFor(cAlice, cardCanary, token, 1)
		if _, err := c.merchantClient(cAlice).Submit(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		c.waitState(b.OrderID, merchantapi.StateAuthorized)
		if got := c.available(cAlice); got != before-1299 {
			t.Fatalf("available %d while held, want %d", got, before-1299)
		}
		cancel := []string{"order", "cancel", b.OrderID, "-merchant", c.url("merchant"), "-merchant-id", cShop, "-key", c.keyFile(cAlice)}
		out := c.must("", "cardholder", cancel...)
		if !strings.Contains(out, "state     "+merchantapi.StateCancelled) {
			t.Fatalf("cancel printed:\n%s", out)
		}
		c.checkParties(b.OrderID, merchantapi.StateCancelled, issuerapi.StateVoided, 0, 0)
		if got := c.available(cAlice); got != before {
			t.Fatalf("available %d after the cancel, want %d", got, before)
		}
		c.checkRevoked(b.OrderID)
		// A second cancel is refused and changes nothing.
		n := c.stored()
		_, errs, code := c.run("", "cardholder", cancel...)
		if code == 0 || !strings.Contains(errs, merchantapi.CodeAlreadyCancelled) {
			t.Fatalf("second cancel: exit %d %s", code, errs)
		}
		if !equalCounts(n, c.stored()) {
			t.Fatal("a second cancel changed something")
		}
		c.refused(issuerapi.CodeCaptureAfterVoid, "capture", "-db", mdb, b.OrderID, "12.99")
		top.launch(c.daemons["carrier"], "carrier")
		time.Sleep(500 * time.Millisecond)
		if o := c.order(b.OrderID); o.State != merchantapi.StateCancelled || o.Tracking != "" {
			t.Fatalf("a cancelled order was booked: %+v", o)
		}
		if sh, err := c.carrierStore().ByOrder(context.Background(), cShop, b.OrderID); err == nil && sh.Status != carrierapi.StatusCancelled {
			t.Fatalf("the carrier holds a live booking of a cancelled order: %+v", sh)
		}
	})

	t.Run("cancel after booking cancels the booking, then voids", func(t *testing.T) {
		c := c.with(t)
		before := c.available(cAlice)
		id := place(t, "1") // booked: the parcel has not left
		tracking := c.order(id).Tracking
		if sh := c.booking(id); sh.Status != carrierapi.StatusBooked || sh.Tracking != tracking {
			t.Fatalf("carrier: %+v", sh)
		}
		cancel := []string{"order", "cancel", id, "-merchant", c.url("merchant"), "-merchant-id", cShop, "-key", c.keyFile(cAlice)}
		out := c.must("", "cardholder", cancel...)
		if !strings.Contains(out, "state     "+merchantapi.StateCancelled) || !strings.Contains(out, merchantapi.StateCancelling) {
			t.Fatalf("cancel printed:\n%s", out)
		}
		c.checkParties(id, merchantapi.StateCancelled, issuerapi.StateVoided, 0, 0)
		if got := c.available(cAlice); got != before {
			t.Fatalf("available %d after the cancel, want %d", got, before)
		}
		if sh := c.booking(id); sh.Status != carrierapi.StatusCancelled || sh.Tracking != tracking {
			t.Fatalf("carrier after the cancel: %+v", sh)
		}
		if evs, _, err := c.carrierStore().Events(context.Background(), tracking); err != nil || len(evs) != 1 || evs[0].Status != carrierapi.StatusCancelled {
			t.Fatalf("carrier events %+v %v: want the booking cancelled once", evs, err)
		}
		c.checkRevoked(id)
		// The carrier's event reaches the merchant's timeline.
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(c.must("", "cardholder", "status", id, "-merchant", c.url("merchant"), "-merchant-id", cShop, "-key", c.keyFile(cAlice)),
			"tracking "+tracking+": "+carrierstore.CancelNote) {
			if time.Now().After(deadline) {
				t.Fatalf("the carrier's cancel never reached the merchant\n%s", c.log("carrier"))
			}
			time.Sleep(100 * time.Millisecond)
		}
		// A second cancel is refused and changes nothing; the cancelled
		// parcel takes no pickup.
		n := c.stored()
		if _, errs, code := c.run("", "cardholder", cancel...); code == 0 || !strings.Contains(errs, merchantapi.CodeAlreadyCancelled) {
			t.Fatalf("second cancel: exit %d %s", code, errs)
		}
		if _, _, code := c.run("", "carrier", "event", tracking, "-status", "picked-up", "-db", c.path("carrier", "carrier.db")); code == 0 {
			t.Fatal("a cancelled booking was picked up")
		}
		if !equalCounts(n, c.stored()) {
			t.Fatal("a second cancel changed something")
		}
	})

	t.Run("a cancel the carrier refuses: the parcel had left", func(t *testing.T) {
		c := c.with(t)
		before := c.available(cAlice)
		id := place(t, "1")
		// The pickup is recorded while the carrier's daemon is down: the
		// merchant has not heard of it when the cardholder cancels.
		c.stop("carrier")
		ship(t, id, "picked-up")
		cancel := []string{"order", "cancel", id, "-merchant", c.url("merchant"), "-merchant-id", cShop, "-key", c.keyFile(cAlice)}
		if out := c.must("", "cardholder", append(cancel, "-wait", "0")...); !strings.Contains(out, "state     "+merchantapi.StateCancelling) {
			t.Fatalf("cancel printed:\n%s", out)
		}
		top.launch(c.daemons["carrier"], "carrier")
		c.waitState(id, merchantapi.StateShipped)
		// Nothing was voided: the parcel is charged as it left.
		c.checkParties(id, merchantapi.StateShipped, issuerapi.StateCaptured, 1299, 0)
		if got := c.available(cAlice); got != before-1299 {
			t.Fatalf("available %d, want %d", got, before-1299)
		}
		if sh := c.booking(id); sh.Status != carrierapi.StatusPickedUp {
			t.Fatalf("carrier: %+v", sh)
		}
		// Asked again, the merchant refuses at once.
		n := c.stored()
		if _, errs, code := c.run("", "cardholder", cancel...); code == 0 || !strings.Contains(errs, merchantapi.CodeOrderShipped) {
			t.Fatalf("cancel after the refusal: exit %d %s", code, errs)
		}
		if !equalCounts(n, c.stored()) {
			t.Fatal("a refused cancel changed something")
		}
		ship(t, id, "in-transit", "delivered")
		c.waitState(id, merchantapi.StateDelivered)
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		c := c.with(t)
		c.refused(issuerapi.CodeRefundExceedsCaptured, "refund", "-db", mdb, captured, "0.01")
		id := place(t, "1")
		c.refused(issuerapi.CodeRefundExceedsCaptured, "refund", "-db", mdb, id, "1.00") // nothing captured yet
		c.refused(issuerapi.CodeCaptureExceeds, "capture", "-db", mdb, id, "13.00")
		c.refused("currency-minor-units", "capture", "-db", mdb, id, "1.005")
		c.refused("currency-minor-units", "refund", "-db", mdb, captured, "0.001")
		c.refused(merchantapi.CodeUnknownOrder, "refund", "-db", mdb, "ord_nosuchorder", "1.00")
		c.refused("idempotency-key-invalid", "refund", "-db", mdb, "-key", "a b", captured, "1.00")
		// An installment count the card's product does not offer (a Visa: 1, 3, 6 or 12) is declined with its own reason, and holds nothing.
		credit := c.available(cAlice)
		declined, state, rest, code, _ := c.orderCLI(alice, "-item", "BOOK-1984.pb=3", "-ship-to", "home", "-installments", "5")
		if code == 0 || state != merchantapi.StateDeclined || rest != issuerapi.ReasonInstallments || c.available(cAlice) != credit {
			t.Fatalf("order %s in 5 installments: exit %d, %s %s; credit %d → %d", declined, code, state, rest, credit, c.available(cAlice))
		}
		// The parcel that left cannot be cancelled: ask for a refund instead.
		ship(t, id, "picked-up")
		c.waitPayment(id, issuerapi.StateCaptured, 1299, 0)
		n := c.stored()
		_, errs, code := c.run("", "cardholder", "order", "cancel", id, "-merchant", c.url("merchant"), "-merchant-id", cShop, "-key", c.keyFile(cAlice))
		if code == 0 || !strings.Contains(errs, merchantapi.CodeOrderShipped) || !equalCounts(n, c.stored()) {
			t.Fatalf("cancel after shipment: exit %d %s", code, errs)
		}
	})

	t.Run("installments are shown at every party", func(t *testing.T) {
		c := c.with(t)
		id, state, rest, code, errs := c.orderCLI(alice, "-item", "BOOK-1984.pb=3", "-ship-to", "home", "-installments", "3")
		if code != 0 || state != merchantapi.StateShipped {
			t.Fatalf("order %s in 3 installments: exit %d, %s %s\n%s", id, code, state, rest, errs)
		}
		// 38.97 EUR in three, monthly from the month after the decision.
		sched := c.issuerAuth(id).Schedule()
		if len(sched) != 3 {
			t.Fatalf("issuer schedule %+v", sched)
		}
		var parts []string
		for _, in := range sched {
			if in.Amount != 1299 {
				t.Fatalf("issuer schedule %+v", sched)
			}
			parts = append(parts, "12.99 EUR due "+in.Due.Format(time.DateOnly))
		}
		want := "3 installments: " + strings.Join(parts, ", ")
		status := c.must("", "cardholder", "status", id, "-merchant", c.url("merchant"), "-merchant-id", cShop, "-key", c.keyFile(cAlice))
		if !strings.Contains(status, "plan      "+want+"\n") {
			t.Fatalf("cardholder status lacks %q:\n%s", want, status)
		}
		if out := c.must("", "merchant", "orders", "-db", mdb); !strings.Contains(rowOf(t, out, id), want) {
			t.Fatalf("merchant orders: %q lacks %q", rowOf(t, out, id), want)
		}
		wantIssuer := "3: 12.99 EUR " + sched[0].Due.Format(time.DateOnly) + ", 12.99 EUR " + sched[1].Due.Format(time.DateOnly)
		if out := c.must("", "issuer", "authorizations", "-db", c.path("issuer", "issuer.db")); !strings.Contains(rowOf(t, out, id), wantIssuer) {
			t.Fatalf("issuer authorizations: %q lacks %q", rowOf(t, out, id), wantIssuer)
		}
		// A single payment shows none.
		if out := c.must("", "merchant", "orders", "-db", mdb); !strings.HasSuffix(strings.TrimSpace(rowOf(t, out, captured)), " -") {
			t.Fatalf("merchant orders: a single payment shows a plan: %q", rowOf(t, out, captured))
		}
	})

	t.Run("a hold expires after the issuer's period", func(t *testing.T) {
		c := c.with(t)
		c.stop("issuer")
		d := c.daemons["issuer"]
		d.args = append(d.args, "-hold", "2s")
		top.launch(d, "issuer")
		// The merchant asks about ended holds often enough to see this one.
		c.stop("merchant")
		m := c.daemons["merchant"]
		m.args = append(m.args, "-hold-sweep", "200ms")
		top.launch(m, "merchant")
		before := c.available(cAlice)
		id := place(t, "1")
		if a := c.issuerAuth(id); a.HoldUntil.Sub(a.Decided) != 2*time.Second {
			t.Fatalf("hold %s", a.HoldUntil.Sub(a.Decided))
		}
		deadline := time.Now().Add(10 * time.Second)
		for c.issuerAuth(id).State() != issuerstore.StateExpired {
			if time.Now().After(deadline) {
				t.Fatalf("not expired: %+v\n%s", c.issuerAuth(id), c.log("issuer"))
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got := c.available(cAlice); got != before {
			t.Fatalf("available %d after the hold expired, want %d", got, before)
		}
		// The merchant sees the expiry without a step of its own: its sweep
		// asks the issuer, and every view shows it.
		p := c.waitPayment(id, issuerapi.StateExpired, 0, 0)
		if !p.HoldUntil.Equal(c.issuerAuth(id).HoldUntil.Truncate(time.Second)) {
			t.Fatalf("merchant records the hold until %s, the issuer %s", p.HoldUntil, c.issuerAuth(id).HoldUntil)
		}
		c.checkParties(id, merchantapi.StateShipped, issuerapi.StateExpired, 0, 0)
		status := c.must("", "cardholder", "status", id, "-merchant", c.url("merchant"), "-merchant-id", cShop, "-key", c.keyFile(cAlice))
		if !strings.Contains(status, "payment   expired") || !strings.Contains(status, "the hold expired") || !strings.Contains(status, "hold expired at "+cBank) {
			t.Fatalf("cardholder status does not show the expiry:\n%s", status)
		}
		// Its next step finds it too: the capture on shipment captures nothing.
		ship(t, id, "picked-up")
		c.checkParties(id, merchantapi.StateShipped, issuerapi.StateExpired, 0, 0)
		if got := c.available(cAlice); got != before {
			t.Fatalf("available %d after a capture of an expired hold, want %d", got, before)
		}
		// The card carries 25.00 captured of the split shipments, 12.99 of
		// the parcel whose cancel came too late, 12.99 of the bad-input
		// order and 38.97 held in installments; the rest was refunded,
		// voided or expired.
		if used := limit - c.available(cAlice); used != 2500+1299+1299+3897 {
			t.Fatalf("the card carries %d, want %d", used, 2500+1299+1299+3897)
		}
	})

	t.Run("wire matches the documents", func(t *testing.T) { c.with(t).checkWire(t) })
}
