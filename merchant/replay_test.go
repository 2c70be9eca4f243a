package merchant_test

import (
	"context"
	"net/http"
	"testing"

	"orderseal/internal/signedhttp"
	"orderseal/merchant/api"
	"orderseal/tstest/keys"
	"orderseal/tstest/webtest"
)

// TestReplayAfterRestart is issue 16 item 3 for the merchant: a signed
// request captured on the wire and replayed after the merchant restarts
// on the same database is refused as a replay (the nonce is in the
// database, not in the process). The request's body is refused by the
// handler; its nonce was recorded all the same, once the role was admitted.
func TestReplayAfterRestart(t *testing.T) {
	e := newEnv(t)
	tap := &webtest.Tap{}
	c := signedhttp.NewClient(keys.Keys(t, keys.Alice), &http.Client{Transport: tap})
	resp, err := c.Do(context.Background(), keys.Shop, http.MethodPost, e.ts.URL+api.PathOrders, []byte(`{}`))
	if err != nil || resp.Status != http.StatusBadRequest {
		t.Fatalf("genuine request: %v %v, want a signed 400", resp, err)
	}
	captured := tap.Last(t)
	e.restart()
	if status, code := webtest.Replay(t, nil, e.ts.URL, captured); status != http.StatusUnauthorized || code != signedhttp.CodeReplayedNonce {
		t.Fatalf("replay after the restart: HTTP %d %q, want 401 %q", status, code, signedhttp.CodeReplayedNonce)
	}
}
