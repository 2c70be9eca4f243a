package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"orderseal/keygen"
	"orderseal/order"
	"orderseal/tstest/keys"
	"orderseal/tstest/webtest"
)

// FuzzClientAnswers feeds the vault client answers the vault signed, with
// any status and body, for each of its calls: nothing panics, a refusal is
// an error (the vault's problem when it sent one), and what a call accepts
// re-encodes to the same value; a revealed value opens only if the vault
// sealed it for this reader. Input: call byte, status byte, body (see
// webtest.SplitAnswer). Seeds: testdata/fuzz/FuzzClientAnswers.
func FuzzClientAnswers(f *testing.F) {
	const (
		token   = "tok_fuzzfuzzfuzzfuzzfuzzfuzzaa_adr"
		orderID = "ord_fuzzfuzzfuzzfuzzfuzzfuzzaa"
	)
	vault := keys.Keys(f, keys.Vault)
	far := webtest.NewAnswerer(vault)
	// Alice's calls and a merchant's and a carrier's, each against far.
	clientOf := func(id string) *Client {
		c, err := NewClient(keys.Keys(f, id), "http://vault.fuzz", keys.Vault, far.Client())
		if err != nil {
			f.Fatal(err)
		}
		return c
	}
	alice, shop, parcel := clientOf(keys.Alice), clientOf(keys.Shop), clientOf(keys.Parcel)
	b := webtest.Bundle(f, keys.Master(f), order.Parties{Merchant: keys.Shop, Issuer: keys.Bank,
		Carrier: keys.Parcel, Vault: keys.Vault})
	const (
		callRegister = iota
		callList
		callRevealOwn
		callGrant
		callRevealGranted
		calls
	)
	value := []byte(`{"name":"B","line1":"L 1","city":"C","country":"DE"}`)
	sealedFor := func(reader *keygen.Cache, orderID string) Sealed {
		s, err := SealReveal(vault, reader.Identity(), token, orderID, value)
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	aliceKeys := keys.Keys(f, keys.Alice)
	parcelKeys := keys.Keys(f, keys.Parcel)
	js := func(v any) []byte {
		out, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return out
	}
	problem := []byte(`{"type":"https://orderseal.dev/problems/unknown-token","title":"Unknown token","status":404,"code":"unknown-token"}`)
	for name, seed := range map[string][]byte{
		"register":       webtest.JoinAnswer(callRegister, 201, js(RegisterResponse{Token: token, Created: true})),
		"list":           webtest.JoinAnswer(callList, 200, js(ListResponse{Tokens: []Entry{{Token: token, Type: TypeAddress, Label: "home", Epoch: 1, Created: "2026-01-15T12:00:00Z"}}})),
		"reveal-own":     webtest.JoinAnswer(callRevealOwn, 200, js(RevealResponse{Token: token, Type: TypeAddress, Value: sealedFor(aliceKeys, "")})),
		"reveal-granted": webtest.JoinAnswer(callRevealGranted, 200, js(RevealResponse{Token: token, Type: TypeAddress, DisplayOnly: true, Value: sealedFor(parcelKeys, orderID)})),
		"grant":          webtest.JoinAnswer(callGrant, 200, js(GrantResponse{Token: token, Carrier: keys.Parcel, OrderID: orderID, Expires: "2026-02-14T12:00:00Z", MaxUses: 3})),
		"unknown-token":  webtest.JoinAnswer(callRevealOwn, 404, problem),
		"unknown-field":  webtest.JoinAnswer(callRegister, 201, []byte(`{"token":"x","created":true,"extra":1}`)),
	} {
		webtest.WriteCorpus(f, name, seed)
	}
	// exercise makes call answered with status and body, and checks the outcome.
	exercise := func(t testing.TB, data []byte) error {
		t.Helper()
		call, status, body, ok := webtest.SplitAnswer(data, calls)
		if !ok {
			return errors.New("short input")
		}
		far.Set(status, body)
		ctx := context.Background()
		var err error
		switch call {
		case callRegister:
			var r *RegisterResponse
			if r, err = alice.Register(ctx, TypeAddress, "home", false, value); err == nil {
				webtest.RoundTrip(t, r, 0)
			}
		case callList:
			var l []Entry
			if l, err = alice.List(ctx); err == nil {
				webtest.RoundTrip(t, &ListResponse{Tokens: l}, 0)
			}
		case callRevealOwn:
			var v []byte
			if v, err = alice.RevealOwn(ctx, token); err == nil && !bytes.Equal(v, value) {
				t.Fatalf("revealed %q: only what the vault sealed opens", v)
			}
		case callGrant:
			var g *GrantResponse
			if g, err = shop.Grant(ctx, b, "inv_1", ""); err == nil {
				webtest.RoundTrip(t, g, 0)
			}
		case callRevealGranted:
			var v []byte
			if v, err = parcel.RevealGranted(ctx, token, orderID, "inv_1"); err == nil && !bytes.Equal(v, value) {
				t.Fatalf("revealed %q: only what the vault sealed opens", v)
			}
		}
		webtest.CheckClientError(t, status, body, err)
		return err
	}
	webtest.MustAccept(f, webtest.Corpus(f), func(data []byte) int { return webtest.StatusOf(exercise(f, data)) })
	f.Fuzz(func(t *testing.T, data []byte) { exercise(t, data) })
}
