package carrier_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"orderseal/carrier"
	"orderseal/carrier/api"
	"orderseal/carrier/store"
	"orderseal/internal/signedhttp"
	"orderseal/tstest/keys"
	"orderseal/tstest/webtest"
)

// TestReplayAfterRestart is issue 16 item 3 for the carrier: a merchant's
// signed booking captured on the wire and replayed after the carrier
// restarts on the same database is refused as a replay. The body is
// refused by the handler; the nonce was recorded all the same.
func TestReplayAfterRestart(t *testing.T) {
	e := newEnv(t)
	tap := &webtest.Tap{}
	c := signedhttp.NewClient(keys.Keys(t, keys.Shop), &http.Client{Transport: tap})
	resp, err := c.Do(context.Background(), keys.Parcel, http.MethodPut, e.ts.URL+api.PathShipments+"ord_replayed", []byte(`{}`))
	if err != nil || resp.Status != http.StatusUnprocessableEntity {
		t.Fatalf("genuine request: %v %v, want a signed 422", resp, err)
	}
	captured := tap.Last(t)

	// The process ends; a new one opens the same database.
	e.ts.Close()
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := carrier.OpenStore(context.Background(), e.dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := httptest.NewServer(carrier.NewServer(keys.Keys(t, keys.Parcel), st, e.vaultClient(t, keys.Parcel), carrier.Options{}).Handler())
	t.Cleanup(ts.Close)
	if status, code := webtest.Replay(t, nil, ts.URL, captured); status != http.StatusUnauthorized || code != signedhttp.CodeReplayedNonce {
		t.Fatalf("replay after the restart: HTTP %d %q, want 401 %q", status, code, signedhttp.CodeReplayedNonce)
	}
}
