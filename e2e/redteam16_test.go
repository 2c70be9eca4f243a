package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	carrierapi "orderseal/carrier/api"
	"orderseal/internal/signedhttp/httpsig"
	merchantapi "orderseal/merchant/api"
	"orderseal/order"
	"orderseal/suite"
	"orderseal/tstest/keys"
)

// TestRedTeamCallbackSSRF reproduces issue 16 item 5 with the real
// binaries: a merchant's booking names an events URL on the carrier's own
// loopback (an internal admin endpoint). The carrier must refuse it and post
// nothing there; events go only to the URL its configuration names for the
// merchant, and an old client sending that very URL still books.
func TestRedTeamCallbackSSRF(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns every daemon")
	}
	c := newCluster(t)
	token := c.registerAddress(cAlice, "home", false)
	var hits atomic.Int64
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(admin.Close)
	shop := httpsig.NewClient(suite.NewKeys(keys.Party(t, cShop), 8), &http.Client{Timeout: 30 * time.Second})
	book := func(b *order.Bundle, eventsURL string) (*carrierapi.Shipment, error) {
		relay, err := b.ForRole(order.RoleCarrier)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := relay.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var sh carrierapi.Shipment
		err = shop.DoJSON(context.Background(), cParcel, http.MethodPut, c.url("carrier")+carrierapi.PathShipments+b.OrderID,
			carrierapi.BookingRequest{Bundle: raw, Invoice: "INV-SSRF", EventsURL: eventsURL}, &sh)
		return &sh, err
	}

	b := c.sealFor(cAlice, cardCanary, token, 1)
	sh, err := book(b, admin.URL+"/internal/admin/reset?all=1")
	if err == nil {
		t.Errorf("the carrier booked %s with the request's events URL (tracking %s)", b.OrderID, sh.Tracking)
		c.must("", "carrier", "event", sh.Tracking, "-status", "picked-up", "-db", c.path("carrier", "carrier.db"))
	} else {
		wantProblem(t, err, http.StatusUnprocessableEntity, carrierapi.CodeEventsURLMismatch)
	}
	// The configured URL, as old merchants send it, still books, and its
	// events reach the merchant, never the admin endpoint.
	ok := c.sealFor(cAlice, cardCanary, token, 1)
	okSh, err := book(ok, c.url("merchant")+merchantapi.PathOrder+ok.OrderID+merchantapi.EventsSuffix)
	if err != nil {
		t.Fatalf("booking with the configured events URL: %v", err)
	}
	c.must("", "carrier", "event", okSh.Tracking, "-status", "picked-up", "-db", c.path("carrier", "carrier.db"))
	// The merchant knows no such order and refuses the event: either way
	// the job ends (done or failed) after reaching the configured merchant.
	deadline := time.Now().Add(20 * time.Second)
	for len(c.carrierJobs("pending")) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // a few more delivery rounds of the daemon
	if n := hits.Load(); n != 0 {
		t.Errorf("the carrier sent %d requests to the admin endpoint a booking named", n)
	}
	if ended := append(c.carrierJobs("done"), c.carrierJobs("failed")...); len(ended) != 1 || ended[0] != okSh.Tracking+"/1" {
		t.Errorf("tracking events delivered or refused: %v, want only %s/1", ended, okSh.Tracking)
	}
}

// carrierJobs lists the carrier's tracking-event jobs in state.
func (c *cluster) carrierJobs(state string) []string {
	c.t.Helper()
	jobs, err := c.carrierStore().Outbox().List(context.Background(), state)
	if err != nil {
		c.t.Fatal(err)
	}
	var keys []string
	for _, j := range jobs {
		keys = append(keys, j.Key)
	}
	return keys
}
