package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/signedhttp/httpsig"
	issuerstore "orderseal/issuer/store"
	"orderseal/tstest/keys"

	"orderseal/order"
	"orderseal/suite"
)

// stored counts what each party has stored, so a refusal can be shown to
// have changed nothing. Every count is read through the party's store.
func (c *cluster) stored() map[string]int64 {
	c.t.Helper()
	ctx := context.Background()
	check := func(what string, err error) {
		c.t.Helper()
		if err != nil {
			c.t.Fatalf("%s: %v", what, err)
		}
	}
	m, i, ca, v := c.merchantStore(), c.issuerStore(), c.carrierStore(), c.vaultIndex()
	tally, err := m.Tally(ctx)
	check("merchant tally", err)
	jobs, err := m.Outbox().Count(ctx, "")
	check("merchant outbox", err)
	cards, err := i.Cards(ctx)
	check("issuer cards", err)
	var credit int64
	for _, card := range cards {
		credit += card.Available
	}
	auths, err := i.Authorizations(ctx, issuerstore.AuthFilter{})
	check("issuer auths", err)
	shipments, err := ca.List(ctx)
	check("carrier shipments", err)
	events := 0
	for _, sh := range shipments {
		evs, _, err := ca.Events(ctx, sh.Tracking)
		check("carrier events", err)
		events += len(evs)
	}
	grants, err := v.Grants(ctx)
	check("vault grants", err)
	entries := 0
	for _, err := range v.Tokens(ctx) {
		check("vault entries", err)
		entries++
	}
	return map[string]int64{
		"merchant orders":   int64(tally.Orders),
		"merchant timeline": int64(tally.Events),
		"merchant outbox":   int64(jobs.Pending + jobs.Done + jobs.Failed),
		"issuer cards":      int64(len(cards)),
		"issuer auths":      int64(len(auths)),
		"issuer credit":     credit,
		"carrier shipments": int64(len(shipments)),
		"carrier events":    int64(events),
		"vault grants":      int64(len(grants)),
		"vault entries":     int64(entries),
	}
}

// withField adds an unknown top-level member to a JSON object.
func withField(t *testing.T, raw []byte) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["surprise"] = json.RawMessage(`1`)
	out, _ := json.Marshal(m)
	return out
}

func (c *cluster) badInput(t *testing.T, token string) {
	ctx := context.Background()
	signer := func(id string, rogue bool) *httpsig.Client {
		k := keys.Party(t, id)
		if rogue {
			k = keys.Rogue(t).Party(t, id)
		}
		return httpsig.NewClient(suite.NewKeys(k, 8), &http.Client{Timeout: 30 * time.Second, Transport: recordingRT{id, c.wire}})
	}
	alice, shop, parcel := signer(cAlice, false), signer(cShop, false), signer(cParcel, false)

	fresh := c.sealFor(cAlice, cardCanary, token, 1)
	freshJSON, _ := fresh.MarshalJSON()
	relay := func(role order.Role) []byte {
		r, err := fresh.ForRole(role)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := r.MarshalJSON()
		return raw
	}
	expired, err := order.Seal(&order.Order{Buyer: order.Buyer{Name: "Alice Example", Phone: "+4915112345678", Email: "alice@example.org"},
		Card: order.Card{Number: cardCanary, Expiry: "2031-12"}, Items: []order.Item{{SKU: "BOOK-1984.pb", Name: "Nineteen Eighty-Four (paperback)", Qty: 1, UnitPrice: 1299}},
		Total: 1299, Currency: "EUR", Plan: order.Plan{Installments: 1}, ShipTo: order.ShipTo{Token: token},
		Recipient: order.Recipient{Name: "Bob Beispiel", Phone: "+4917698765432"}},
		suite.NewKeys(keys.Party(t, cAlice), 4), order.Parties{Merchant: cShop, Issuer: cBank, Carrier: cParcel, Vault: cVault},
		order.SealOptions{Now: time.Now().Add(-48 * time.Hour), Lifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	expiredJSON, _ := expired.MarshalJSON()
	unknownIssuer, err := order.Seal(&order.Order{Buyer: order.Buyer{Name: "Alice Example", Phone: "+4915112345678", Email: "alice@example.org"},
		Card: order.Card{Number: cardCanary, Expiry: "2031-12"}, Items: []order.Item{{SKU: "BOOK-1984.pb", Name: "Nineteen Eighty-Four (paperback)", Qty: 1, UnitPrice: 1299}},
		Total: 1299, Currency: "EUR", Plan: order.Plan{Installments: 1}, ShipTo: order.ShipTo{Token: token},
		Recipient: order.Recipient{Name: "Bob Beispiel", Phone: "+4917698765432"}},
		suite.NewKeys(keys.Party(t, cAlice), 4), order.Parties{Merchant: cShop, Issuer: "issuer:unknown.example", Carrier: cParcel, Vault: cVault}, order.SealOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unknownIssuerJSON, _ := unknownIssuer.MarshalJSON()
	expiredRelay := func(role order.Role) []byte {
		r, _ := expired.ForRole(role)
		raw, _ := r.MarshalJSON()
		return raw
	}
	authz := func(bundle []byte, amount string) []byte {
		return []byte(`{"bundle":` + string(bundle) + `,"amount":` + amount + `,"currency":"EUR"}`)
	}
	booking := func(bundle []byte, invoice string) []byte {
		return []byte(`{"bundle":` + string(bundle) + `,"invoice":"` + invoice + `"}`)
	}
	huge := []byte(`{"v":1,"pad":"` + strings.Repeat("A", order.MaxBundleSize+10) + `"}`)
	huger := []byte(`{"v":1,"pad":"` + strings.Repeat("A", 320<<10) + `"}`) // above the issuer's and carrier's request limit

	merchantURL, issuerURL, carrierURL, vaultURL := c.url("merchant"), c.url("issuer"), c.url("carrier"), c.url("vault")
	authPath := issuerURL + "/v1/authorizations/" + fresh.OrderID
	shipPath := carrierURL + "/v1/shipments/" + fresh.OrderID
	tests := []struct {
		name    string
		client  *httpsig.Client
		target  string
		method  string
		url     string
		body    []byte
		status  int
		code    string
		unsound bool // the refusal comes before the caller is known: the answer cannot be signed
	}{
		{"merchant: oversize bundle", alice, cShop, "POST", merchantURL + "/v1/orders", huge, 413, "body-too-large", false},
		{"merchant: malformed JSON", alice, cShop, "POST", merchantURL + "/v1/orders", []byte(`{"v":1,`), 400, "bundle-invalid", false},
		{"merchant: unknown field", alice, cShop, "POST", merchantURL + "/v1/orders", withField(t, freshJSON), 400, "bundle-invalid", false},
		{"merchant: expired bundle", alice, cShop, "POST", merchantURL + "/v1/orders", expiredJSON, 422, "bundle-expired", false},
		{"merchant: unknown issuer", alice, cShop, "POST", merchantURL + "/v1/orders", unknownIssuerJSON, 422, "issuer-not-accepted", false},
		{"merchant: another cardholder's bundle", signer(cBob, false), cShop, "POST", merchantURL + "/v1/orders", freshJSON, 403, "cardholder-mismatch", false},
		{"merchant: key from another center", signer(cAlice, true), cShop, "POST", merchantURL + "/v1/orders", freshJSON, 401, "wrong-key", true},
		{"merchant: issuer may not submit", signer(cBank, false), cShop, "POST", merchantURL + "/v1/orders", freshJSON, 403, "forbidden-role", false},
		{"merchant: unknown order status", alice, cShop, "GET", merchantURL + "/v1/orders/ord_nosuchorder", nil, 404, "unknown-order", false},
		{"merchant: malformed tracking event", parcel, cShop, "POST", merchantURL + "/v1/orders/" + fresh.OrderID + "/events", []byte(`{"seq":`), 400, "malformed-json", false},
		{"merchant: event with unknown field", parcel, cShop, "POST", merchantURL + "/v1/orders/" + fresh.OrderID + "/events",
			[]byte(`{"order_id":"` + fresh.OrderID + `","tracking":"OS123456785DE","seq":1,"status":"delivered","at":"2026-01-01T00:00:00Z","x":1}`), 400, "malformed-json", false},
		{"merchant: event for an order never placed", parcel, cShop, "POST", merchantURL + "/v1/orders/" + fresh.OrderID + "/events",
			[]byte(`{"order_id":"` + fresh.OrderID + `","tracking":"OS123456785DE","seq":1,"status":"delivered","at":"2026-01-01T00:00:00Z"}`), 404, "unknown-order", false},

		{"issuer: oversize request", shop, cBank, "PUT", authPath, authz(huger, "1299"), 413, "body-too-large", false},
		{"issuer: oversize bundle", shop, cBank, "PUT", authPath, authz(huge, "1299"), 400, "bundle-invalid", false},
		{"issuer: malformed JSON", shop, cBank, "PUT", authPath, []byte(`{"bundle":`), 400, "malformed-json", false},
		{"issuer: unknown field", shop, cBank, "PUT", authPath, withField(t, authz(relay(order.RoleIssuer), "1299")), 400, "malformed-json", false},
		{"issuer: zero amount", shop, cBank, "PUT", authPath, authz(relay(order.RoleIssuer), "0"), 422, "invalid-request", false},
		{"issuer: bundle not a bundle", shop, cBank, "PUT", authPath, authz([]byte(`{"v":1}`), "1299"), 400, "bundle-invalid", false},
		{"issuer: expired bundle", shop, cBank, "PUT", issuerURL + "/v1/authorizations/" + expired.OrderID, authz(expiredRelay(order.RoleIssuer), "1299"), 422, "bundle-expired", false},
		{"issuer: path names another order", shop, cBank, "PUT", issuerURL + "/v1/authorizations/ord_other", authz(relay(order.RoleIssuer), "1299"), 400, "order-id-mismatch", false},
		{"issuer: cardholder may not authorize", alice, cBank, "PUT", authPath, authz(relay(order.RoleIssuer), "1299"), 403, "forbidden-role", false},

		{"carrier: oversize request", shop, cParcel, "PUT", shipPath, booking(huger, "inv_1"), 413, "body-too-large", false},
		{"carrier: oversize bundle", shop, cParcel, "PUT", shipPath, booking(huge, "inv_1"), 400, "bundle-invalid", false},
		{"carrier: malformed JSON", shop, cParcel, "PUT", shipPath, []byte(`[`), 400, "malformed-json", false},
		{"carrier: unknown field", shop, cParcel, "PUT", shipPath, withField(t, booking(relay(order.RoleCarrier), "inv_1")), 400, "malformed-json", false},
		{"carrier: invalid invoice", shop, cParcel, "PUT", shipPath, booking(relay(order.RoleCarrier), ""), 422, "invalid-request", false},
		{"carrier: expired bundle", shop, cParcel, "PUT", carrierURL + "/v1/shipments/" + expired.OrderID, booking(expiredRelay(order.RoleCarrier), "inv_1"), 422, "bundle-expired", false},
		{"carrier: issuer section offered", shop, cParcel, "PUT", shipPath, booking(relay(order.RoleIssuer), "inv_1"), 0, "", false},
		{"carrier: cardholder may not book", alice, cParcel, "PUT", shipPath, booking(relay(order.RoleCarrier), "inv_1"), 403, "forbidden-role", false},

		{"vault: malformed grant", shop, cVault, "POST", vaultURL + "/v1/grants", []byte(`{"bundle":`), 400, "malformed-json", false},
		{"vault: grant with unknown field", shop, cVault, "POST", vaultURL + "/v1/grants", []byte(`{"bundle":{},"invoice":"inv_1","max_uses":1,"x":1}`), 400, "malformed-json", false},
	}
	before := c.stored()
	for _, tt := range tests {
		resp, err := tt.client.Do(ctx, tt.target, tt.method, tt.url, tt.body)
		if err != nil {
			if tt.unsound && errors.Is(err, httpsig.ErrForgedResponse) {
				continue // refused by a merchant whose answer an impostor cannot verify; nothing may be stored
			}
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, rfc9457.ContentType) {
			t.Errorf("%s: HTTP %d %s: %s", tt.name, resp.Status, ct, resp.Body)
			continue
		}
		p, err := rfc9457.Decode(resp.Body)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if tt.code == "" {
			if resp.Status < 400 || resp.Status >= 500 {
				t.Errorf("%s: HTTP %d %s", tt.name, resp.Status, p.Code)
			}
			continue
		}
		if resp.Status != tt.status || p.Code != tt.code {
			t.Errorf("%s: HTTP %d %s (%s), want %d %s", tt.name, resp.Status, p.Code, p.Detail, tt.status, tt.code)
		}
	}
	if after := c.stored(); !equalCounts(before, after) {
		t.Errorf("refused requests changed the stores:\nbefore %v\nafter  %v", before, after)
	}

	// Invalid card data at the CLIs: refused in one line, nothing stored or sent.
	_, errs, code := c.run("4111111111111112\n", "issuer", "card", "add", "-db", c.path("issuer", "issuer.db"), "-card-key", c.path("issuer", "card.key"),
		"-cardholder", cAlice, "-expiry", "2031-12", "-limit", "100", "-currency", "EUR", "-number-file", "-")
	if code == 0 || strings.Count(strings.TrimSpace(errs), "\n") > 1 || strings.Contains(errs, "4111111111111112") {
		t.Errorf("issuer card add with a bad Luhn digit: exit %d: %s", code, errs)
	}
	bad := c.wallet("mallory", cMallory, "4111111111111112")
	_, errs, code = c.run("", "cardholder", append(append([]string{"order"}, bad...), "-item", "BOOK-1984.pb=1", "-ship-to", token)...)
	if code == 0 || strings.Contains(errs, "4111111111111112") || !strings.Contains(errs, "card") {
		t.Errorf("cardholder order with a bad card number: exit %d: %s", code, errs)
	}
	if after := c.stored(); !equalCounts(before, after) {
		t.Errorf("invalid card data changed the stores:\nbefore %v\nafter  %v", before, after)
	}
}

func equalCounts(a, b map[string]int64) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}
