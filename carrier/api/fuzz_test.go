package api

import (
	"context"
	"errors"
	"testing"

	"orderseal/order"
	"orderseal/tstest/keys"
	"orderseal/tstest/webtest"
)

// FuzzClientAnswers feeds the merchant's carrier client answers the
// carrier signed, with any status and body, for Book: nothing panics, a
// refusal is an error (the carrier's problem when it sent one), and a
// Shipment it accepts re-encodes to the same value. Input: call byte (one
// call), status byte, body (see webtest.SplitAnswer). Seeds:
// testdata/fuzz/FuzzClientAnswers.
func FuzzClientAnswers(f *testing.F) {
	far := webtest.NewAnswerer(keys.Keys(f, keys.Parcel))
	c, err := NewClient(keys.Keys(f, keys.Shop), "http://carrier.fuzz", keys.Parcel, far.Client())
	if err != nil {
		f.Fatal(err)
	}
	b := webtest.Bundle(f, keys.Master(f), order.Parties{Merchant: keys.Shop, Issuer: keys.Bank, Carrier: keys.Parcel})
	for name, seed := range map[string][]byte{
		"booked":        webtest.JoinAnswer(0, 200, []byte(`{"order_id":"ord_x","header_hash":"AAAA","tracking":"OS123456785DE","status":"booked","booked":"2026-01-15T12:00:00Z"}`)),
		"refused":       webtest.JoinAnswer(0, 422, []byte(`{"type":"https://orderseal.dev/problems/no-destination","title":"No destination","status":422,"code":"no-destination"}`)),
		"duplicate-key": webtest.JoinAnswer(0, 200, []byte(`{"order_id":"a","order_id":"b","header_hash":"","tracking":"","status":"","booked":""}`)),
	} {
		webtest.WriteCorpus(f, name, seed)
	}
	exercise := func(t testing.TB, data []byte) error {
		t.Helper()
		_, status, body, ok := webtest.SplitAnswer(data, 1)
		if !ok {
			return errors.New("short input")
		}
		far.Set(status, body)
		sh, err := c.Book(context.Background(), b, "inv_1")
		webtest.CheckClientError(t, status, body, err)
		if err == nil {
			webtest.RoundTrip(t, sh, 0)
		}
		return err
	}
	webtest.MustAccept(f, webtest.Corpus(f), func(data []byte) int { return webtest.StatusOf(exercise(f, data)) })
	f.Fuzz(func(t *testing.T, data []byte) { exercise(t, data) })
}
