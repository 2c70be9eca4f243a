package issuer_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"orderseal/internal/signedhttp"
	"orderseal/internal/wire"
	"orderseal/issuer/api"
	"orderseal/issuer/store"
	"orderseal/tstest/keys"

	"orderseal/order"
	"orderseal/order/money"
)

var authCodeRe = regexp.MustCompile(`^[0-9A-Z]{6}$`)

// TestApproveRetryVoid: an enrolled card is approved and debited once, the
// answer echoes hH and is signed; a retry gets the same answer without a
// second debit; a void releases the hold once.
func TestApproveRetryVoid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newIssuerEnv(t)
	card := e.addCard(t, visa, keys.Alice, "2031-12", "EUR", 500_00)
	shop := e.client(t, keys.Shop)
	b := seal(t, orderOpts{})
	hH := b.HeaderHash()

	a, err := shop.Authorize(ctx, b, orderTotal, "EUR", "")
	if err != nil {
		t.Fatal(err)
	}
	if a.Decision != api.Approved || a.Reason != "" || !authCodeRe.MatchString(a.AuthCode) || a.OrderID != b.OrderID ||
		a.HeaderHash != wire.B64(hH[:]) || a.Amount != orderTotal || a.Currency != "EUR" || a.Voided {
		t.Fatalf("answer %+v", a)
	}
	if _, err := time.Parse(time.RFC3339, a.Decided); err != nil {
		t.Fatalf("decided %q: %v", a.Decided, err)
	}
	if got := e.available(t, card.ID); got != 500_00-orderTotal {
		t.Fatalf("available %d", got)
	}
	for range 3 {
		again, err := shop.Authorize(ctx, b, orderTotal, "EUR", "")
		if err != nil || !reflect.DeepEqual(again, a) {
			t.Fatalf("retry: %+v %v, want %+v", again, err, a)
		}
	}
	if got := e.available(t, card.ID); got != 500_00-orderTotal {
		t.Fatalf("available %d after retries", got)
	}

	// Void: by another merchant it does not exist; by the shop, once.
	if _, err := e.client(t, keys.OtherShop).Void(ctx, b.OrderID); err == nil {
		t.Fatal("another merchant voided the shop's authorization")
	} else {
		wantProblem(t, err, api.CodeUnknownAuth)
	}
	wantProblem(t, errOf(shop.Void(ctx, "ord-unknown")), api.CodeUnknownAuth)
	for range 2 {
		v, err := shop.Void(ctx, b.OrderID)
		if err != nil || !v.Voided || v.AuthCode != a.AuthCode || v.HeaderHash != a.HeaderHash {
			t.Fatalf("void: %+v %v", v, err)
		}
		if got := e.available(t, card.ID); got != 500_00 {
			t.Fatalf("available %d after void", got)
		}
	}
	// A retry after the void says so, and debits nothing.
	if again, err := shop.Authorize(ctx, b, orderTotal, "EUR", ""); err != nil || !again.Voided || again.AuthCode != a.AuthCode {
		t.Fatalf("retry after void: %+v %v", again, err)
	}
	if got := e.available(t, card.ID); got != 500_00 {
		t.Fatalf("available %d after a retry of a voided authorization", got)
	}
	// Cardholders cannot void.
	resp, err := e.raw(t, keys.Alice).Do(ctx, keys.Bank, http.MethodPost, e.ts.URL+api.PathAuthorizations+b.OrderID+api.PathVoidSuffix, nil)
	if err != nil {
		t.Fatal(err)
	}
	respProblem(t, resp, http.StatusForbidden, "forbidden-role")
	e.assertNoNumber(t, visa, "4111 1111")
}

func errOf[T any](_ T, err error) error { return err }

// TestConcurrentRetries: the same bundle sent many times at once is decided
// once, debited once, and every caller gets the same answer.
func TestConcurrentRetries(t *testing.T) {
	t.Parallel()
	e := newIssuerEnv(t)
	card := e.addCard(t, visa, keys.Alice, "2031-12", "EUR", 100_00)
	shop := e.client(t, keys.Shop)
	b := seal(t, orderOpts{})
	const n = 12
	answers := make([]*api.Authorization, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i], errs[i] = shop.Authorize(context.Background(), b, orderTotal, "EUR", "")
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("request %d: %v", i, errs[i])
		}
		if !reflect.DeepEqual(answers[i], answers[0]) {
			t.Fatalf("answers differ: %+v vs %+v", answers[i], answers[0])
		}
	}
	if answers[0].Decision != api.Approved {
		t.Fatalf("answer %+v", answers[0])
	}
	if got := e.available(t, card.ID); got != 100_00-orderTotal {
		t.Fatalf("available %d: debited more than once", got)
	}
}

// TestDeclines: each reason, with the card's credit left untouched and the
// decline stored so a retry gets it again.
func TestDeclines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		number   string // card in the order; "": visa
		enroll   func(e *issuerEnv) store.Card
		amount   int64
		currency string
		want     string
	}{
		{name: "insufficient credit", want: api.ReasonInsufficientCredit,
			enroll: func(e *issuerEnv) store.Card { return e.addCard(t, visa, keys.Alice, "2031-12", "EUR", orderTotal-1) }},
		{name: "exactly the credit left", want: "",
			enroll: func(e *issuerEnv) store.Card { return e.addCard(t, visa, keys.Alice, "2031-12", "EUR", orderTotal) }},
		{name: "another cardholder's card", want: api.ReasonNotEnrolled,
			enroll: func(e *issuerEnv) store.Card { return e.addCard(t, visa, keys.Bob, "2031-12", "EUR", 500_00) }},
		{name: "unknown number", number: master, want: api.ReasonNotEnrolled,
			enroll: func(e *issuerEnv) store.Card { return e.addCard(t, visa, keys.Alice, "2031-12", "EUR", 500_00) }},
		{name: "sealed expiry differs from the enrolled one", want: api.ReasonNotEnrolled,
			enroll: func(e *issuerEnv) store.Card { return e.addCard(t, visa, keys.Alice, "2032-12", "EUR", 500_00) }},
		{name: "suspended card", want: api.ReasonInactive,
			enroll: func(e *issuerEnv) store.Card {
				c := e.addCard(t, visa, keys.Alice, "2031-12", "EUR", 500_00)
				if _, err := e.st.SetStatus(context.Background(), c.ID, store.StatusSuspended); err != nil {
					t.Fatal(err)
				}
				return c
			}},
		{name: "closed card", want: api.ReasonInactive,
			enroll: func(e *issuerEnv) store.Card {
				c := e.addCard(t, visa, keys.Alice, "2031-12", "EUR", 500_00)
				if _, err := e.st.SetStatus(context.Background(), c.ID, store.StatusClosed); err != nil {
					t.Fatal(err)
				}
				return c
			}},
		{name: "amount above the sealed total", amount: orderTotal + 1, want: api.ReasonAmountMismatch,
			enroll: func(e *issuerEnv) store.Card { return e.addCard(t, visa, keys.Alice, "2031-12", "EUR", 500_00) }},
		{name: "amount below the sealed total", amount: 1, want: api.ReasonAmountMismatch,
			enroll: func(e *issuerEnv) store.Card { return e.addCard(t, visa, keys.Alice, "2031-12", "EUR", 500_00) }},
		{name: "currency other than the sealed one", currency: "USD", want: api.ReasonAmountMismatch,
			enroll: func(e *issuerEnv) store.Card { return e.addCard(t, visa, keys.Alice, "2031-12", "EUR", 500_00) }},
		{name: "card in another currency", want: api.ReasonCurrency,
			enroll: func(e *issuerEnv) store.Card { return e.addCard(t, visa, keys.Alice, "2031-12", "USD", 500_00) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newIssuerEnv(t)
			card := tc.enroll(e)
			before := e.available(t, card.ID)
			b := seal(t, orderOpts{number: tc.number})
			amount, currency := tc.amount, tc.currency
			if amount == 0 {
				amount = orderTotal
			}
			if currency == "" {
				currency = "EUR"
			}
			shop := e.client(t, keys.Shop)
			a, err := shop.Authorize(ctx, b, amount, currency, "")
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if a.Decision != api.Approved || e.available(t, card.ID) != 0 {
					t.Fatalf("answer %+v, available %d", a, e.available(t, card.ID))
				}
				return
			}
			if a.Decision != api.Declined || a.Reason != tc.want || a.AuthCode != "" || a.Amount != amount || a.Currency != currency {
				t.Fatalf("answer %+v, want declined %s", a, tc.want)
			}
			if got := e.available(t, card.ID); got != before {
				t.Fatalf("a decline moved the credit: %d → %d", before, got)
			}
			again, err := shop.Authorize(ctx, b, amount, currency, "")
			if err != nil || !reflect.DeepEqual(again, a) {
				t.Fatalf("retried decline: %+v %v", again, err)
			}
			e.assertNoNumber(t, visa, master)
		})
	}
}

// TestExpiredCard: a card is good through the last day of its expiry
// month (UTC) and declined from the first moment of the next, with the
// bundle itself still valid.
func TestExpiredCard(t *testing.T) {
	t.Parallel()
	e := newIssuerEnv(t)
	n := time.Now().UTC()
	monthEnd := time.Date(n.Year(), n.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	sealAt := monthEnd.Add(-2 * time.Hour)
	expiry := sealAt.Format("2006-01")
	card := e.addCard(t, visa, keys.Alice, expiry, "EUR", 500_00)

	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{monthEnd.Add(-time.Minute), ""},
		{monthEnd, api.ReasonExpired},
		{monthEnd.Add(20 * time.Hour), api.ReasonExpired},
	} {
		b := seal(t, orderOpts{expiry: expiry, seal: order.SealOptions{Now: sealAt, Lifetime: 24 * time.Hour}})
		e.clk.Set(tc.at)
		resp := e.put(t, keys.Shop, b.OrderID, requestBody(t, b, orderTotal, "EUR"))
		var a api.Authorization
		if resp.Status != http.StatusCreated || json.Unmarshal(resp.Body, &a) != nil {
			t.Fatalf("at %s: HTTP %d %s", tc.at, resp.Status, resp.Body)
		}
		if tc.want == "" && a.Decision != api.Approved || tc.want != "" && (a.Decision != api.Declined || a.Reason != tc.want) {
			t.Fatalf("at %s: %+v, want %q", tc.at, a, tc.want)
		}
	}
	if got := e.available(t, card.ID); got != 500_00-orderTotal {
		t.Fatalf("available %d", got)
	}
}

// TestRefusals: requests that are refused outright get problem+json with a
// stable code, store nothing and move no credit.
func TestRefusals(t *testing.T) {
	t.Parallel()
	e := newIssuerEnv(t)
	card := e.addCard(t, visa, keys.Alice, "2031-12", "EUR", 500_00)
	good := func() *order.Bundle { return seal(t, orderOpts{}) }
	relay := func(b *order.Bundle) map[string]any {
		var m map[string]any
		r, _ := b.ForRole(order.RoleIssuer)
		raw, _ := r.MarshalJSON()
		json.Unmarshal(raw, &m)
		return m
	}
	body := func(bundle any, amount int64, currency string) []byte {
		raw, _ := json.Marshal(bundle)
		b, _ := json.Marshal(map[string]any{"bundle": json.RawMessage(raw), "amount": amount, "currency": currency})
		return b
	}

	for _, tc := range []struct {
		name    string
		caller  string // "": keys.Shop
		build   func(t *testing.T) (orderID string, body []byte)
		status  int
		code    string
		checkID string // order id that must not be stored for the shop ("": the one built)
	}{
		{name: "section replayed from another order", status: 422, code: api.CodeSectionRefused,
			build: func(t *testing.T) (string, []byte) {
				a, b := good(), good()
				b.Sections[order.RoleIssuer] = a.Sections[order.RoleIssuer]
				return b.OrderID, requestBody(t, b, orderTotal, "EUR")
			}},
		{name: "flipped ciphertext byte", status: 422, code: api.CodeSectionRefused,
			build: func(t *testing.T) (string, []byte) {
				b := good()
				s := b.Sections[order.RoleIssuer]
				s.CT[3] ^= 1
				return b.OrderID, requestBody(t, b, orderTotal, "EUR")
			}},
		{name: "commitment changed", status: 422, code: api.CodeSectionRefused,
			build: func(t *testing.T) (string, []byte) {
				b := good()
				c := b.Commitments[order.RoleMerchant]
				c[0] ^= 1
				b.Commitments[order.RoleMerchant] = c
				return b.OrderID, requestBody(t, b, orderTotal, "EUR")
			}},
		{name: "sealed with a rogue key center's key", status: 422, code: api.CodeSectionRefused,
			build: func(t *testing.T) (string, []byte) {
				b := seal(t, orderOpts{key: keys.Rogue(t).Party(t, keys.Alice)})
				return b.OrderID, requestBody(t, b, orderTotal, "EUR")
			}},
		{name: "caller is a cardholder", caller: keys.Alice, status: 403, code: "forbidden-role",
			build: func(t *testing.T) (string, []byte) {
				b := good()
				return b.OrderID, requestBody(t, b, orderTotal, "EUR")
			}},
		{name: "caller is a carrier", caller: keys.Parcel, status: 403, code: "forbidden-role",
			build: func(t *testing.T) (string, []byte) {
				b := good()
				return b.OrderID, requestBody(t, b, orderTotal, "EUR")
			}},
		{name: "relayed by another merchant", caller: keys.OtherShop, status: 403, code: api.CodeWrongMerchant,
			build: func(t *testing.T) (string, []byte) {
				b := good()
				return b.OrderID, requestBody(t, b, orderTotal, "EUR")
			}},
		{name: "bundle for another issuer", status: 400, code: api.CodeBundleInvalid,
			build: func(t *testing.T) (string, []byte) {
				b := seal(t, orderOpts{issuer: otherBankID})
				return b.OrderID, requestBody(t, b, orderTotal, "EUR")
			}},
		{name: "every section relayed", status: 400, code: api.CodeBundleInvalid,
			build: func(t *testing.T) (string, []byte) {
				b := good()
				return b.OrderID, body(b, orderTotal, "EUR")
			}},
		{name: "bundle does not parse", status: 400, code: api.CodeBundleInvalid,
			build: func(t *testing.T) (string, []byte) {
				b := good()
				m := relay(b)
				m["v"] = 2
				return b.OrderID, body(m, orderTotal, "EUR")
			}},
		{name: "path names another order", status: 400, code: api.CodeOrderIDMismatch, checkID: "ord-other",
			build: func(t *testing.T) (string, []byte) {
				return "ord-other", requestBody(t, good(), orderTotal, "EUR")
			}},
		{name: "expired bundle", status: 422, code: api.CodeBundleExpired,
			build: func(t *testing.T) (string, []byte) {
				b := seal(t, orderOpts{seal: order.SealOptions{Now: time.Now().Add(-48 * time.Hour)}})
				return b.OrderID, requestBody(t, b, orderTotal, "EUR")
			}},
		{name: "bundle from the future", status: 422, code: api.CodeBundleExpired,
			build: func(t *testing.T) (string, []byte) {
				b := seal(t, orderOpts{seal: order.SealOptions{Now: time.Now().Add(time.Hour)}})
				return b.OrderID, requestBody(t, b, orderTotal, "EUR")
			}},
		{name: "malformed JSON", status: 400, code: "malformed-json",
			build: func(t *testing.T) (string, []byte) {
				b := good()
				body := requestBody(t, b, orderTotal, "EUR")
				return b.OrderID, body[:len(body)-1]
			}},
		{name: "unknown field", status: 400, code: "malformed-json",
			build: func(t *testing.T) (string, []byte) {
				b := good()
				body := requestBody(t, b, orderTotal, "EUR")
				return b.OrderID, append(body[:len(body)-1], `,"capture":true}`...)
			}},
		{name: "duplicate key", status: 400, code: "malformed-json",
			build: func(t *testing.T) (string, []byte) {
				b := good()
				body := requestBody(t, b, orderTotal, "EUR")
				return b.OrderID, append(body[:len(body)-1], `,"amount":1}`...)
			}},
		{name: "zero amount", status: 422, code: "invalid-request",
			build: func(t *testing.T) (string, []byte) {
				b := good()
				return b.OrderID, requestBody(t, b, 0, "EUR")
			}},
		{name: "negative amount", status: 422, code: "invalid-request",
			build: func(t *testing.T) (string, []byte) {
				b := good()
				return b.OrderID, requestBody(t, b, -orderTotal, "EUR")
			}},
		{name: "not a currency", status: 422, code: money.CodeUnsupported,
			build: func(t *testing.T) (string, []byte) {
				b := good()
				return b.OrderID, requestBody(t, b, orderTotal, "EURO")
			}},
		{name: "not an ISO 4217 currency", status: 422, code: money.CodeUnsupported,
			build: func(t *testing.T) (string, []byte) {
				b := good()
				return b.OrderID, requestBody(t, b, orderTotal, "XYZ")
			}},
		{name: "no bundle", status: 422, code: "invalid-request",
			build: func(t *testing.T) (string, []byte) {
				return "ord-nobundle", []byte(`{"amount":3448,"currency":"EUR"}`)
			}},
		{name: "oversize body", status: 413, code: "body-too-large",
			build: func(t *testing.T) (string, []byte) {
				b := good()
				m := relay(b)
				m["pad"] = strings.Repeat("x", api.MaxBody)
				return b.OrderID, body(m, orderTotal, "EUR")
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orderID, reqBody := tc.build(t)
			caller := tc.caller
			if caller == "" {
				caller = keys.Shop
			}
			respProblem(t, e.put(t, caller, orderID, reqBody), tc.status, tc.code)
			check := tc.checkID
			if check == "" {
				check = orderID
			}
			for _, m := range []string{keys.Shop, caller} {
				e.assertNotStored(t, m, check)
			}
			if got := e.available(t, card.ID); got != 500_00 {
				t.Fatalf("available %d after a refused request", got)
			}
		})
	}
	e.assertNoNumber(t, visa)
}

// TestOrderIDReused: one order id, two bundles: the second is refused and
// the first answer stands; the same id at another merchant is another order.
func TestOrderIDReused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newIssuerEnv(t)
	card := e.addCard(t, visa, keys.Alice, "2031-12", "EUR", 500_00)
	shop := e.client(t, keys.Shop)
	first := seal(t, orderOpts{seal: order.SealOptions{OrderID: "ord-42"}})
	a, err := shop.Authorize(ctx, first, orderTotal, "EUR", "")
	if err != nil || a.Decision != api.Approved {
		t.Fatalf("%+v %v", a, err)
	}
	second := seal(t, orderOpts{seal: order.SealOptions{OrderID: "ord-42"}})
	p := wantProblem(t, errOf(shop.Authorize(ctx, second, orderTotal, "EUR", "")), api.CodeOrderIDReused)
	if p.Status != http.StatusConflict {
		t.Fatalf("status %d", p.Status)
	}
	stored, err := e.st.Authorization(ctx, keys.Shop, "ord-42")
	if err != nil || stored.HeaderHash != first.HeaderHash() || stored.AuthCode != a.AuthCode {
		t.Fatalf("stored %+v %v", stored, err)
	}
	other := seal(t, orderOpts{merchant: keys.OtherShop, seal: order.SealOptions{OrderID: "ord-42"}})
	if b, err := e.client(t, keys.OtherShop).Authorize(ctx, other, orderTotal, "EUR", ""); err != nil || b.Decision != api.Approved {
		t.Fatalf("same id at another merchant: %+v %v", b, err)
	}
	if got := e.available(t, card.ID); got != 500_00-2*orderTotal {
		t.Fatalf("available %d", got)
	}
}

// TestRetryAfterExpiry: a retry of an answered bundle gets its answer even
// once the bundle's window has passed, so an approval is never lost to a
// slow outbox.
func TestRetryAfterExpiry(t *testing.T) {
	t.Parallel()
	e := newIssuerEnv(t)
	card := e.addCard(t, visa, keys.Alice, "2031-12", "EUR", 500_00)
	b := seal(t, orderOpts{seal: order.SealOptions{Lifetime: time.Hour}})
	body := requestBody(t, b, orderTotal, "EUR")
	resp := e.put(t, keys.Shop, b.OrderID, body)
	if resp.Status != http.StatusCreated {
		t.Fatalf("HTTP %d %s", resp.Status, resp.Body)
	}
	e.clk.Set(time.Now().Add(3 * time.Hour))
	again := e.put(t, keys.Shop, b.OrderID, body)
	if again.Status != http.StatusOK || !bytes.Equal(again.Body, resp.Body) {
		t.Fatalf("retry after expiry: HTTP %d %s, want %s", again.Status, again.Body, resp.Body)
	}
	// A new bundle in that window is still refused.
	late := seal(t, orderOpts{seal: order.SealOptions{Lifetime: time.Hour}})
	respProblem(t, e.put(t, keys.Shop, late.OrderID, requestBody(t, late, orderTotal, "EUR")), 422, api.CodeBundleExpired)
	if got := e.available(t, card.ID); got != 500_00-orderTotal {
		t.Fatalf("available %d", got)
	}
}

// TestStoreOutage: with the database gone the issuer answers 503 with a
// code, never a decision. The replay check, whose nonces live in the same
// database, is the first to find it gone.
func TestStoreOutage(t *testing.T) {
	t.Parallel()
	e := newIssuerEnv(t)
	e.addCard(t, visa, keys.Alice, "2031-12", "EUR", 500_00)
	b := seal(t, orderOpts{})
	e.st.Close()
	resp := e.put(t, keys.Shop, b.OrderID, requestBody(t, b, orderTotal, "EUR"))
	respProblem(t, resp, http.StatusServiceUnavailable, signedhttp.CodeNonceStore)
	if resp.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	_, err := e.client(t, keys.Shop).Void(context.Background(), b.OrderID)
	wantProblem(t, err, signedhttp.CodeNonceStore)
	if bytes.Contains(e.log.Bytes(), []byte(visa)) {
		t.Fatal("log holds the card number")
	}
}

// TestClientChecksIssuer: the contract's client refuses identities and URLs
// that cannot be an issuer's.
func TestClientChecksIssuer(t *testing.T) {
	t.Parallel()
	shop := keys.Keys(t, keys.Shop)
	for _, tc := range []struct{ base, id string }{
		{"http://127.0.0.1:1", keys.Shop}, {"ftp://x", keys.Bank}, {"http://", keys.Bank}, {"http://127.0.0.1:1", "issuer:"},
	} {
		if _, err := api.NewClient(shop, tc.base, tc.id, nil); err == nil {
			t.Errorf("NewClient(%q, %q) accepted", tc.base, tc.id)
		}
	}
	if _, err := api.NewClient(shop, "http://127.0.0.1:1/", keys.Bank, nil); err != nil {
		t.Fatal(err)
	}
}

// TestAssistedApprove: a consultant's order for a card enrolled to alice
// (no enrollment binding applies) is approved with the card's CVC; the
// answer and the record name the assisted channel and session, retries
// answer identically and debit once, and the void names them too. An
// online order keeps its channel.
func TestAssistedApprove(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newIssuerEnv(t)
	card := e.addCard(t, visa, keys.Alice, "2031-12", "EUR", 500_00)
	b := sealAssisted(t, orderOpts{cvc: e.cvc(t, visa, "2031-12")})
	shop := e.client(t, keys.Shop)

	a, err := shop.Authorize(ctx, b, orderTotal, "EUR", testSession)
	if err != nil {
		t.Fatal(err)
	}
	hH := b.HeaderHash()
	if a.Decision != api.Approved || a.Reason != "" || !authCodeRe.MatchString(a.AuthCode) || a.HeaderHash != wire.B64(hH[:]) ||
		a.Channel != api.ChannelAssisted || a.Session != testSession || a.OrderID != b.OrderID {
		t.Fatalf("answer %+v", a)
	}
	stored, err := e.st.Authorization(ctx, keys.Shop, b.OrderID)
	if err != nil || stored.Channel != api.ChannelAssisted || stored.Session != testSession || stored.Sealer != carolID ||
		stored.CardID != card.ID || stored.AuthCode != a.AuthCode {
		t.Fatalf("stored %+v %v", stored, err)
	}
	for range 3 {
		again, err := shop.Authorize(ctx, b, orderTotal, "EUR", testSession)
		if err != nil || !reflect.DeepEqual(again, a) {
			t.Fatalf("retry: %+v %v, want %+v", again, err, a)
		}
	}
	if got := e.available(t, card.ID); got != 500_00-orderTotal {
		t.Fatalf("available %d: debited more than once", got)
	}
	v, err := shop.Void(ctx, b.OrderID)
	if err != nil || !v.Voided || v.Channel != api.ChannelAssisted || v.Session != testSession || v.AuthCode != a.AuthCode {
		t.Fatalf("void: %+v %v", v, err)
	}

	on := seal(t, orderOpts{})
	o, err := shop.Authorize(ctx, on, orderTotal, "EUR", "")
	if err != nil || o.Decision != api.Approved || o.Channel != api.ChannelOnline || o.Session != "" {
		t.Fatalf("online: %+v %v", o, err)
	}
	e.assertNoNumber(t, visa)
	// The CVC never shows in clear: not in the log, not on the wire.
	if bytes.Contains(e.log.Bytes(), []byte(`"cvc"`)) {
		t.Fatal("the log names a CVC")
	}
	e.wire.mu.Lock()
	defer e.wire.mu.Unlock()
	for _, body := range e.wire.all {
		if bytes.Contains(body, []byte(`"cvc"`)) {
			t.Fatalf("a body on the wire holds a CVC in clear: %.200s", body)
		}
	}
}

// TestAssistedDeclines: an assisted order needs the card's CVC, and is then
// held to every other rule of an online one; declines debit nothing, are
// stored with the channel and session, and retries get them again.
func TestAssistedDeclines(t *testing.T) {
	t.Parallel()
	enroll := func(holder, expiry string, limit int64, st store.Status) func(*issuerEnv) store.Card {
		return func(e *issuerEnv) store.Card {
			c := e.addCard(t, visa, holder, expiry, "EUR", limit)
			if st != store.StatusActive {
				if _, err := e.st.SetStatus(context.Background(), c.ID, st); err != nil {
					t.Fatal(err)
				}
			}
			return c
		}
	}
	visaCVC := func(e *issuerEnv) string { return e.cvc(t, visa, "2031-12") }
	for _, tc := range []struct {
		name   string
		enroll func(*issuerEnv) store.Card
		opts   func(e *issuerEnv) orderOpts
		amount int64 // 0: orderTotal
		want   string
	}{
		{name: "card enrolled to another cardholder, right CVC", want: "",
			enroll: enroll(keys.Bob, "2031-12", 500_00, store.StatusActive),
			opts:   func(e *issuerEnv) orderOpts { return orderOpts{cvc: visaCVC(e)} }},
		{name: "wrong CVC", want: api.ReasonCVCMismatch,
			enroll: enroll(keys.Alice, "2031-12", 500_00, store.StatusActive),
			opts:   func(e *issuerEnv) orderOpts { return orderOpts{cvc: otherCVC(visaCVC(e))} }},
		{name: "no CVC", want: api.ReasonCVCRequired,
			enroll: enroll(keys.Alice, "2031-12", 500_00, store.StatusActive),
			opts:   func(e *issuerEnv) orderOpts { return orderOpts{cvc: noCVC} }},
		{name: "the test order's CVC, not the card's", want: api.ReasonCVCMismatch,
			enroll: enroll(keys.Alice, "2031-12", 500_00, store.StatusActive),
			opts: func(e *issuerEnv) orderOpts {
				if visaCVC(e) == "737" {
					return orderOpts{cvc: "736"}
				}
				return orderOpts{cvc: "737"}
			}},
		{name: "suspended card, right CVC", want: api.ReasonInactive,
			enroll: enroll(keys.Alice, "2031-12", 500_00, store.StatusSuspended),
			opts:   func(e *issuerEnv) orderOpts { return orderOpts{cvc: visaCVC(e)} }},
		{name: "closed card, right CVC", want: api.ReasonInactive,
			enroll: enroll(keys.Alice, "2031-12", 500_00, store.StatusClosed),
			opts:   func(e *issuerEnv) orderOpts { return orderOpts{cvc: visaCVC(e)} }},
		{name: "unknown number", want: api.ReasonNotEnrolled,
			enroll: enroll(keys.Alice, "2031-12", 500_00, store.StatusActive),
			opts:   func(e *issuerEnv) orderOpts { return orderOpts{number: master, cvc: e.cvc(t, master, "2031-12")} }},
		{name: "sealed expiry differs from the card's", want: api.ReasonNotEnrolled,
			enroll: enroll(keys.Alice, "2032-12", 500_00, store.StatusActive),
			opts:   func(e *issuerEnv) orderOpts { return orderOpts{cvc: e.cvc(t, visa, "2032-12")} }},
		{name: "amount differs from the sealed total", amount: orderTotal + 1, want: api.ReasonAmountMismatch,
			enroll: enroll(keys.Alice, "2031-12", 500_00, store.StatusActive),
			opts:   func(e *issuerEnv) orderOpts { return orderOpts{cvc: visaCVC(e)} }},
		{name: "insufficient credit", want: api.ReasonInsufficientCredit,
			enroll: enroll(keys.Alice, "2031-12", orderTotal-1, store.StatusActive),
			opts:   func(e *issuerEnv) orderOpts { return orderOpts{cvc: visaCVC(e)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newIssuerEnv(t)
			card := tc.enroll(e)
			before := e.available(t, card.ID)
			b := sealAssisted(t, tc.opts(e))
			amount := cmp.Or(tc.amount, orderTotal)
			shop := e.client(t, keys.Shop)
			a, err := shop.Authorize(ctx, b, amount, "EUR", testSession)
			if err != nil {
				t.Fatal(err)
			}
			if a.Channel != api.ChannelAssisted || a.Session != testSession {
				t.Fatalf("answer %+v: channel or session", a)
			}
			if tc.want == "" {
				if a.Decision != api.Approved || e.available(t, card.ID) != before-amount {
					t.Fatalf("answer %+v, available %d", a, e.available(t, card.ID))
				}
				return
			}
			if a.Decision != api.Declined || a.Reason != tc.want || a.AuthCode != "" {
				t.Fatalf("answer %+v, want declined %s", a, tc.want)
			}
			if got := e.available(t, card.ID); got != before {
				t.Fatalf("a decline moved the credit: %d → %d", before, got)
			}
			if stored, err := e.st.Authorization(ctx, keys.Shop, b.OrderID); err != nil || stored.Reason != tc.want ||
				stored.Channel != api.ChannelAssisted || stored.Session != testSession || stored.Sealer != carolID {
				t.Fatalf("stored %+v %v", stored, err)
			}
			again, err := shop.Authorize(ctx, b, amount, "EUR", testSession)
			if err != nil || !reflect.DeepEqual(again, a) {
				t.Fatalf("retried decline: %+v %v", again, err)
			}
			e.assertNoNumber(t, visa, master)
		})
	}
}

// TestAssistedExpiredCard: with the right CVC, an expired card is declined
// as online.
func TestAssistedExpiredCard(t *testing.T) {
	t.Parallel()
	e := newIssuerEnv(t)
	n := time.Now().UTC()
	monthEnd := time.Date(n.Year(), n.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	sealAt := monthEnd.Add(-2 * time.Hour)
	expiry := sealAt.Format("2006-01")
	card := e.addCard(t, visa, keys.Alice, expiry, "EUR", 500_00)
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{monthEnd.Add(-time.Minute), ""},
		{monthEnd.Add(time.Hour), api.ReasonExpired},
	} {
		b := sealAssisted(t, orderOpts{expiry: expiry, cvc: e.cvc(t, visa, expiry), seal: order.SealOptions{Now: sealAt, Lifetime: 24 * time.Hour}})
		e.clk.Set(tc.at)
		resp := e.put(t, keys.Shop, b.OrderID, requestBodySession(t, b, orderTotal, "EUR", testSession))
		var a api.Authorization
		if resp.Status != http.StatusCreated || json.Unmarshal(resp.Body, &a) != nil {
			t.Fatalf("at %s: HTTP %d %s", tc.at, resp.Status, resp.Body)
		}
		if tc.want == "" && a.Decision != api.Approved || tc.want != "" && (a.Decision != api.Declined || a.Reason != tc.want) {
			t.Fatalf("at %s: %+v, want %q", tc.at, a, tc.want)
		}
	}
	if got := e.available(t, card.ID); got != 500_00-orderTotal {
		t.Fatalf("available %d", got)
	}
}

// TestSessionMismatch: the merchant relays an assisted order with the
// session its issuer section names, and an online order with none;
// otherwise 422 session-mismatch, nothing stored, nothing debited — also
// for a retry of an answered order.
func TestSessionMismatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newIssuerEnv(t)
	card := e.addCard(t, visa, keys.Alice, "2031-12", "EUR", 500_00)
	cvc := e.cvc(t, visa, "2031-12")
	for _, tc := range []struct {
		name    string
		bundle  func() *order.Bundle
		session string
	}{
		{"assisted, another session", func() *order.Bundle { return sealAssisted(t, orderOpts{cvc: cvc}) }, otherSession},
		{"assisted, no session", func() *order.Bundle { return sealAssisted(t, orderOpts{cvc: cvc}) }, ""},
		{"assisted, malformed session", func() *order.Bundle { return sealAssisted(t, orderOpts{cvc: cvc}) }, "ses_1"},
		{"assisted, the session with a trailing space", func() *order.Bundle { return sealAssisted(t, orderOpts{cvc: cvc}) }, testSession + " "},
		{"online, a session", func() *order.Bundle { return seal(t, orderOpts{}) }, testSession},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.bundle()
			respProblem(t, e.put(t, keys.Shop, b.OrderID, requestBodySession(t, b, orderTotal, "EUR", tc.session)),
				http.StatusUnprocessableEntity, api.CodeSessionMismatch)
			e.assertNotStored(t, keys.Shop, b.OrderID)
			if got := e.available(t, card.ID); got != 500_00 {
				t.Fatalf("available %d after a refused request", got)
			}
		})
	}

	// A retry of an approved assisted order names the session it was decided in.
	shop := e.client(t, keys.Shop)
	b := sealAssisted(t, orderOpts{cvc: cvc})
	a, err := shop.Authorize(ctx, b, orderTotal, "EUR", testSession)
	if err != nil || a.Decision != api.Approved {
		t.Fatalf("%+v %v", a, err)
	}
	for _, s := range []string{otherSession, ""} {
		p := wantProblem(t, errOf(shop.Authorize(ctx, b, orderTotal, "EUR", s)), api.CodeSessionMismatch)
		if p.Status != http.StatusUnprocessableEntity {
			t.Fatalf("retry in session %q: status %d", s, p.Status)
		}
	}
	if again, err := shop.Authorize(ctx, b, orderTotal, "EUR", testSession); err != nil || !reflect.DeepEqual(again, a) {
		t.Fatalf("retry: %+v %v, want %+v", again, err, a)
	}
	if got := e.available(t, card.ID); got != 500_00-orderTotal {
		t.Fatalf("available %d", got)
	}
	all, err := e.st.Authorizations(ctx, store.AuthFilter{})
	if err != nil || len(all) != 1 || all[0].OrderID != b.OrderID {
		t.Fatalf("stored %+v %v", all, err)
	}
}

// TestOnlineCVCChecked: a cardholder's own order whose issuer section
// carries a CVC other than the card's is declined cvc-mismatch without
// moving the credit (it used to be approved: the online channel never read
// the code); the card's own code, or none, is approved. It runs for every
// network's published test number (order/cards/testdata), Amex with its
// four digits, and neither number nor code reaches a file, log or body.
func TestOnlineCVCChecked(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../order/cards/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors struct {
		Valid []struct{ Number, Brand string }
	}
	if err := json.Unmarshal(data, &vectors); err != nil || len(vectors.Valid) < 20 {
		t.Fatalf("vectors: %d, %v", len(vectors.Valid), err)
	}
	ctx := context.Background()
	e := newIssuerEnv(t)
	shop := e.client(t, keys.Shop)
	var numbers []string
	for _, v := range vectors.Valid {
		numbers = append(numbers, v.Number)
		card := e.addCard(t, v.Number, keys.Alice, "2031-12", "EUR", 3*orderTotal)
		cvc := e.cvc(t, v.Number, "2031-12")
		if want := map[bool]int{true: 4, false: 3}[v.Brand == "amex"]; len(cvc) != want {
			t.Fatalf("%s (%s): cvc of %d digits, want %d", v.Number, v.Brand, len(cvc), want)
		}
		for _, tc := range []struct {
			name, cvc string
			want      string
		}{
			{"wrong cvc", otherCVC(cvc), api.ReasonCVCMismatch},
			{"the card's cvc", cvc, ""},
			{"no cvc", noCVC, ""},
		} {
			before := e.available(t, card.ID)
			// A single payment: the brands' products differ in the plans they offer (products.json).
			a, err := shop.Authorize(ctx, seal(t, orderOpts{number: v.Number, cvc: tc.cvc, installments: 1}), orderTotal, "EUR", "")
			if err != nil {
				t.Fatalf("%s %s: %v", v.Number, tc.name, err)
			}
			after := e.available(t, card.ID)
			switch {
			case tc.want == "" && (a.Decision != api.Approved || after != before-orderTotal):
				t.Errorf("%s (%s) %s: %s %s, available %d → %d; want approved", v.Number, v.Brand, tc.name, a.Decision, a.Reason, before, after)
			case tc.want != "" && (a.Decision != api.Declined || a.Reason != tc.want || after != before):
				t.Errorf("%s (%s) %s: %s %s, available %d → %d; want declined %s", v.Number, v.Brand, tc.name, a.Decision, a.Reason, before, after, tc.want)
			}
		}
	}
	e.assertNoNumber(t, numbers...)
}
