package issuer_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"orderseal/internal/signedhttp"
	"orderseal/issuer"
	"orderseal/issuer/api"
	"orderseal/issuer/store"
	"orderseal/tstest/keys"
	"orderseal/tstest/webtest"

	"orderseal/order"
)

// fuzzT0 is when the genuine fuzz seeds were sealed and are signed; the
// issuer's clock stands a minute later.
var fuzzT0 = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)

func fuzzNow() time.Time { return fuzzT0.Add(time.Minute) }

const fuzzOrderID = "ord_fuzzfuzzfuzzfuzzfuzzfuzzaa"

// FuzzAuthorize drives PUT /v1/authorizations/:id — the AuthorizeRequest
// body — through the issuer's handler behind web.Limit and the verifier,
// signed by the merchant: no body makes it panic or answer anything but a
// signed 2xx or problem below 500, and what it accepts re-encodes to the
// same request and bundle. Seeds: testdata/fuzz/FuzzAuthorize (rewrite with
// -webtest.write-corpus).
func FuzzAuthorize(f *testing.F) {
	ctx := context.Background()
	dir := f.TempDir()
	// A fixed card key, so the codes it derives are the same in every run.
	keyPath := filepath.Join(dir, "card.key")
	if err := os.WriteFile(keyPath, []byte("ZnV6ei1jYXJkLWtleS1maXhlZC1mb3ItZnV6emluZyE\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	ck, err := store.LoadCardKey(keyPath)
	if err != nil {
		f.Fatal(err)
	}
	st, err := issuer.OpenStore(ctx, filepath.Join(dir, "issuer.db"), store.Options{CardKey: ck, Now: fuzzNow})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	if _, err := st.AddCard(ctx, store.NewCard{Number: visa, Cardholder: keys.Alice, Expiry: "2031-12", Currency: "EUR", Limit: 1_000_000_000_000}); err != nil {
		f.Fatal(err)
	}
	srv := issuer.NewServer(keys.Keys(f, keys.Bank), st, issuer.Options{Now: fuzzNow,
		Verifier: []signedhttp.Option{signedhttp.WithClock(fuzzNow), signedhttp.WithNonceStore(webtest.NeverSeen{})}})
	c := signedhttp.NewClient(keys.Keys(f, keys.Shop), webtest.Client(srv.Handler()), signedhttp.WithClientClock(fuzzNow))
	url := "http://issuer.fuzz" + api.PathAuthorizations + fuzzOrderID
	put := func(t testing.TB, body []byte) *signedhttp.Response {
		t.Helper()
		resp, err := c.Do(context.Background(), keys.Bank, http.MethodPut, url, body)
		if err != nil {
			t.Fatalf("an answer to a signed request does not verify: %v", err)
		}
		webtest.CheckAnswer(t, resp)
		return resp
	}

	at := order.SealOptions{Now: fuzzT0, OrderID: fuzzOrderID}
	b := seal(f, orderOpts{seal: at})
	webtest.WriteCorpus(f, "approve", requestBody(f, b, orderTotal, "EUR"))
	webtest.WriteCorpus(f, "wrong-amount", requestBody(f, b, orderTotal+1, "EUR"))
	webtest.WriteCorpus(f, "session-on-online-order", requestBodySession(f, b, orderTotal, "EUR", testSession))
	webtest.WriteCorpus(f, "other-issuer", requestBody(f, seal(f, orderOpts{seal: at, issuer: otherBankID}), orderTotal, "EUR"))
	webtest.WriteCorpus(f, "other-merchant", requestBody(f, seal(f, orderOpts{seal: at, merchant: keys.OtherShop}), orderTotal, "EUR"))
	webtest.MustAccept(f, webtest.Corpus(f), func(body []byte) int { return put(f, body).Status })

	f.Fuzz(func(t *testing.T, body []byte) {
		resp := put(t, body)
		if resp.Status >= 300 {
			return
		}
		var req api.AuthorizeRequest
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("accepted a request that does not decode: %v", err)
		}
		again := webtest.RoundTrip(t, &req, api.MaxBody)
		b := webtest.BundleRoundTrip(t, again.Bundle)
		var a api.Authorization
		if err := json.Unmarshal(resp.Body, &a); err != nil || a.OrderID != b.OrderID || b.OrderID != fuzzOrderID {
			t.Fatalf("answered %s (%v) for bundle %s", resp.Body, err, b.OrderID)
		}
	})
}
