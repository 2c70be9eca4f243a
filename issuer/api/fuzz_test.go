package api

import (
	"context"
	"errors"
	"testing"

	"orderseal/order"
	"orderseal/tstest/keys"
	"orderseal/tstest/webtest"
)

// FuzzClientAnswers feeds the merchant's issuer client answers the issuer
// signed, with any status and body, for Authorize and Void: nothing panics,
// a refusal is an error (the issuer's problem when it sent one), and an
// Authorization it accepts re-encodes to the same value. Input: call byte,
// status byte, body (see webtest.SplitAnswer). Seeds:
// testdata/fuzz/FuzzClientAnswers.
func FuzzClientAnswers(f *testing.F) {
	far := webtest.NewAnswerer(keys.Keys(f, keys.Bank))
	c, err := NewClient(keys.Keys(f, keys.Shop), "http://issuer.fuzz", keys.Bank, far.Client())
	if err != nil {
		f.Fatal(err)
	}
	b := webtest.Bundle(f, keys.Master(f), order.Parties{Merchant: keys.Shop, Issuer: keys.Bank, Carrier: keys.Parcel})
	const (
		callAuthorize = iota
		callVoid
		calls
	)
	for name, seed := range map[string][]byte{
		"approved": webtest.JoinAnswer(callAuthorize, 201, []byte(`{"order_id":"ord_x","header_hash":"AAAA","decision":"approved","auth_code":"A1B2C3",`+
			`"amount":100,"currency":"EUR","decided":"2026-01-15T12:00:00Z","channel":"online"}`)),
		"declined": webtest.JoinAnswer(callAuthorize, 200, []byte(`{"order_id":"ord_x","header_hash":"AAAA","decision":"declined","reason":"insufficient-credit",`+
			`"amount":100,"currency":"EUR","decided":"2026-01-15T12:00:00Z"}`)),
		"voided":       webtest.JoinAnswer(callVoid, 200, []byte(`{"order_id":"ord_x","header_hash":"","decision":"approved","amount":100,"currency":"EUR","decided":"","voided":true}`)),
		"unknown-auth": webtest.JoinAnswer(callVoid, 404, []byte(`{"type":"https://orderseal.dev/problems/unknown-authorization","title":"Unknown authorization","status":404,"code":"unknown-authorization"}`)),
		"not-problem":  webtest.JoinAnswer(callAuthorize, 503, []byte(`<html>busy</html>`)),
	} {
		webtest.WriteCorpus(f, name, seed)
	}
	exercise := func(t testing.TB, data []byte) error {
		t.Helper()
		call, status, body, ok := webtest.SplitAnswer(data, calls)
		if !ok {
			return errors.New("short input")
		}
		far.Set(status, body)
		var a *Authorization
		var err error
		if call == callAuthorize {
			a, err = c.Authorize(context.Background(), b, 100, "EUR", "")
		} else {
			a, err = c.Void(context.Background(), b.OrderID)
		}
		webtest.CheckClientError(t, status, body, err)
		if err == nil {
			webtest.RoundTrip(t, a, 0)
		}
		return err
	}
	webtest.MustAccept(f, webtest.Corpus(f), func(data []byte) int { return webtest.StatusOf(exercise(f, data)) })
	f.Fuzz(func(t *testing.T, data []byte) { exercise(t, data) })
}
