package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"orderseal/assisted"
	"orderseal/order"
	"orderseal/suite"
	"orderseal/tstest/keys"
	"orderseal/tstest/webtest"
)

// FuzzOrderForm feeds the cardholder's client any order form, signed by the
// pinned merchant: nothing panics, a refusal is an error, and a form it
// accepts names the pinned merchant and re-encodes to the same form. Input: status byte picker and
// body (see webtest.SplitAnswer). Seeds: testdata/fuzz/FuzzOrderForm.
func FuzzOrderForm(f *testing.F) {
	form := OrderForm{Merchant: keys.Shop, Currency: "EUR", Carrier: "carrier:parcel.example", Issuers: []string{"issuer:bank.example"},
		Vault: "vault:v.example", MaxItems: 100, Catalog: []Product{{SKU: "BOOK-1984.pb", Name: "Nineteen Eighty-Four", UnitPrice: 1299}}}
	good, err := json.Marshal(form)
	if err != nil {
		f.Fatal(err)
	}
	webtest.WriteCorpus(f, "form", webtest.JoinAnswer(0, 200, good))
	webtest.WriteCorpus(f, "no-merchant", webtest.JoinAnswer(0, 200, []byte(`{"merchant":"","currency":"EUR","catalog":[],"carrier":"","issuers":null,"vault":"","max_items":0}`)))
	webtest.WriteCorpus(f, "unavailable", webtest.JoinAnswer(0, 503, []byte(`{"type":"https://orderseal.dev/problems/merchant-unavailable","title":"Merchant unavailable","status":503,"code":"merchant-unavailable"}`)))
	var status int
	var body []byte
	far := webtest.NewAnswerer(keys.Keys(f, keys.Shop))
	c, err := NewClient(keys.Keys(f, keys.Alice), "http://merchant.fuzz", keys.Shop, far.Client())
	if err != nil {
		f.Fatal(err)
	}
	exercise := func(t testing.TB, data []byte) error {
		t.Helper()
		var ok bool
		if _, status, body, ok = webtest.SplitAnswer(data, 1); !ok {
			return errors.New("short input")
		}
		far.Set(status, body)
		got, err := c.OrderForm(context.Background())
		webtest.CheckClientError(t, status, body, err)
		if err != nil {
			return err
		}
		if status != http.StatusOK || got.Merchant != keys.Shop || c.Merchant() != keys.Shop {
			t.Fatalf("HTTP %d form for %q accepted", status, got.Merchant)
		}
		webtest.RoundTrip(t, got, MaxFormSize)
		return nil
	}
	webtest.MustAccept(f, webtest.Corpus(f), func(data []byte) int { return webtest.StatusOf(exercise(f, data)) })
	f.Fuzz(func(t *testing.T, data []byte) { exercise(t, data) })
}

// FuzzClientAnswers feeds the cardholder's and the consultant's merchant
// client answers the merchant signed, with any status and body, for each
// signed call: nothing panics, a refusal is an error (the merchant's
// problem when it sent one), and what a call accepts re-encodes to the
// same value; a login's sealed identifier opens only if the merchant
// sealed it. Input: call byte, status byte, body (see webtest.SplitAnswer).
// Seeds: testdata/fuzz/FuzzClientAnswers.
func FuzzClientAnswers(f *testing.F) {
	merchant := keys.Party(f, keys.Shop)
	far := webtest.NewAnswerer(keys.Keys(f, keys.Shop))
	consultant := keys.Keys(f, keys.Carol)
	c, err := NewClient(consultant, "http://merchant.fuzz", keys.Shop, far.Client())
	if err != nil {
		f.Fatal(err)
	}
	b := webtest.Bundle(f, keys.Master(f), order.Parties{Merchant: keys.Shop, Issuer: "issuer:bank.example", Carrier: "carrier:parcel.example"})
	login, err := NewLogin(keys.Keys(f, keys.CallCenter), testDevice(f), keys.Shop, keys.Carol, "desk-7", time.Hour, loginNow)
	if err != nil {
		f.Fatal(err)
	}
	const (
		callSubmit = iota
		callStatus
		callLogin
		callLogout
		callSessionInfo
		callSubmitAssisted
		calls
	)
	session := Session{Session: tSession, Consultant: keys.Carol, Company: keys.CallCenter, Device: "desk-7",
		Created: "2026-01-15T12:00:00Z", Expires: "2026-01-15T20:00:00Z", State: SessionLive}
	secret := bytes.Repeat([]byte{7}, SecretSize)
	sealedID, err := assisted.SealSecret(suite.NewKeys(merchant, 4), session.Consultant, session.Session, session.Device, secret)
	if err != nil {
		f.Fatal(err)
	}
	withID := session
	withID.SealedID = &sealedID
	js := func(v any) []byte {
		out, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return out
	}
	for name, seed := range map[string][]byte{
		"accepted":  webtest.JoinAnswer(callSubmit, 202, js(Accepted{OrderID: b.OrderID, State: StateReceived})),
		"status":    webtest.JoinAnswer(callStatus, 200, js(Status{OrderID: "ord_x", State: StateShipped, Total: 100, Currency: "EUR", Tracking: "OS123456785DE", Timeline: []Event{{At: "2026-01-15T12:00:00Z", State: StateReceived}}})),
		"login":     webtest.JoinAnswer(callLogin, 201, js(withID)),
		"logout":    webtest.JoinAnswer(callLogout, 200, js(Session{Session: tSession, Consultant: keys.Carol, Company: keys.CallCenter, Device: "desk-7", State: SessionLoggedOut, Ended: "2026-01-15T13:00:00Z"})),
		"session":   webtest.JoinAnswer(callSessionInfo, 200, js(session)),
		"assisted":  webtest.JoinAnswer(callSubmitAssisted, 202, js(Accepted{OrderID: b.OrderID, State: StateReceived})),
		"refused":   webtest.JoinAnswer(callSubmitAssisted, 403, []byte(`{"type":"https://orderseal.dev/problems/proof-invalid","title":"Session proof invalid","status":403,"code":"proof-invalid"}`)),
		"duplicate": webtest.JoinAnswer(callStatus, 200, []byte(`{"order_id":"a","state":"shipped","state":"failed","total":1,"currency":"EUR","timeline":[]}`)),
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
		ctx := context.Background()
		var err error
		switch call {
		case callSubmit, callSubmitAssisted:
			var a *Accepted
			if call == callSubmit {
				a, err = c.Submit(ctx, b)
			} else {
				a, err = c.SubmitAssisted(ctx, b, tSession, "desk-7", Sealed{Nonce: "AAAA", CT: "AAAA"}, nil)
			}
			if err == nil {
				webtest.RoundTrip(t, a, 0)
			}
		case callStatus:
			var s *Status
			if s, err = c.Status(ctx, "ord_x"); err == nil {
				webtest.RoundTrip(t, s, 0)
			}
		case callLogin, callLogout, callSessionInfo:
			var s *Session
			switch call {
			case callLogin:
				s, err = c.Login(ctx, login)
			case callLogout:
				s, err = c.Logout(ctx, tSession)
			default:
				s, err = c.SessionInfo(ctx, tSession)
			}
			if err == nil {
				webtest.RoundTrip(t, s, 0)
				if s.SealedID != nil {
					// What the terminal does next: only the merchant's own sealing opens.
					if got, oerr := assisted.OpenSecret(consultant, keys.Shop, s.Session, s.Device, s.SealedID); oerr == nil && !bytes.Equal(got, secret) {
						t.Fatalf("a sealed identifier opened to %x", got)
					}
				}
			}
		}
		webtest.CheckClientError(t, status, body, err)
		return err
	}
	webtest.MustAccept(f, webtest.Corpus(f), func(data []byte) int { return webtest.StatusOf(exercise(f, data)) })
	f.Fuzz(func(t *testing.T, data []byte) { exercise(t, data) })
}
