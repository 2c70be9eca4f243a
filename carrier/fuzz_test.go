package carrier_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"orderseal/carrier"
	"orderseal/carrier/api"
	"orderseal/carrier/store"
	"orderseal/internal/signedhttp"
	"orderseal/order"
	"orderseal/tstest/keys"
	"orderseal/tstest/webtest"
	vaultapi "orderseal/vault/api"
)

// fuzzT0 is when the genuine fuzz seeds were sealed and are signed; the
// carrier's clock stands a minute later.
var fuzzT0 = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)

func fuzzNow() time.Time { return fuzzT0.Add(time.Minute) }

const (
	fuzzOrderID = "ord_fuzzfuzzfuzzfuzzfuzzfuzzaa"
	fuzzToken   = "tok_fuzzfuzzfuzzfuzzfuzzfuzzaa_adr"
)

// depositor stands in for the vault: every inline address gets one token.
type depositor struct{}

func (depositor) Deposit(context.Context, string, string, string, []byte) (*vaultapi.RegisterResponse, error) {
	return &vaultapi.RegisterResponse{Token: fuzzToken, Created: true}, nil
}

// FuzzBook drives PUT /v1/shipments/:id — the BookingRequest body —
// through the carrier's handler behind web.Limit and the verifier, signed
// by the merchant: no body makes it panic or answer anything but a signed
// 2xx or problem below 500, and what it books re-encodes to the same
// request and bundle. Seeds: testdata/fuzz/FuzzBook (rewrite with
// -webtest.write-corpus).
func FuzzBook(f *testing.F) {
	st, err := carrier.OpenStore(context.Background(), filepath.Join(f.TempDir(), "carrier.db"), store.Options{Country: "DE"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	srv := carrier.NewServer(keys.Keys(f, keys.Parcel), st, depositor{}, carrier.Options{Now: fuzzNow, Merchants: carrier.Merchants{keys.Shop: "http://127.0.0.1:8080"},
		Verifier: []signedhttp.Option{signedhttp.WithClock(fuzzNow), signedhttp.WithNonceStore(webtest.NeverSeen{})}})
	c := signedhttp.NewClient(keys.Keys(f, keys.Shop), webtest.Client(srv.Handler()), signedhttp.WithClientClock(fuzzNow))
	url := "http://carrier.fuzz" + api.PathShipments + fuzzOrderID
	put := func(t testing.TB, body []byte) *signedhttp.Response {
		t.Helper()
		resp, err := c.Do(context.Background(), keys.Parcel, http.MethodPut, url, body)
		if err != nil {
			t.Fatalf("an answer to a signed request does not verify: %v", err)
		}
		webtest.CheckAnswer(t, resp)
		return resp
	}
	body := func(b *order.Bundle, invoice, events string) []byte {
		out, err := json.Marshal(relay(f, b, invoice, events))
		if err != nil {
			f.Fatal(err)
		}
		return out
	}

	const events = "http://127.0.0.1:8080/v1/orders/" + fuzzOrderID + "/events"
	at := order.SealOptions{Now: fuzzT0, OrderID: fuzzOrderID}
	token := sealOrder(f, keys.Shop, keys.Parcel, fuzzToken, nil, at)
	inline := sealOrder(f, keys.Shop, keys.Parcel, "", &inlineAddress, at)
	webtest.WriteCorpus(f, "token", body(token, "inv_fuzz0001", events))
	webtest.WriteCorpus(f, "inline-address", body(inline, "inv_fuzz0002", events))
	webtest.WriteCorpus(f, "events-url-ftp", body(token, "inv_fuzz0001", "ftp://example.org/x"))
	webtest.WriteCorpus(f, "other-carrier", body(sealOrder(f, keys.Shop, keys.OtherCarrier, fuzzToken, nil, at), "inv_fuzz0003", events))
	webtest.MustAccept(f, webtest.Corpus(f), func(b []byte) int { return put(f, b).Status })

	f.Fuzz(func(t *testing.T, body []byte) {
		resp := put(t, body)
		if resp.Status >= 300 {
			return
		}
		var req api.BookingRequest
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("booked a request that does not decode: %v", err)
		}
		again := webtest.RoundTrip(t, &req, api.MaxBody)
		b := webtest.BundleRoundTrip(t, again.Bundle)
		var sh api.Shipment
		if err := json.Unmarshal(resp.Body, &sh); err != nil || sh.OrderID != b.OrderID || api.ValidateTracking(sh.Tracking) != nil {
			t.Fatalf("answered %s (%v) for bundle %s", resp.Body, err, b.OrderID)
		}
	})
}
