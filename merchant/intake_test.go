package merchant_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"orderseal/internal/signedhttp"
	"orderseal/internal/signedhttp/httpsig"
	"orderseal/merchant/api"
	"orderseal/order"
	"orderseal/tstest/keys"
)

// testToken is a well-formed ship-to token; intake never asks the vault.
const testToken = "tok_7Hq2mXc9LpR4vNw8_adr"

// TestIntakeRefusals: every refused bundle gets a problem+json with a stable
// code and leaves nothing behind: no order, no timeline, no relay job.
func TestIntakeRefusals(t *testing.T) {
	e := newEnv(t)
	ok := func(t *testing.T) *order.Bundle {
		return seal(t, keys.Alice, testOrder(t, testToken), stdParties, order.SealOptions{})
	}
	withParties := func(p order.Parties) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			return marshal(t, seal(t, keys.Alice, testOrder(t, testToken), p, order.SealOptions{}))
		}
	}
	// resealed builds a bundle whose merchant section says what edit makes it say.
	resealed := func(edit func(*order.Section)) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			b := ok(t)
			sec := merchantSection(t, b)
			edit(sec)
			reseal(t, b, order.RoleMerchant, sec)
			return marshal(t, b)
		}
	}
	withItems := func(edit func(o *order.Order)) func(t *testing.T) []byte {
		return func(t *testing.T) []byte {
			o := testOrder(t, testToken)
			edit(o)
			return marshal(t, seal(t, keys.Alice, o, stdParties, order.SealOptions{}))
		}
	}
	jsonEdit := func(edit func(m map[string]any)) func(t *testing.T) []byte {
		return func(t *testing.T) []byte { return editJSON(t, marshal(t, ok(t)), edit) }
	}

	tests := []struct {
		name   string
		caller string // "" : unsigned
		body   func(t *testing.T) []byte
		status int
		code   string
	}{
		{"oversize body", keys.Alice, func(t *testing.T) []byte {
			return append([]byte(`{"v":1,"pad":"`), bytes.Repeat([]byte("a"), api.MaxBody)...)
		}, http.StatusRequestEntityTooLarge, "body-too-large"},
		{"malformed JSON", keys.Alice, func(t *testing.T) []byte { return []byte(`{"v":1,"suite":`) }, http.StatusBadRequest, api.CodeBundleInvalid},
		{"empty body", keys.Alice, func(t *testing.T) []byte { return nil }, http.StatusBadRequest, api.CodeBundleInvalid},
		{"unknown field", keys.Alice, jsonEdit(func(m map[string]any) { m["discount"] = 100 }), http.StatusBadRequest, api.CodeBundleInvalid},
		{"duplicate key", keys.Alice, func(t *testing.T) []byte {
			raw := marshal(t, ok(t))
			return append([]byte(`{"v":1,`), raw[1:]...)
		}, http.StatusBadRequest, api.CodeBundleInvalid},
		{"wrong version", keys.Alice, jsonEdit(func(m map[string]any) { m["v"] = 2 }), http.StatusBadRequest, api.CodeUnsupportedVersion},
		{"wrong suite", keys.Alice, jsonEdit(func(m map[string]any) { m["suite"] = "OS2-SOMETHING-ELSE" }), http.StatusBadRequest, api.CodeUnsupportedVersion},
		{"another key system", keys.Alice, jsonEdit(func(m map[string]any) { m["system"] = strings.Repeat("ab", 16) }), http.StatusBadRequest, api.CodeUnsupportedVersion},
		{"for another merchant", keys.Alice, withParties(order.Parties{Merchant: keys.OtherShop, Issuer: keys.Bank, Carrier: keys.Parcel, Vault: keys.Vault}),
			http.StatusUnprocessableEntity, api.CodeWrongMerchant},
		{"signed by another cardholder", keys.Bob, func(t *testing.T) []byte { return marshal(t, ok(t)) }, http.StatusForbidden, api.CodeCardholderMismatch},
		{"carrier not ours", keys.Alice, withParties(order.Parties{Merchant: keys.Shop, Issuer: keys.Bank, Carrier: keys.OtherCarrier, Vault: keys.Vault}),
			http.StatusUnprocessableEntity, api.CodeCarrierNotAccepted},
		{"issuer not accepted", keys.Alice, withParties(order.Parties{Merchant: keys.Shop, Issuer: otherBankID, Carrier: keys.Parcel, Vault: keys.Vault}),
			http.StatusUnprocessableEntity, api.CodeIssuerNotAccepted},
		{"vault not ours", keys.Alice, withParties(order.Parties{Merchant: keys.Shop, Issuer: keys.Bank, Carrier: keys.Parcel, Vault: otherVaultID}),
			http.StatusUnprocessableEntity, api.CodeVaultNotAccepted},
		{"expired", keys.Alice, func(t *testing.T) []byte {
			return marshal(t, seal(t, keys.Alice, testOrder(t, testToken), stdParties,
				order.SealOptions{Now: time.Now().Add(-2 * time.Hour), Lifetime: time.Hour}))
		}, http.StatusUnprocessableEntity, api.CodeBundleExpired},
		{"created in the future", keys.Alice, func(t *testing.T) []byte {
			return marshal(t, seal(t, keys.Alice, testOrder(t, testToken), stdParties, order.SealOptions{Now: time.Now().Add(time.Hour)}))
		}, http.StatusUnprocessableEntity, api.CodeBundleExpired},
		{"merchant section tampered", keys.Alice, func(t *testing.T) []byte {
			b := ok(t)
			s := b.Sections[order.RoleMerchant]
			s.CT[len(s.CT)/2] ^= 1
			return marshal(t, b)
		}, http.StatusUnprocessableEntity, api.CodeSectionRefused},
		{"merchant nonce tampered", keys.Alice, func(t *testing.T) []byte {
			b := ok(t)
			s := b.Sections[order.RoleMerchant]
			s.Nonce[0] ^= 1
			b.Sections[order.RoleMerchant] = s
			return marshal(t, b)
		}, http.StatusUnprocessableEntity, api.CodeSectionRefused},
		{"issuer commitment tampered", keys.Alice, func(t *testing.T) []byte {
			b := ok(t)
			c := b.Commitments[order.RoleIssuer]
			c[0] ^= 1
			b.Commitments[order.RoleIssuer] = c
			return marshal(t, b)
		}, http.StatusUnprocessableEntity, api.CodeSectionRefused},
		{"merchant section swapped from another order", keys.Alice, func(t *testing.T) []byte {
			b, other := ok(t), ok(t)
			b.Sections[order.RoleMerchant] = other.Sections[order.RoleMerchant]
			return marshal(t, b)
		}, http.StatusUnprocessableEntity, api.CodeSectionRefused},
		{"unknown SKU", keys.Alice, withItems(func(o *order.Order) { o.Items[1].SKU = "teapot-1" }), http.StatusUnprocessableEntity, api.CodeCatalogMismatch},
		{"wrong price", keys.Alice, withItems(func(o *order.Order) {
			o.Items[1].UnitPrice = 1
			o.Total = 2*1299 + 1
		}), http.StatusUnprocessableEntity, api.CodeCatalogMismatch},
		{"wrong name", keys.Alice, withItems(func(o *order.Order) { o.Items[0].Name = "Animal Farm" }), http.StatusUnprocessableEntity, api.CodeCatalogMismatch},
		{"other currency", keys.Alice, withItems(func(o *order.Order) { o.Currency = "USD" }), http.StatusUnprocessableEntity, api.CodeCurrencyMismatch},
		// order.Seal refuses a total that is not the sum, so a hostile
		// cardholder's software reseals the merchant section itself.
		{"total not the sum", keys.Alice, resealed(func(s *order.Section) { s.Total.Amount-- }), http.StatusUnprocessableEntity, api.CodeTotalMismatch},
		{"no items", keys.Alice, resealed(func(s *order.Section) { s.Items = nil }), http.StatusUnprocessableEntity, api.CodeCatalogMismatch},
		{"no total", keys.Alice, resealed(func(s *order.Section) { s.Total = nil }), http.StatusUnprocessableEntity, api.CodeCatalogMismatch},
		{"zero quantity", keys.Alice, resealed(func(s *order.Section) {
			s.Items[1].Qty = 0
			s.Total.Amount = 2 * 1299
		}), http.StatusUnprocessableEntity, api.CodeTotalMismatch},
		{"negative quantity", keys.Alice, resealed(func(s *order.Section) {
			s.Items[1].Qty = -1
			s.Total.Amount = 2*1299 - 850
		}), http.StatusUnprocessableEntity, api.CodeTotalMismatch},
		{"overflowing lines", keys.Alice, resealed(func(s *order.Section) {
			s.Items[0].Qty = 1 << 62
			s.Total.Amount = 1
		}), http.StatusUnprocessableEntity, api.CodeTotalMismatch},
		{"vault party but no ship token", keys.Alice, resealed(func(s *order.Section) { s.ShipToken = "" }), http.StatusUnprocessableEntity, api.CodeDestinationMissing},
		{"unsigned", "", func(t *testing.T) []byte { return marshal(t, ok(t)) }, http.StatusUnauthorized, signedhttp.CodeAuthMissing},
		{"issuer calling", keys.Bank, func(t *testing.T) []byte { return marshal(t, ok(t)) }, http.StatusForbidden, signedhttp.CodeForbiddenRole},
		{"another merchant calling", keys.OtherShop, func(t *testing.T) []byte { return marshal(t, ok(t)) }, http.StatusForbidden, signedhttp.CodeForbiddenRole},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, header, body := e.post(t, tc.caller, tc.body(t))
			problemOf(t, status, header, body, tc.status, tc.code)
			for _, table := range []string{"orders", "timeline", "outbox"} {
				if n := e.count(t, table); n != 0 {
					t.Fatalf("a refused bundle left %d rows in %s", n, table)
				}
			}
		})
	}
}

// TestIntakeIdempotent: the same bundle submitted again (even at once, from
// several connections) is one order; another bundle under a used order id is
// refused, whoever sends it.
func TestIntakeIdempotent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alice := e.client(t, keys.Alice)
	b := seal(t, keys.Alice, testOrder(t, testToken), stdParties, order.SealOptions{})

	var wg sync.WaitGroup
	got := make([]*api.Accepted, 8)
	errs := make([]error, len(got))
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = alice.Submit(ctx, b)
		}()
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatalf("submission %d: %v", i, errs[i])
		}
		if got[i].OrderID != b.OrderID || got[i].State != api.StateReceived {
			t.Fatalf("submission %d: %+v", i, got[i])
		}
	}
	// Once more, sequentially, checking the status code too.
	status, _, body := e.post(t, keys.Alice, marshal(t, b))
	var acc api.Accepted
	if status != http.StatusAccepted || json.Unmarshal(body, &acc) != nil || acc.OrderID != b.OrderID {
		t.Fatalf("resubmission: HTTP %d %s", status, body)
	}
	if n := e.count(t, "orders"); n != 1 {
		t.Fatalf("%d orders, want 1", n)
	}
	if n := e.count(t, "outbox"); n != 1 {
		t.Fatalf("%d outbox jobs, want 1", n)
	}
	if n := e.count(t, "timeline"); n != 1 {
		t.Fatalf("%d timeline rows, want 1", n)
	}

	// Sent again after its expiry (its answers were lost): the stored order.
	e.skew.Store(int64(order.DefaultLifetime + time.Hour))
	if acc, err := alice.Submit(ctx, b); err != nil || acc.OrderID != b.OrderID {
		t.Fatalf("resubmission after expiry: %+v %v", acc, err)
	}
	late := seal(t, keys.Alice, testOrder(t, testToken), stdParties, order.SealOptions{})
	_, err := alice.Submit(ctx, late)
	wantProblem(t, err, http.StatusUnprocessableEntity, api.CodeBundleExpired)
	e.skew.Store(0)

	// Another bundle under the same order id: from alice, and from bob.
	again := seal(t, keys.Alice, testOrder(t, testToken), stdParties, order.SealOptions{OrderID: b.OrderID})
	_, err = alice.Submit(ctx, again)
	wantProblem(t, err, http.StatusConflict, api.CodeOrderIDReused)
	bobs := seal(t, keys.Bob, testOrder(t, testToken), stdParties, order.SealOptions{OrderID: b.OrderID})
	_, err = e.client(t, keys.Bob).Submit(ctx, bobs)
	wantProblem(t, err, http.StatusConflict, api.CodeOrderIDReused)
	if n := e.count(t, "orders"); n != 1 {
		t.Fatalf("%d orders, want 1", n)
	}
	o, err := e.st.Get(ctx, b.OrderID)
	if err != nil || o.Cardholder != keys.Alice || !bytes.Equal(o.Bundle, marshal(t, b)) {
		t.Fatalf("stored order changed: %+v %v", o, err)
	}
}

// TestIntakeStoresMerchantFields: the stored order holds the merchant
// section's fields, the header hash and the bundle as received.
func TestIntakeStoresMerchantFields(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b := seal(t, keys.Alice, testOrder(t, testToken), stdParties, order.SealOptions{})
	if _, err := e.client(t, keys.Alice).Submit(ctx, b); err != nil {
		t.Fatal(err)
	}
	o, err := e.st.Get(ctx, b.OrderID)
	if err != nil {
		t.Fatal(err)
	}
	hh := b.HeaderHash()
	var items []order.Item
	if err := json.Unmarshal(o.Items, &items); err != nil || len(items) != 2 {
		t.Fatalf("items %s: %v", o.Items, err)
	}
	if o.Cardholder != keys.Alice || !bytes.Equal(o.HeaderHash, hh[:]) || o.Issuer != keys.Bank || o.Carrier != keys.Parcel ||
		o.Vault != keys.Vault || o.ShipToken != testToken || o.Total != 3448 || o.Currency != "EUR" ||
		o.BuyerName != "Alice Example" || o.State != api.StateReceived {
		t.Fatalf("stored order %+v", o)
	}
	if _, err := order.ParseBundle(o.Bundle); err != nil {
		t.Fatalf("stored bundle: %v", err)
	}
}

// TestOrderForm: the order form lists the catalog, the carrier, the
// accepted issuers, the vault and the currency, to a signed request only,
// and signed back (DESIGN.md §5 Hardening).
func TestOrderForm(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.ts.URL + api.PathOrderForm)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("unsigned order form: HTTP %d, headers %v", resp.StatusCode, resp.Header)
	}
	// Only cardholders and consultants may ask.
	r, err := signedhttp.NewClient(keys.Keys(t, keys.Parcel), nil).Do(context.Background(), keys.Shop, http.MethodGet, e.ts.URL+api.PathOrderForm, nil)
	if err != nil || r.Status != http.StatusForbidden {
		t.Fatalf("order form to a carrier: %v %+v", err, r)
	}
	c, err := api.NewClient(keys.Keys(t, keys.Alice), e.ts.URL, keys.Shop, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.OrderForm(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f.Merchant != keys.Shop || f.Carrier != keys.Parcel || f.Vault != keys.Vault || f.Currency != "EUR" ||
		len(f.Issuers) != 1 || f.Issuers[0] != keys.Bank || f.MaxItems != 100 {
		t.Fatalf("order form %+v", f)
	}
	want := []api.Product{
		{SKU: "BOOK-1984.pb", Name: "Nineteen Eighty-Four (paperback)", UnitPrice: 1299},
		{SKU: "mug_blue-350", Name: "Blue mug, 350 ml", UnitPrice: 850},
	}
	if len(f.Catalog) != len(want) {
		t.Fatalf("catalog %+v", f.Catalog)
	}
	for i := range want {
		if f.Catalog[i] != want[i] {
			t.Fatalf("catalog[%d] = %+v, want %+v", i, f.Catalog[i], want[i])
		}
	}
	if p, ok := f.Product("mug_blue-350"); !ok || p.UnitPrice != 850 {
		t.Fatalf("Product: %+v %v", p, ok)
	}
	// A client pinned to another merchant refuses this form: the answer is
	// not signed by the merchant it pinned.
	pinned, _ := api.NewClient(keys.Keys(t, keys.Alice), e.ts.URL, keys.OtherShop, nil)
	if _, err := pinned.OrderForm(context.Background()); !errors.Is(err, httpsig.ErrForgedResponse) {
		t.Fatalf("a form for another merchant: %v", err)
	}
	// With no pin the client pins merchant:<host>, here merchant:127.0.0.1.
	host, _ := api.NewClient(keys.Keys(t, keys.Alice), e.ts.URL, "", nil)
	if host.Merchant() != "merchant:127.0.0.1" {
		t.Fatalf("pinned %q", host.Merchant())
	}
	if _, err := host.OrderForm(context.Background()); !errors.Is(err, httpsig.ErrForgedResponse) {
		t.Fatalf("a form of %s from the host 127.0.0.1: %v", keys.Shop, err)
	}
}
