package issuer_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"orderseal/internal/signedhttp"
	"orderseal/issuer"
	"orderseal/issuer/api"
	"orderseal/issuer/store"
	"orderseal/tstest/keys"
	"orderseal/tstest/webtest"
)

// TestReplayAfterRestart is issue 16 item 3 for the issuer: a merchant's
// signed request captured on the wire and replayed after the issuer
// restarts on the same database is refused as a replay. The body is
// refused by the handler; the nonce was recorded all the same.
func TestReplayAfterRestart(t *testing.T) {
	e := newIssuerEnv(t)
	tap := &webtest.Tap{}
	c := signedhttp.NewClient(keys.Keys(t, keys.Shop), &http.Client{Transport: tap}, signedhttp.WithClientClock(e.clk.Now))
	resp, err := c.Do(context.Background(), keys.Bank, http.MethodPut, e.ts.URL+api.PathAuthorizations+"ord_replayed", []byte(`{}`))
	if err != nil || resp.Status != http.StatusUnprocessableEntity {
		t.Fatalf("genuine request: %v %v, want a signed 422", resp, err)
	}
	captured := tap.Last(t)

	// The process ends; a new one opens the same database.
	e.ts.Close()
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := issuer.OpenStore(context.Background(), e.dbPath, store.Options{Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := httptest.NewServer(issuer.NewServer(keys.Keys(t, keys.Bank), st, issuer.Options{Now: e.clk.Now,
		Verifier: []signedhttp.Option{signedhttp.WithClock(e.clk.Now)}}).Handler())
	t.Cleanup(ts.Close)
	if status, code := webtest.Replay(t, nil, ts.URL, captured); status != http.StatusUnauthorized || code != signedhttp.CodeReplayedNonce {
		t.Fatalf("replay after the restart: HTTP %d %q, want 401 %q", status, code, signedhttp.CodeReplayedNonce)
	}
}
