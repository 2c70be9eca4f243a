package e2e

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	issuerapi "orderseal/issuer/api"
	issuerstore "orderseal/issuer/store"
	merchantapi "orderseal/merchant/api"
)

// TestLostAnswerChargesOnce is issue 22 item 1: the merchant's 202 to
// POST /v1/orders is lost on the way back (the proxy in front of the
// merchant passes the request and cuts the connection instead of relaying
// the answer). The cardholder sends the same bundle again until an answer
// comes, or gives up naming the order and continues it with -resume; the
// issuer charges each order once.
func TestLostAnswerChargesOnce(t *testing.T) {
	c := newCluster(t)
	c.enroll(cAlice, cardCanary, "2031-12", "50000")
	alice := c.wallet("alice", cAlice, cardCanary)
	c.registerAddress(cAlice, "home", true)
	submits := func(r *http.Request) bool { return r.Method == http.MethodPost && r.URL.Path == merchantapi.PathOrders }
	approvals := func() int {
		auths, err := c.issuerStore().Authorizations(context.Background(), issuerstore.AuthFilter{})
		if err != nil {
			t.Fatal(err)
		}
		return countFunc(auths, func(a issuerstore.Authorization) bool { return a.Sealer == cAlice && a.Decision == issuerapi.Approved })
	}
	outboxEmpty := func(t *testing.T) {
		entries, _ := os.ReadDir(c.path("state", "orderseal", "outbox"))
		for _, e := range entries {
			t.Errorf("outbox still holds %s after the merchant answered", e.Name())
		}
	}

	t.Run("three answers lost, the fourth arrives", func(t *testing.T) {
		c := c.with(t)
		var seen atomic.Int32
		c.proxies["merchant"].dropAnswers(func(r *http.Request) bool { return submits(r) && seen.Add(1) <= 3 })
		defer c.proxies["merchant"].dropAnswers(nil)
		before, approved := c.available(cAlice), approvals()
		id, state, rest, code, errs := c.orderCLI(alice, "-item", "BOOK-1984.pb=1", "-ship-to", "home")
		if code != 0 || state != merchantapi.StateShipped {
			t.Fatalf("order %s: exit %d state %s %s\n%s", id, code, state, rest, errs)
		}
		if n := seen.Load(); n != 4 {
			t.Fatalf("the merchant got %d submissions, want 4 (three answers lost)", n)
		}
		if !strings.Contains(errs, "sending the same bundle again") {
			t.Errorf("stderr does not say the bundle was sent again:\n%s", errs)
		}
		if got := before - c.available(cAlice); got != 1299 {
			t.Fatalf("debited %d, want 1299 (one charge)", got)
		}
		if got := approvals() - approved; got != 1 {
			t.Fatalf("%d approvals at the issuer, want 1", got)
		}
		outboxEmpty(t)
	})

	t.Run("no answer at all: outcome unknown, then -resume", func(t *testing.T) {
		c := c.with(t)
		c.proxies["merchant"].dropAnswers(submits)
		defer c.proxies["merchant"].dropAnswers(nil)
		before, approved := c.available(cAlice), approvals()
		out, errs, code := c.run("", "cardholder", append(append([]string{"order"}, alice...),
			"-item", "BOOK-1984.pb=1", "-ship-to", "home", "-submit-for", "2s")...)
		id := strings.TrimSpace(out)
		if code != 1 || !strings.HasPrefix(id, "ord_") {
			t.Fatalf("exit %d, stdout %q, want 1 and the order id\n%s", code, out, errs)
		}
		if want := "outcome unknown: cardholder status " + id; !strings.Contains(errs, want) {
			t.Fatalf("stderr lacks %q:\n%s", want, errs)
		}
		if !strings.Contains(errs, "cardholder order -resume "+id) {
			t.Errorf("stderr does not say how to resume:\n%s", errs)
		}
		if _, err := os.Stat(c.path("state", "orderseal", "outbox", id+".json")); err != nil {
			t.Fatalf("the sealed bundle is not kept: %v", err)
		}
		// The merchant did store it, and relays it while she is in the dark.
		c.waitState(id, merchantapi.StateShipped)
		st := c.must("", "cardholder", "status", id) // merchant and key from the outbox
		if !strings.Contains(st, "state     shipped") {
			t.Fatalf("cardholder status %s:\n%s", id, st)
		}
		c.proxies["merchant"].dropAnswers(nil)
		out, errs, code = c.run("", "cardholder", "order", "-resume", id, "-wait", "60s")
		if code != 0 || !strings.Contains(out, id+" shipped") {
			t.Fatalf("order -resume %s: exit %d\n%s%s", id, code, out, errs)
		}
		if got := before - c.available(cAlice); got != 1299 {
			t.Fatalf("debited %d, want 1299 (one charge)", got)
		}
		if got := approvals() - approved; got != 1 {
			t.Fatalf("%d approvals at the issuer, want 1", got)
		}
		outboxEmpty(t)
		if _, errs, code := c.run("", "cardholder", "order", "-resume", id); code != 1 || !strings.Contains(errs, "not in the outbox") {
			t.Fatalf("a second -resume: exit %d\n%s", code, errs)
		}
	})
}
