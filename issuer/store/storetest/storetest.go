// Package storetest is the conformance suite of the issuer's store
// (issuer/store, DESIGN.md §9: every backend passes one suite). It drives a
// backend through the store.Store interface only: enrollment, card states,
// the card key check, idempotent authorization under concurrency, credit
// that is never overspent, voids, the assisted channel and its CVC lock,
// and several stores (nodes) on one database racing.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncetest"
	"orderseal/issuer/api"
	"orderseal/issuer/store"
	"orderseal/order"
)

// Open opens the one database of a subtest, again on every call, with opt.
type Open func(opt store.Options) (store.Store, error)

// Run runs the suite. fresh returns the opener of a new, empty database for
// each subtest (cleaned up with t).
func Run(t *testing.T, fresh func(t *testing.T) Open) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *env)
	}{
		{"CardKey", testCardKey},
		{"AddCard", testAddCard},
		{"Reopen", testReopen},
		{"CVC", testCVC},
		{"AuthorizeIdempotent", testAuthorizeIdempotent},
		{"CreditNeverOverspent", testCreditNeverOverspent},
		{"OrderIDReused", testOrderIDReused},
		{"Void", testVoid},
		{"LifecycleCapture", testLifecycleCapture},
		{"LifecycleVoid", testLifecycleVoid},
		{"LifecycleExpiry", testLifecycleExpiry},
		{"LifecycleConcurrent", testLifecycleConcurrent},
		{"Installments", testInstallments},
		{"AuthorizeAssisted", testAuthorizeAssisted},
		{"AuthorizationsFilter", testAuthorizationsFilter},
		{"Nodes", testNodes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newEnv(t, fresh(t)))
		})
	}
	t.Run("CardKeyRace", func(t *testing.T) { testCardKeyRace(t, fresh(t)) })
	t.Run("Nonces", func(t *testing.T) {
		noncetest.Run(t, func(t *testing.T, quota int) nonce.Store {
			st, err := fresh(t)(store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st.Nonces(nonce.Fixed(quota))
		})
	})
}

const (
	alice   = "cardholder:alice@example.org"
	bob     = "cardholder:bob@example.org"
	carol   = "consultant:carol.shop.example"
	shop    = "merchant:shop.example"
	other   = "merchant:other.example"
	visa    = "4111111111111111"
	master  = "5555555555554444"
	session = "ses_abcdefghijklmnopqrstuvwxyz"
)

// now is the stores' clock in these tests: mid-month, so expiry edges are clear.
var now = time.Date(2030, 6, 15, 12, 0, 0, 0, time.UTC)

type env struct {
	open Open
	dir  string // for card key files
	key  *store.CardKey
	st   store.Store // opened under key, at now
}

func newEnv(t *testing.T, open Open) *env {
	t.Helper()
	e := &env{open: open, dir: t.TempDir()}
	var err error
	if e.key, err = store.CreateCardKey(filepath.Join(e.dir, "card.key")); err != nil {
		t.Fatal(err)
	}
	e.st = e.reopen(t, e.key)
	return e
}

// reopen opens the subtest's database again under k (nil: keyless), at now.
func (e *env) reopen(t *testing.T, k *store.CardKey) store.Store {
	t.Helper()
	st, err := e.open(store.Options{CardKey: k, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func (e *env) add(t *testing.T, number, holder, expiry string, limit int64) store.Card {
	t.Helper()
	c, err := e.st.AddCard(context.Background(), store.NewCard{Number: number, Cardholder: holder, Expiry: expiry, Currency: "EUR", Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) card(t *testing.T, id string) store.Card {
	t.Helper()
	c, err := e.st.Card(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// request is an authorization of amount EUR on visa for alice, order id, header hash byte h.
func request(orderID string, h byte, amount int64) store.AuthRequest {
	return store.AuthRequest{Merchant: shop, OrderID: orderID, HeaderHash: [32]byte{h}, Cardholder: alice,
		Number: visa, Expiry: "2031-12", Total: &order.Money{Amount: amount, Currency: "EUR"}, Amount: amount, Currency: "EUR"}
}

// assistedRequest is request keyed by carol in session with cvc.
func assistedRequest(orderID string, h byte, amount int64, cvc string) store.AuthRequest {
	r := request(orderID, h, amount)
	r.Cardholder, r.Session, r.CVC = carol, session, cvc
	return r
}

// testReopen: what a store wrote is there when it is opened again, and the
// card is still found by its number.
func testReopen(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.add(t, visa, alice, "2031-12", 100_00)
	first, _, err := e.st.Authorize(ctx, request("ord-1", 1, 10_00))
	if err != nil || first.Decision != api.Approved {
		t.Fatalf("first: %+v %v", first, err)
	}
	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	e.st = e.reopen(t, e.key)
	if got := e.card(t, c.ID); got != (store.Card{ID: c.ID, Last4: "1111", Cardholder: alice, Expiry: "2031-12", Currency: "EUR",
		Limit: 100_00, Available: 90_00, Status: store.StatusActive, Created: c.Created}) {
		t.Fatalf("card after reopen: %+v", got)
	}
	if stored, err := e.st.Authorization(ctx, shop, "ord-1"); err != nil || stored != first {
		t.Fatalf("stored %+v %v, want %+v", stored, err, first)
	}
	a, _, err := e.st.Authorize(ctx, request("ord-2", 2, 10_00))
	if err != nil || a.Decision != api.Approved || a.CardID != c.ID {
		t.Fatalf("after reopen: %+v %v", a, err)
	}
}

// testCVC: the store's CVC is the one derived from its card key
// (store.CVC, whose vectors are in issuer/store/testdata), and it checks its input.
func testCVC(t *testing.T, e *env) {
	ks, err := store.DeriveSubKeys(e.key)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ number, expiry string }{{visa, "2031-12"}, {visa, "2032-01"}, {master, "2031-12"}} {
		want, err := store.CVC(ks, c.number, c.expiry)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := e.st.CVC(c.number, c.expiry); err != nil || got != want {
			t.Errorf("CVC(%s, %s) = %q, %v; want %q", c.number, c.expiry, got, err, want)
		}
	}
	for _, in := range []struct{ number, expiry string }{
		{"4111 1111 1111 1111", "2031-12"}, {"4111111111111112", "2031-12"}, {"", "2031-12"},
		{visa, "12/31"}, {visa, ""}, {visa, "2031-13"},
	} {
		_, err := e.st.CVC(in.number, in.expiry)
		if !errors.Is(err, store.ErrInvalid) || strings.Contains(err.Error(), "1111") {
			t.Errorf("CVC(%q, %q): %v", in.number, in.expiry, err)
		}
	}
}

// testCreditNeverOverspent: concurrent authorizations of different orders
// on one card approve exactly what its credit covers.
func testCreditNeverOverspent(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.add(t, visa, alice, "2031-12", 50_00)
	const n = 12
	var wg sync.WaitGroup
	results := make([]store.Authorization, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _, errs[i] = e.st.Authorize(ctx, request(fmt.Sprintf("ord-%d", i), byte(i+1), 10_00))
		}()
	}
	wg.Wait()
	approved := 0
	for i := range n {
		switch {
		case errs[i] != nil:
			t.Fatalf("order %d: %v", i, errs[i])
		case results[i].Decision == api.Approved:
			approved++
		case results[i].Reason != api.ReasonInsufficientCredit:
			t.Fatalf("order %d: %+v", i, results[i])
		}
	}
	if got := e.card(t, c.ID).Available; approved != 5 || got != 0 {
		t.Fatalf("%d approvals of 10.00 on 50.00, %d left", approved, got)
	}
}

// testAuthorizationsFilter: a filter selects by merchant, by session, or
// both; newest first.
func testAuthorizationsFilter(t *testing.T, e *env) {
	ctx := context.Background()
	e.add(t, visa, alice, "2031-12", 100_00)
	cvc, err := e.st.CVC(visa, "2031-12")
	if err != nil {
		t.Fatal(err)
	}
	shopOnline := request("ord-1", 1, 10_00)
	otherOnline := request("ord-1", 2, 10_00)
	otherOnline.Merchant = other
	shopPhone := assistedRequest("ord-2", 3, 10_00, cvc)
	otherPhone := assistedRequest("ord-3", 4, 10_00, cvc)
	otherPhone.Merchant = other
	for _, r := range []store.AuthRequest{shopOnline, otherOnline, shopPhone, otherPhone} {
		if a, _, err := e.st.Authorize(ctx, r); err != nil || a.Decision != api.Approved {
			t.Fatalf("%s %s: %+v %v", r.Merchant, r.OrderID, a, err)
		}
	}
	key := func(as []store.Authorization) string {
		var out []string
		for _, a := range as {
			out = append(out, a.Merchant+"/"+a.OrderID)
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		f    store.AuthFilter
		want string
	}{
		{store.AuthFilter{}, other + "/ord-3 " + shop + "/ord-2 " + other + "/ord-1 " + shop + "/ord-1"},
		{store.AuthFilter{Merchant: shop}, shop + "/ord-2 " + shop + "/ord-1"},
		{store.AuthFilter{Merchant: other}, other + "/ord-3 " + other + "/ord-1"},
		{store.AuthFilter{Session: session}, other + "/ord-3 " + shop + "/ord-2"},
		{store.AuthFilter{Merchant: shop, Session: session}, shop + "/ord-2"},
		{store.AuthFilter{Merchant: "merchant:nobody.example"}, ""},
	} {
		got, err := e.st.Authorizations(ctx, tc.f)
		if err != nil || key(got) != tc.want {
			t.Errorf("%+v: %q %v, want %q", tc.f, key(got), err, tc.want)
		}
	}
}

// testCardKey: the store remembers the card key it was first opened
// under: another is refused, none is fine for what needs no number.
func testCardKey(t *testing.T, e *env) {
	otherKey, err := store.CreateCardKey(filepath.Join(e.dir, "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	if st, err := e.open(store.Options{CardKey: otherKey}); !errors.Is(err, store.ErrWrongKey) {
		if err == nil {
			st.Close()
		}
		t.Fatalf("wrong key: %v", err)
	}
	keyless := e.reopen(t, nil)
	if _, err := keyless.Cards(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := keyless.AddCard(context.Background(), store.NewCard{Number: visa, Cardholder: alice, Expiry: "2031-12", Currency: "EUR", Limit: 1}); !errors.Is(err, store.ErrNoCardKey) {
		t.Fatalf("AddCard without a key: %v", err)
	}
	if _, _, err := keyless.Authorize(context.Background(), request("o1", 1, 100)); !errors.Is(err, store.ErrNoCardKey) {
		t.Fatalf("Authorize without a key: %v", err)
	}
	if _, err := keyless.CVC(visa, "2031-12"); !errors.Is(err, store.ErrNoCardKey) {
		t.Fatalf("CVC without a key: %v", err)
	}
	// The key is checked on every open, not only the first.
	if _, err := e.open(store.Options{CardKey: otherKey}); !errors.Is(err, store.ErrWrongKey) {
		t.Fatalf("wrong key after a keyless open: %v", err)
	}
}

func testAddCard(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.add(t, visa, alice, "2031-12", 500_00)
	_, err := e.st.AddCard(ctx, store.NewCard{Number: visa, Cardholder: bob, Expiry: "2032-01", Currency: "EUR", Limit: 1})
	if !errors.Is(err, store.ErrDuplicateCard) || !strings.Contains(err.Error(), c.ID) {
		t.Fatalf("duplicate: %v", err)
	}
	good := store.NewCard{Number: master, Cardholder: alice, Expiry: "2031-12", Currency: "EUR", Limit: 1}
	for name, mod := range map[string]func(*store.NewCard){
		"luhn":           func(n *store.NewCard) { n.Number = "4111111111111112" },
		"short":          func(n *store.NewCard) { n.Number = "42" },
		"spaces":         func(n *store.NewCard) { n.Number = "5555 5555 5555 4444" }, // callers normalize with ParseNumber
		"merchant":       func(n *store.NewCard) { n.Cardholder = shop },
		"no identity":    func(n *store.NewCard) { n.Cardholder = "alice" },
		"expiry":         func(n *store.NewCard) { n.Expiry = "12/31" },
		"month 13":       func(n *store.NewCard) { n.Expiry = "2031-13" },
		"currency":       func(n *store.NewCard) { n.Currency = "eur" },
		"zero limit":     func(n *store.NewCard) { n.Limit = 0 },
		"negative limit": func(n *store.NewCard) { n.Limit = -5 },
		"huge limit":     func(n *store.NewCard) { n.Limit = store.MaxCreditLimit + 1 },
	} {
		n := good
		mod(&n)
		_, err := e.st.AddCard(ctx, n)
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "5555") {
			t.Errorf("%s: error quotes the number: %v", name, err)
		}
	}
	c2 := e.add(t, master, bob, "2030-07", 20_00)
	cards, err := e.st.Cards(ctx)
	if err != nil || len(cards) != 2 || cards[0].ID != c.ID || cards[1].ID != c2.ID || cards[1].Last4 != "4444" {
		t.Fatalf("list: %+v %v", cards, err)
	}

	for _, step := range []struct {
		to   store.Status
		want error
	}{
		{store.StatusSuspended, nil}, {store.StatusSuspended, nil}, {store.StatusActive, nil},
		{store.StatusClosed, nil}, {store.StatusActive, store.ErrClosedCard}, {store.StatusClosed, nil}, {"lost", store.ErrInvalid},
	} {
		got, err := e.st.SetStatus(ctx, c.ID, step.to)
		if !errors.Is(err, step.want) || (err == nil && got.Status != step.to) {
			t.Fatalf("to %s: %+v %v, want %v", step.to, got, err, step.want)
		}
	}
	for _, id := range []string{"card_aaaaaaaaaaaaaaaaaaaaaaaaaa", visa, ""} {
		if _, err := e.st.SetStatus(ctx, id, store.StatusActive); !errors.Is(err, store.ErrNotFound) || strings.Contains(err.Error(), "4111") {
			t.Errorf("SetStatus(%q): %v", id, err)
		}
	}
}

// testAuthorizeIdempotent: retries of one bundle, sequential or concurrent,
// debit once and all get the first answer; declines are kept too.
func testAuthorizeIdempotent(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.add(t, visa, alice, "2031-12", 100_00)

	first, replayed, err := e.st.Authorize(ctx, request("ord-1", 1, 30_00))
	if err != nil || replayed || first.Decision != api.Approved || len(first.AuthCode) != 6 || first.Reason != "" {
		t.Fatalf("first: %+v %v %v", first, replayed, err)
	}
	again, replayed, err := e.st.Authorize(ctx, request("ord-1", 1, 30_00))
	if err != nil || !replayed || again != first {
		t.Fatalf("retry: %+v %v %v, want %+v", again, replayed, err, first)
	}
	if got := e.card(t, c.ID).Available; got != 70_00 {
		t.Fatalf("available %d after a retried authorization", got)
	}

	// Concurrent retries of a new order: one decision, one debit.
	const n = 16
	var wg sync.WaitGroup
	results := make([]store.Authorization, n)
	fresh := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var r bool
			results[i], r, errs[i] = e.st.Authorize(ctx, request("ord-2", 2, 20_00))
			fresh[i] = !r
		}()
	}
	wg.Wait()
	decided := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("concurrent %d: %v", i, errs[i])
		}
		if results[i] != results[0] {
			t.Fatalf("concurrent answers differ: %+v vs %+v", results[i], results[0])
		}
		if fresh[i] {
			decided++
		}
	}
	if decided != 1 || results[0].Decision != api.Approved {
		t.Fatalf("%d fresh decisions, answer %+v", decided, results[0])
	}
	if got := e.card(t, c.ID).Available; got != 50_00 {
		t.Fatalf("available %d after concurrent retries, want 5000", got)
	}

	// A decline is stored and replayed even once the card could pay.
	dec, _, err := e.st.Authorize(ctx, request("ord-3", 3, 60_00))
	if err != nil || dec.Decision != api.Declined || dec.Reason != api.ReasonInsufficientCredit || dec.AuthCode != "" {
		t.Fatalf("decline: %+v %v", dec, err)
	}
	if _, err := e.st.Void(ctx, shop, "ord-1"); err != nil {
		t.Fatal(err)
	}
	if again, replayed, err := e.st.Authorize(ctx, request("ord-3", 3, 60_00)); err != nil || !replayed || again != dec {
		t.Fatalf("decline retried: %+v %v %v", again, replayed, err)
	}
}

func testOrderIDReused(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.add(t, visa, alice, "2031-12", 100_00)
	if _, _, err := e.st.Authorize(ctx, request("ord-1", 1, 10_00)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.st.Authorize(ctx, request("ord-1", 9, 10_00)); !errors.Is(err, store.ErrOrderIDReused) {
		t.Fatalf("another bundle under a used id: %v", err)
	}
	// Order ids are per merchant.
	r := request("ord-1", 9, 10_00)
	r.Merchant = other
	if a, replayed, err := e.st.Authorize(ctx, r); err != nil || replayed || a.Decision != api.Approved {
		t.Fatalf("other merchant, same id: %+v %v %v", a, replayed, err)
	}
	if got := e.card(t, c.ID).Available; got != 80_00 {
		t.Fatalf("available %d", got)
	}
	for name, mod := range map[string]func(*store.AuthRequest){
		"merchant":    func(r *store.AuthRequest) { r.Merchant = alice },
		"order id":    func(r *store.AuthRequest) { r.OrderID = "" },
		"header hash": func(r *store.AuthRequest) { r.HeaderHash = [32]byte{} },
		"amount":      func(r *store.AuthRequest) { r.Amount = 0 },
		"currency":    func(r *store.AuthRequest) { r.Currency = "Euro" },
	} {
		r := request("ord-x", 7, 10_00)
		mod(&r)
		if _, _, err := e.st.Authorize(ctx, r); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := e.st.Authorization(ctx, shop, "ord-x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("invalid request stored: %v", err)
	}
}

func testVoid(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.add(t, visa, alice, "2031-12", 100_00)
	a, _, err := e.st.Authorize(ctx, request("ord-1", 1, 40_00))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Void(ctx, other, "ord-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another merchant voided: %v", err)
	}
	if _, err := e.st.Void(ctx, shop, "ord-none"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown order voided: %v", err)
	}
	for i := range 3 {
		v, err := e.st.Void(ctx, shop, "ord-1")
		if err != nil || !v.Voided || v.AuthCode != a.AuthCode || v.VoidedAt.IsZero() {
			t.Fatalf("void %d: %+v %v", i, v, err)
		}
		if got := e.card(t, c.ID).Available; got != 100_00 {
			t.Fatalf("void %d: available %d", i, got)
		}
	}
	// Voiding a decline restores nothing.
	if _, _, err := e.st.Authorize(ctx, request("ord-big", 2, 60_00)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.st.Authorize(ctx, request("ord-2", 3, 50_00)); err != nil {
		t.Fatal(err)
	}
	d, _, _ := e.st.Authorize(ctx, request("ord-3", 4, 60_00))
	if d.Decision != api.Declined {
		t.Fatalf("want a decline, got %+v", d)
	}
	if v, err := e.st.Void(ctx, shop, "ord-3"); err != nil || !v.Voided {
		t.Fatalf("void decline: %+v %v", v, err)
	}
	// ord-big approved (60), ord-2 and ord-3 declined (above the 40 left).
	if got := e.card(t, c.ID).Available; got != 40_00 {
		t.Fatalf("available %d, want 4000", got)
	}
}

// testAuthorizeAssisted: the record keeps sealer, channel and session; the
// card's derived CVC approves a card enrolled to any cardholder, once; a
// wrong one declines without a debit; sessions go with consultants only.
func testAuthorizeAssisted(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.add(t, visa, alice, "2031-12", 100_00)
	cvc, err := e.st.CVC(visa, "2031-12")
	if err != nil {
		t.Fatal(err)
	}
	wrong := fmt.Sprintf("%03d", (int(cvc[0]-'0')*100+int(cvc[1]-'0')*10+int(cvc[2]-'0')+1)%1000)

	online, _, err := e.st.Authorize(ctx, request("ord-online", 1, 10_00))
	if err != nil || online.Decision != api.Approved || online.Channel != api.ChannelOnline || online.Session != "" || online.Sealer != alice {
		t.Fatalf("online: %+v %v", online, err)
	}
	a, replayed, err := e.st.Authorize(ctx, assistedRequest("ord-phone", 2, 30_00, cvc))
	if err != nil || replayed || a.Decision != api.Approved || a.Channel != api.ChannelAssisted || a.Session != session || a.Sealer != carol || a.CardID != c.ID {
		t.Fatalf("assisted: %+v %v %v", a, replayed, err)
	}
	for range 3 {
		again, replayed, err := e.st.Authorize(ctx, assistedRequest("ord-phone", 2, 30_00, cvc))
		if err != nil || !replayed || again != a {
			t.Fatalf("retry: %+v %v %v, want %+v", again, replayed, err, a)
		}
	}
	if stored, err := e.st.Authorization(ctx, shop, "ord-phone"); err != nil || stored != a {
		t.Fatalf("stored %+v %v, want %+v", stored, err, a)
	}
	dec, _, err := e.st.Authorize(ctx, assistedRequest("ord-wrong", 3, 30_00, wrong))
	if err != nil || dec.Decision != api.Declined || dec.Reason != api.ReasonCVCMismatch || dec.Channel != api.ChannelAssisted || dec.Session != session {
		t.Fatalf("wrong CVC: %+v %v", dec, err)
	}
	if got := e.card(t, c.ID).Available; got != 60_00 {
		t.Fatalf("available %d, want 6000", got)
	}

	for name, r := range map[string]store.AuthRequest{
		"assisted without a session":  func() store.AuthRequest { r := assistedRequest("ord-x", 7, 10_00, cvc); r.Session = ""; return r }(),
		"assisted, malformed session": func() store.AuthRequest { r := assistedRequest("ord-x", 7, 10_00, cvc); r.Session = "ses_1"; return r }(),
		"online with a session":       func() store.AuthRequest { r := request("ord-x", 7, 10_00); r.Session = session; return r }(),
		"sealer not an identity":      func() store.AuthRequest { r := request("ord-x", 7, 10_00); r.Cardholder = "alice"; return r }(),
	} {
		if _, _, err := e.st.Authorize(ctx, r); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := e.st.Authorization(ctx, shop, "ord-x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("invalid request stored: %v", err)
	}

	// Listed newest first; by session, only that session's orders.
	all, err := e.st.Authorizations(ctx, store.AuthFilter{})
	if err != nil || len(all) != 3 || all[0].OrderID != "ord-wrong" || all[1].OrderID != "ord-phone" || all[2].OrderID != "ord-online" {
		t.Fatalf("all: %+v %v", all, err)
	}
	if all[1] != a {
		t.Fatalf("listed %+v, want %+v", all[1], a)
	}
	bySession, err := e.st.Authorizations(ctx, store.AuthFilter{Session: session})
	if err != nil || len(bySession) != 2 || bySession[0].OrderID != "ord-wrong" || bySession[1].OrderID != "ord-phone" {
		t.Fatalf("by session: %+v %v", bySession, err)
	}
	if none, err := e.st.Authorizations(ctx, store.AuthFilter{Session: "ses_zzzzzzzzzzzzzzzzzzzzzzzzzz"}); err != nil || len(none) != 0 {
		t.Fatalf("another session: %+v %v", none, err)
	}

	// Wrong codes lock the card for assisted orders, the right one included;
	// online orders go on.
	for i := 2; i <= store.MaxCVCFailures; i++ {
		dec, _, err := e.st.Authorize(ctx, assistedRequest(fmt.Sprintf("ord-wrong-%d", i), byte(10+i), 10_00, wrong))
		if err != nil || dec.Reason != api.ReasonCVCMismatch {
			t.Fatalf("wrong CVC %d: %+v %v", i, dec, err)
		}
	}
	locked, _, err := e.st.Authorize(ctx, assistedRequest("ord-locked", 20, 10_00, cvc))
	if err != nil || locked.Decision != api.Declined || locked.Reason != api.ReasonCVCLocked {
		t.Fatalf("after %d wrong codes: %+v %v", store.MaxCVCFailures, locked, err)
	}
	if on, _, err := e.st.Authorize(ctx, request("ord-online-2", 21, 10_00)); err != nil || on.Decision != api.Approved {
		t.Fatalf("online order of a card locked for assisted ones: %+v %v", on, err)
	}
	later, err := e.open(store.Options{CardKey: e.key, Now: func() time.Time { return now.Add(store.CVCLockWindow + time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	ok, _, err := later.Authorize(ctx, assistedRequest("ord-after", 22, 10_00, cvc))
	later.Close()
	if err != nil || ok.Decision != api.Approved {
		t.Fatalf("after the lock window: %+v %v", ok, err)
	}
}
