package carrier_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"orderseal/carrier"
	"orderseal/carrier/api"
	"orderseal/internal/outbox"
	"orderseal/internal/problem"
	"orderseal/internal/signedhttp"
	"orderseal/internal/web"
	"orderseal/order"
	"orderseal/tstest/keys"
)

// fakeMerchant is a merchant's events endpoint: signed requests only, from
// carriers only. While down it answers 503 without a signature, as a
// load balancer in front of a dead merchant would.
type fakeMerchant struct {
	ts   *httptest.Server
	down atomic.Bool
	mu   sync.Mutex
	got  []api.TrackingEvent
	from []string
}

func newFakeMerchant(t *testing.T) *fakeMerchant {
	t.Helper()
	m := &fakeMerchant{}
	e := web.New(slog.New(slog.DiscardHandler))
	e.Use(signedhttp.NewVerifier(keys.Keys(t, keys.Shop)).Middleware())
	e.POST("/v1/orders/:id/events", func(c echo.Context) error {
		if strings.HasPrefix(c.Param("id"), "ord-refuse") {
			return problem.New(http.StatusUnprocessableEntity, "unknown-order", "Unknown order", "No such order.")
		}
		var ev api.TrackingEvent
		if err := web.Bind(c, &ev, 4<<10); err != nil {
			return err
		}
		m.mu.Lock()
		m.got = append(m.got, ev)
		m.from = append(m.from, signedhttp.Caller(c))
		m.mu.Unlock()
		return c.NoContent(http.StatusNoContent)
	}, signedhttp.Allow("carrier"))
	m.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.down.Load() {
			http.Error(w, "no upstream", http.StatusServiceUnavailable)
			return
		}
		e.ServeHTTP(w, r)
	}))
	t.Cleanup(m.ts.Close)
	return m
}

func (m *fakeMerchant) events() ([]api.TrackingEvent, []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]api.TrackingEvent(nil), m.got...), append([]string(nil), m.from...)
}

func jobState(t *testing.T, e *env, key string) (string, int) {
	t.Helper()
	es, err := e.st.Outbox().List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range es {
		if j.Key == key {
			return j.State, j.Attempts
		}
	}
	t.Fatalf("no job %s", key)
	return "", 0
}

// TestEventDelivery: events recorded by the command line while the daemon
// runs reach the merchant, signed, in order, after the merchant was down
// for a while; a merchant's refusal is final; nonsense transitions are refused.
func TestEventDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	m := newFakeMerchant(t)
	m.down.Store(true)
	e.merchants[keys.Shop] = m.ts.URL
	shop := e.merchant(t, keys.Shop)
	b := sealOrder(t, keys.Shop, keys.Parcel, "", &inlineAddress, order.SealOptions{})
	sh, err := shop.Book(ctx, b, "INV-1")
	if err != nil {
		t.Fatal(err)
	}

	r := carrier.NewRunner(keys.Keys(t, keys.Parcel), e.st, e.merchants, &http.Client{Timeout: 5 * time.Second}, nil)
	r.Poll, r.MinBackoff, r.MaxBackoff = 20*time.Millisecond, 10*time.Millisecond, 40*time.Millisecond
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); r.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })

	steps := []struct{ status, note string }{
		{"picked-up", ""}, {"in-transit", "hub Leipzig"}, {"out-for-delivery", ""}, {"delivered", "handed to neighbour"},
	}
	for i, s := range steps {
		args := []string{"event", sh.Tracking, "-status", s.status, "-db", e.dbPath}
		if s.note != "" {
			args = append(args, "-note", s.note)
		}
		code, out, errOut := run(t, args...)
		if code != 0 || !strings.HasPrefix(out, sh.Tracking+"\t"+string(rune('1'+i))+"\t"+s.status+"\t") {
			t.Fatalf("event %s: exit %d, out %q, err %q", s.status, code, out, errOut)
		}
	}
	// The merchant is down: attempts are made, nothing is lost.
	waitFor(t, "a failed attempt", func() bool { _, n := jobState(t, e, sh.Tracking+"/1"); return n >= 2 })
	if got, _ := m.events(); len(got) != 0 {
		t.Fatalf("delivered %d events while down", len(got))
	}
	m.down.Store(false)
	r.Kick()
	waitFor(t, "four events", func() bool { got, _ := m.events(); return len(got) == 4 })
	got, from := m.events()
	bySeq := map[int64]api.TrackingEvent{}
	for i, ev := range got {
		if from[i] != keys.Parcel {
			t.Fatalf("event from %s", from[i])
		}
		bySeq[ev.Seq] = ev
	}
	for i, s := range steps {
		ev := bySeq[int64(i+1)]
		if ev.Status != s.status || ev.Note != s.note || ev.OrderID != b.OrderID || ev.Tracking != sh.Tracking {
			t.Fatalf("event %d: %+v", i+1, ev)
		}
		if _, err := time.Parse(time.RFC3339, ev.At); err != nil {
			t.Fatalf("event %d at %q", i+1, ev.At)
		}
	}
	waitFor(t, "jobs done", func() bool { st, _ := e.st.Outbox().Count(ctx, ""); return st.Done == 4 })

	// After delivered only returned; after returned nothing.
	code, _, errOut := run(t, "event", sh.Tracking, "-status", "in-transit", "-db", e.dbPath)
	if code != 1 || !strings.Contains(errOut, "carrier: error:") || !strings.Contains(errOut, "carrier: hint:") {
		t.Fatalf("in-transit after delivered: exit %d, %q", code, errOut)
	}
	if code, _, errOut := run(t, "event", "-status", "returned", "-db", e.dbPath, strings.ToLower(sh.Tracking)); code != 0 {
		t.Fatalf("returned after delivered: exit %d, %q", code, errOut)
	}
	if code, _, _ := run(t, "event", sh.Tracking, "-status", "returned", "-db", e.dbPath); code != 1 {
		t.Fatalf("returned twice: exit %d", code)
	}
	waitFor(t, "the return delivered", func() bool { got, _ := m.events(); return len(got) == 5 })

	// track shows every event and its delivery.
	code, out, _ := run(t, "track", sh.Tracking, "-db", e.dbPath, "-json")
	var rows []struct {
		Seq      int64  `json:"seq"`
		Status   string `json:"status"`
		Delivery string `json:"delivery"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 5 || rows[4].Status != "returned" || rows[0].Delivery != "done" {
		t.Fatalf("track: exit %d %s", code, out)
	}

	// A merchant that refuses an event (signed 4xx) is not asked again.
	refused, err := shop.Book(ctx, sealOrder(t, keys.Shop, keys.Parcel, "", &inlineAddress, order.SealOptions{OrderID: "ord-refuse-1"}), "INV-2")
	if err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run(t, "event", refused.Tracking, "-status", "picked-up", "-db", e.dbPath); code != 0 {
		t.Fatalf("event: %q", errOut)
	}
	waitFor(t, "the refused job to fail", func() bool { s, _ := jobState(t, e, refused.Tracking+"/1"); return s == "failed" })
	if _, n := jobState(t, e, refused.Tracking+"/1"); n != 1 {
		t.Fatalf("a refused event was tried %d times", n)
	}
}

// TestEventHandlerClassifies: which answers are retried and which are final.
func TestEventHandlerClassifies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status    int
		permanent bool
	}{
		{http.StatusBadRequest, true},
		{http.StatusNotFound, true},
		{http.StatusConflict, true},
		{http.StatusRequestTimeout, false},
		{http.StatusTooManyRequests, false},
		{http.StatusInternalServerError, false},
		{http.StatusServiceUnavailable, false},
	}
	for _, tt := range tests {
		e := web.New(slog.New(slog.DiscardHandler))
		e.Use(signedhttp.NewVerifier(keys.Keys(t, keys.Shop)).Middleware())
		e.POST("/v1/orders/o/events", func(c echo.Context) error {
			return problem.New(tt.status, "test-refusal", "Test", "Test.")
		})
		ts := httptest.NewServer(e)
		h := carrier.EventHandler(keys.Keys(t, keys.Parcel), carrier.Merchants{keys.Shop: ts.URL}, ts.Client(), nil)
		payload, _ := json.Marshal(map[string]any{"merchant": keys.Shop, "events_url": ts.URL + "/v1/orders/o/events",
			"event": api.TrackingEvent{OrderID: "o", Tracking: "OS123456785DE", Seq: 1, Status: "picked-up", At: "2030-01-01T00:00:00Z"}})
		err := h(context.Background(), outbox.Job{Kind: "tracking-event", Key: "OS123456785DE/1", Payload: payload})
		if err == nil || outbox.IsPermanent(err) != tt.permanent {
			t.Errorf("HTTP %d: %v (permanent %v), want permanent %v", tt.status, err, outbox.IsPermanent(err), tt.permanent)
		}
		ts.Close()
	}
	// A payload that does not decode can never be delivered.
	h := carrier.EventHandler(keys.Keys(t, keys.Parcel), carrier.Merchants{}, http.DefaultClient, nil)
	if err := h(context.Background(), outbox.Job{Payload: []byte("{")}); !outbox.IsPermanent(err) {
		t.Fatalf("bad payload: %v", err)
	}
}

// TestEventHandlerConfiguredURLOnly (issue 16 item 5): a job's recorded
// events URL — one a booking request once chose, such as the carrier's own
// loopback admin endpoint — is never requested; the event goes to the URL
// configured for the merchant, and a merchant no longer configured fails
// the job for good instead of retrying it.
func TestEventHandlerConfiguredURLOnly(t *testing.T) {
	t.Parallel()
	var adminHits, merchantHits atomic.Int64
	admin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		adminHits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(admin.Close)
	e := web.New(slog.New(slog.DiscardHandler))
	e.Use(signedhttp.NewVerifier(keys.Keys(t, keys.Shop)).Middleware())
	e.POST("/shop/v1/orders/ord-1/events", func(c echo.Context) error {
		merchantHits.Add(1)
		return c.NoContent(http.StatusNoContent)
	}, signedhttp.Allow("carrier"))
	shop := httptest.NewServer(e)
	t.Cleanup(shop.Close)
	payload, _ := json.Marshal(map[string]any{"merchant": keys.Shop, "events_url": admin.URL + "/internal/admin/reset?all=1",
		"event": api.TrackingEvent{OrderID: "ord-1", Tracking: "OS123456785DE", Seq: 1, Status: "picked-up", At: "2030-01-01T00:00:00Z"}})
	job := outbox.Job{Kind: "tracking-event", Key: "OS123456785DE/1", Payload: payload}
	h := carrier.EventHandler(keys.Keys(t, keys.Parcel), carrier.Merchants{keys.Shop: shop.URL + "/shop"}, http.DefaultClient, nil)
	if err := h(context.Background(), job); err != nil {
		t.Fatalf("delivery to the configured URL: %v", err)
	}
	h = carrier.EventHandler(keys.Keys(t, keys.Parcel), carrier.Merchants{keys.OtherShop: shop.URL}, http.DefaultClient, nil)
	if err := h(context.Background(), job); !outbox.IsPermanent(err) {
		t.Fatalf("unconfigured merchant: %v, want a permanent failure", err)
	}
	if adminHits.Load() != 0 || merchantHits.Load() != 1 {
		t.Fatalf("admin endpoint got %d requests, the merchant %d", adminHits.Load(), merchantHits.Load())
	}
}
