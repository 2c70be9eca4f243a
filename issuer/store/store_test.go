package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"orderseal/internal/secfile"
	"orderseal/internal/sqlitex"
	"orderseal/issuer/api"
	"orderseal/order"
)

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
	dir, db, keyPath string
	key              *CardKey
	st               *Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{dir: dir, db: filepath.Join(dir, "issuer.db"), keyPath: filepath.Join(dir, "card.key")}
	var err error
	if e.key, err = CreateCardKey(e.keyPath); err != nil {
		t.Fatal(err)
	}
	e.st = e.open(t, e.key)
	return e
}

func (e *env) open(t *testing.T, k *CardKey) *Store {
	t.Helper()
	st, err := Open(context.Background(), Config{Path: e.db, CardKey: k, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func (e *env) add(t *testing.T, number, holder, expiry string, limit int64) Card {
	t.Helper()
	c, err := e.st.AddCard(context.Background(), NewCard{Number: number, Cardholder: holder, Expiry: expiry, Currency: "EUR", Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) card(t *testing.T, id string) Card {
	t.Helper()
	c, err := e.st.Card(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// request is an authorization of amount EUR on visa for alice, order id, header hash byte h.
func request(orderID string, h byte, amount int64) AuthRequest {
	return AuthRequest{Merchant: shop, OrderID: orderID, HeaderHash: [32]byte{h}, Cardholder: alice,
		Number: visa, Expiry: "2031-12", Total: &order.Money{Amount: amount, Currency: "EUR"}, Amount: amount, Currency: "EUR"}
}

// assistedRequest is request keyed by carol in session with cvc.
func assistedRequest(orderID string, h byte, amount int64, cvc string) AuthRequest {
	r := request(orderID, h, amount)
	r.Cardholder, r.Session, r.CVC = carol, session, cvc
	return r
}

func TestCardKeyFile(t *testing.T) {
	e := newEnv(t)
	if _, err := CreateCardKey(e.keyPath); !errors.Is(err, os.ErrExist) {
		t.Fatalf("CreateCardKey overwrote a key: %v", err)
	}
	if st, err := os.Stat(e.keyPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	k, err := LoadCardKey(e.keyPath)
	if err != nil || !k.Equal(e.key) {
		t.Fatalf("reload: %v", err)
	}
	os.Chmod(e.keyPath, 0o644)
	if _, err := LoadCardKey(e.keyPath); !errors.Is(err, secfile.ErrPermissions) {
		t.Fatalf("0644 key loaded: %v", err)
	}
	bad := filepath.Join(e.dir, "bad.key")
	os.WriteFile(bad, []byte("AAAA\n"), 0o600)
	if _, err := LoadCardKey(bad); !errors.Is(err, ErrBadCardKey) {
		t.Fatalf("short key: %v", err)
	}
	// The database remembers its key: another one is refused, none is fine.
	otherKey, _ := CreateCardKey(filepath.Join(e.dir, "other.key"))
	if _, err := Open(context.Background(), Config{Path: e.db, CardKey: otherKey}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong key: %v", err)
	}
	keyless := e.open(t, nil)
	if _, err := keyless.Cards(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := keyless.AddCard(context.Background(), NewCard{Number: visa, Cardholder: alice, Expiry: "2031-12", Currency: "EUR", Limit: 1}); !errors.Is(err, ErrNoCardKey) {
		t.Fatalf("AddCard without a key: %v", err)
	}
	if _, _, err := keyless.Authorize(context.Background(), request("o1", 1, 100)); !errors.Is(err, ErrNoCardKey) {
		t.Fatalf("Authorize without a key: %v", err)
	}
}

// TestEncryptedAtRest: after enrolling and authorizing, no file of the
// issuer (database, WAL, shared memory) holds the card number in any
// spelling; a reopened store still finds the card by its number.
func TestEncryptedAtRest(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.add(t, visa, alice, "2031-12", 100_00)
	if c.Last4 != "1111" || c.Masked() != "****1111" || c.Available != c.Limit || c.Status != StatusActive || !ValidCardID(c.ID) {
		t.Fatalf("card %+v", c)
	}
	if _, _, err := e.st.Authorize(ctx, request("ord-1", 1, 10_00)); err != nil {
		t.Fatal(err)
	}
	needles := [][]byte{[]byte(visa), []byte("4111 1111 1111 1111"), []byte("411111111111")}
	scan := func() {
		files := 0
		filepath.WalkDir(e.dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasSuffix(p, ".key") {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			files++
			for _, n := range needles {
				if bytes.Contains(data, n) {
					t.Errorf("%s holds the card number in clear", filepath.Base(p))
				}
			}
			return nil
		})
		if files == 0 {
			t.Fatal("no database file scanned")
		}
	}
	scan() // with the WAL still open
	e.st.Close()
	st := e.open(t, e.key)
	e.st = st
	scan() // after the checkpoint at close
	a, _, err := st.Authorize(ctx, request("ord-2", 2, 10_00))
	if err != nil || a.Decision != api.Approved || a.CardID != c.ID {
		t.Fatalf("after reopen: %+v %v", a, err)
	}
	// A sealed number moved onto another card row does not open (AAD = card id).
	c2 := e.add(t, master, bob, "2031-12", 100_00)
	if _, err := st.db.Exec(`UPDATE cards SET number_nonce = (SELECT number_nonce FROM cards WHERE card_id = ?),
		number_ct = (SELECT number_ct FROM cards WHERE card_id = ?) WHERE card_id = ?`, c2.ID, c2.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Authorize(ctx, request("ord-3", 3, 10_00)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("swapped ciphertext: %v", err)
	}
}

func TestAddCard(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.add(t, visa, alice, "2031-12", 500_00)
	_, err := e.st.AddCard(ctx, NewCard{Number: visa, Cardholder: bob, Expiry: "2032-01", Currency: "EUR", Limit: 1})
	if !errors.Is(err, ErrDuplicateCard) || !strings.Contains(err.Error(), c.ID) {
		t.Fatalf("duplicate: %v", err)
	}
	good := NewCard{Number: master, Cardholder: alice, Expiry: "2031-12", Currency: "EUR", Limit: 1}
	for name, mod := range map[string]func(*NewCard){
		"luhn":           func(n *NewCard) { n.Number = "4111111111111112" },
		"short":          func(n *NewCard) { n.Number = "42" },
		"spaces":         func(n *NewCard) { n.Number = "5555 5555 5555 4444" }, // callers normalize with ParseNumber
		"merchant":       func(n *NewCard) { n.Cardholder = shop },
		"no identity":    func(n *NewCard) { n.Cardholder = "alice" },
		"expiry":         func(n *NewCard) { n.Expiry = "12/31" },
		"month 13":       func(n *NewCard) { n.Expiry = "2031-13" },
		"currency":       func(n *NewCard) { n.Currency = "eur" },
		"zero limit":     func(n *NewCard) { n.Limit = 0 },
		"negative limit": func(n *NewCard) { n.Limit = -5 },
		"huge limit":     func(n *NewCard) { n.Limit = MaxCreditLimit + 1 },
	} {
		n := good
		mod(&n)
		_, err := e.st.AddCard(ctx, n)
		if !errors.Is(err, ErrInvalid) {
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
		to   Status
		want error
	}{
		{StatusSuspended, nil}, {StatusSuspended, nil}, {StatusActive, nil},
		{StatusClosed, nil}, {StatusActive, ErrClosedCard}, {StatusClosed, nil}, {"lost", ErrInvalid},
	} {
		got, err := e.st.SetStatus(ctx, c.ID, step.to)
		if !errors.Is(err, step.want) || (err == nil && got.Status != step.to) {
			t.Fatalf("to %s: %+v %v, want %v", step.to, got, err, step.want)
		}
	}
	for _, id := range []string{"card_aaaaaaaaaaaaaaaaaaaaaaaaaa", visa, ""} {
		if _, err := e.st.SetStatus(ctx, id, StatusActive); !errors.Is(err, ErrNotFound) || strings.Contains(err.Error(), "4111") {
			t.Errorf("SetStatus(%q): %v", id, err)
		}
	}
}

func TestParseNumber(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{visa, visa},
		{"4111 1111 1111 1111\n", visa},
		{"4111-1111-1111-1111", visa},
		{"378282246310005", "378282246310005"},
		{"6011111111111117", "6011111111111117"},
		{"4111111111111112", ""},
		{"411111111111111a", ""},
		{"41111", ""},
		{"41111111111111111111", ""},
		{"", ""},
		{"٤١١١١١١١١١١١١١١١", ""},
	} {
		got, err := ParseNumber(tc.in)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("ParseNumber(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if err != nil && len(tc.in) > 4 && strings.Contains(err.Error(), strings.TrimSpace(tc.in)) {
			t.Errorf("error quotes the input: %v", err)
		}
	}
}

func TestExpired(t *testing.T) {
	for _, tc := range []struct {
		expiry string
		at     time.Time
		want   bool
	}{
		{"2030-06", now, false},
		{"2030-06", time.Date(2030, 6, 30, 23, 59, 59, 0, time.UTC), false},
		{"2030-06", time.Date(2030, 7, 1, 0, 0, 0, 0, time.UTC), true},
		{"2030-05", now, true},
		{"2031-01", now, false},
		{"2029-12", now, true},
		// in UTC: 1 July 01:00 in Berlin is still June in UTC
		{"2030-06", time.Date(2030, 7, 1, 1, 0, 0, 0, time.FixedZone("CEST", 2*3600)), false},
		{"2030-6", now, true},
		{"", now, true},
	} {
		if got := Expired(tc.expiry, tc.at); got != tc.want {
			t.Errorf("Expired(%q, %v) = %v", tc.expiry, tc.at, got)
		}
	}
}

func TestDecide(t *testing.T) {
	active := Card{ID: "card_x", Cardholder: alice, Expiry: "2031-12", Currency: "EUR", Limit: 100_00, Available: 50_00, Status: StatusActive}
	base := request("o", 1, 50_00)
	for _, tc := range []struct {
		name string
		card func(*Card) bool // false: no card
		req  func(*AuthRequest)
		want string
	}{
		{"approve all available", nil, nil, ""},
		{"unknown number", func(*Card) bool { return false }, nil, api.ReasonNotEnrolled},
		{"another cardholder's card", nil, func(r *AuthRequest) { r.Cardholder = bob }, api.ReasonNotEnrolled},
		{"sealed expiry differs", nil, func(r *AuthRequest) { r.Expiry = "2032-12" }, api.ReasonNotEnrolled},
		{"not enrolled beats suspended", func(c *Card) bool { c.Status = StatusSuspended; return true }, func(r *AuthRequest) { r.Cardholder = bob }, api.ReasonNotEnrolled},
		{"suspended", func(c *Card) bool { c.Status = StatusSuspended; return true }, nil, api.ReasonInactive},
		{"closed", func(c *Card) bool { c.Status = StatusClosed; return true }, nil, api.ReasonInactive},
		{"expired", func(c *Card) bool { c.Expiry = "2030-05"; return true }, func(r *AuthRequest) { r.Expiry = "2030-05" }, api.ReasonExpired},
		{"inactive beats expired", func(c *Card) bool { c.Expiry, c.Status = "2030-05", StatusSuspended; return true }, func(r *AuthRequest) { r.Expiry = "2030-05" }, api.ReasonInactive},
		{"expires this month", func(c *Card) bool { c.Expiry = "2030-06"; return true }, func(r *AuthRequest) { r.Expiry = "2030-06" }, ""},
		{"amount above the section's", nil, func(r *AuthRequest) { r.Amount++ }, api.ReasonAmountMismatch},
		{"amount below the section's", nil, func(r *AuthRequest) { r.Amount = 1 }, api.ReasonAmountMismatch},
		{"currency differs from the section's", nil, func(r *AuthRequest) { r.Currency = "USD" }, api.ReasonAmountMismatch},
		{"no total in the section", nil, func(r *AuthRequest) { r.Total = nil }, api.ReasonAmountMismatch},
		{"card in another currency", func(c *Card) bool { c.Currency = "USD"; return true }, nil, api.ReasonCurrency},
		{"one cent too much", nil, func(r *AuthRequest) { r.Amount, r.Total.Amount = 50_01, 50_01 }, api.ReasonInsufficientCredit},
		{"mismatch beats credit", nil, func(r *AuthRequest) { r.Amount = 99_00 }, api.ReasonAmountMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := active
			cp := &c
			if tc.card != nil && !tc.card(cp) {
				cp = nil
			}
			r := base
			total := *base.Total
			r.Total = &total
			if tc.req != nil {
				tc.req(&r)
			}
			if got := Decide(cp, &r, "", now); got != tc.want {
				t.Fatalf("Decide = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestAuthorizeIdempotent: retries of one bundle, sequential or concurrent,
// debit once and all get the first answer; declines are kept too.
func TestAuthorizeIdempotent(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
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
	results := make([]Authorization, n)
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

func TestOrderIDReused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.add(t, visa, alice, "2031-12", 100_00)
	if _, _, err := e.st.Authorize(ctx, request("ord-1", 1, 10_00)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.st.Authorize(ctx, request("ord-1", 9, 10_00)); !errors.Is(err, ErrOrderIDReused) {
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
	for name, mod := range map[string]func(*AuthRequest){
		"merchant":    func(r *AuthRequest) { r.Merchant = alice },
		"order id":    func(r *AuthRequest) { r.OrderID = "" },
		"header hash": func(r *AuthRequest) { r.HeaderHash = [32]byte{} },
		"amount":      func(r *AuthRequest) { r.Amount = 0 },
		"currency":    func(r *AuthRequest) { r.Currency = "Euro" },
	} {
		r := request("ord-x", 7, 10_00)
		mod(&r)
		if _, _, err := e.st.Authorize(ctx, r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := e.st.Authorization(ctx, shop, "ord-x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("invalid request stored: %v", err)
	}
}

func TestVoid(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.add(t, visa, alice, "2031-12", 100_00)
	a, _, err := e.st.Authorize(ctx, request("ord-1", 1, 40_00))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Void(ctx, other, "ord-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another merchant voided: %v", err)
	}
	if _, err := e.st.Void(ctx, shop, "ord-none"); !errors.Is(err, ErrNotFound) {
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

func TestAuthCode(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		code, err := NewAuthCode()
		if err != nil {
			t.Fatal(err)
		}
		if len(code) != 6 || strings.Trim(code, authCodeAlphabet) != "" {
			t.Fatalf("code %q", code)
		}
		seen[code] = true
	}
	if len(seen) < 1990 {
		t.Fatalf("only %d distinct codes of 2000", len(seen))
	}
}

func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{visa, "4111 1111 1111 1111", "4111-1111", "", "x", "0000000000000", "٤"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNumber(s)
		if err != nil {
			if strings.Contains(err.Error(), s) && len(s) > 3 {
				t.Fatalf("error quotes the input: %v", err)
			}
			return
		}
		if len(n) < 12 || len(n) > 19 || strings.Trim(n, "0123456789") != "" || !luhn(n) {
			t.Fatalf("ParseNumber(%q) = %q", s, n)
		}
		if again, err := ParseNumber(n); err != nil || again != n {
			t.Fatalf("not idempotent: %q → %q %v", n, again, err)
		}
	})
}

func FuzzParseExpiry(f *testing.F) {
	for _, s := range []string{"2031-12", "2031-1", "1999-01", "abcd-ef", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		y, m, err := ParseExpiry(s)
		if err != nil {
			return
		}
		if m < 1 || m > 12 || y < 2000 || fmt.Sprintf("%04d-%02d", y, int(m)) != s {
			t.Fatalf("ParseExpiry(%q) = %d %d", s, y, m)
		}
	})
}

// storeWithKey opens a fresh store under a card key file holding text.
func storeWithKey(t *testing.T, text string) *Store {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "card.key")
	if err := os.WriteFile(p, []byte(text+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadCardKey(p)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Open(context.Background(), Config{Path: filepath.Join(dir, "issuer.db"), CardKey: k, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var cvcRe = regexp.MustCompile(`^[0-9]{3}$`)

// TestCVC: the derived CVC matches vectors computed outside Go (testdata),
// is 3 digits, stable, differs across cards, expiries and card keys, and
// needs the card key.
func TestCVC(t *testing.T) {
	data, err := os.ReadFile("testdata/cvc.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Keys    map[string]string
		Vectors []struct{ Key, Number, Expiry, CVC string }
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) == 0 || len(f.Keys) < 2 {
		t.Fatal("no vectors loaded")
	}
	stores := map[string]*Store{}
	for name, text := range f.Keys {
		stores[name] = storeWithKey(t, text)
	}
	type card struct{ number, expiry string }
	byKey := map[string]map[card]string{}
	for _, v := range f.Vectors {
		st := stores[v.Key]
		if st == nil {
			t.Fatalf("vector names an unknown key %q", v.Key)
		}
		got, err := st.CVC(v.Number, v.Expiry)
		if err != nil || got != v.CVC {
			t.Errorf("CVC(%s, %s) under %s = %q, %v; want %q", v.Number, v.Expiry, v.Key, got, err, v.CVC)
		}
		if again, _ := st.CVC(v.Number, v.Expiry); again != got {
			t.Errorf("CVC not stable: %q then %q", got, again)
		}
		if byKey[v.Key] == nil {
			byKey[v.Key] = map[card]string{}
		}
		byKey[v.Key][card{v.Number, v.Expiry}] = got
	}
	k1, k2 := byKey["k1"], byKey["k2"]
	if k1[card{visa, "2031-12"}] == k1[card{visa, "2032-01"}] || k1[card{visa, "2031-12"}] == k1[card{master, "2031-12"}] {
		t.Error("the CVC does not depend on the number or the expiry")
	}
	for c, v := range k1 {
		if k2[c] == v {
			t.Errorf("%v: the same CVC under two card keys", c)
		}
	}

	// Over many cards: always 3 digits, spread over the thousand values.
	st := stores["k1"]
	seen := map[string]bool{}
	for i := range 400 {
		n := withLuhn(fmt.Sprintf("400000%09d", i*7919))
		got, err := st.CVC(n, "2031-12")
		if err != nil || !cvcRe.MatchString(got) {
			t.Fatalf("CVC(%s) = %q, %v", n, got, err)
		}
		seen[got] = true
	}
	if len(seen) < 250 { // about 330 expected for 400 draws from 1000
		t.Fatalf("only %d distinct CVCs over 400 cards", len(seen))
	}

	// It needs the key, a canonical number and an expiry; errors never quote the number.
	keyless := newEnv(t).open(t, nil)
	if _, err := keyless.CVC(visa, "2031-12"); !errors.Is(err, ErrNoCardKey) {
		t.Fatalf("CVC without a card key: %v", err)
	}
	for _, in := range []struct{ number, expiry string }{
		{"4111 1111 1111 1111", "2031-12"}, {"4111111111111112", "2031-12"}, {"", "2031-12"},
		{visa, "12/31"}, {visa, ""}, {visa, "2031-13"},
	} {
		_, err := st.CVC(in.number, in.expiry)
		if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "1111") {
			t.Errorf("CVC(%q, %q): %v", in.number, in.expiry, err)
		}
	}
}

// withLuhn appends the Luhn check digit to digits.
func withLuhn(digits string) string {
	for d := '0'; d <= '9'; d++ {
		if luhn(digits + string(d)) {
			return digits + string(d)
		}
	}
	panic("no check digit")
}

// TestDecideAssisted: a consultant's order needs the card's CVC instead of
// the enrollment binding; everything else is checked as online.
func TestDecideAssisted(t *testing.T) {
	active := Card{ID: "card_x", Cardholder: alice, Expiry: "2031-12", Currency: "EUR", Limit: 100_00, Available: 50_00, Status: StatusActive}
	const cardCVC = "042"
	for _, tc := range []struct {
		name    string
		card    func(*Card) bool // false: no card
		req     func(*AuthRequest)
		cardCVC string // "": cardCVC
		want    string
	}{
		{name: "approve: the card is enrolled to a cardholder, not to the consultant", want: ""},
		{name: "card enrolled to bob", card: func(c *Card) bool { c.Cardholder = bob; return true }, want: ""},
		{name: "no CVC", req: func(r *AuthRequest) { r.CVC = "" }, want: api.ReasonCVCRequired},
		{name: "no CVC beats an unknown card", card: func(*Card) bool { return false }, req: func(r *AuthRequest) { r.CVC = "" }, want: api.ReasonCVCRequired},
		{name: "wrong CVC", req: func(r *AuthRequest) { r.CVC = "043" }, want: api.ReasonCVCMismatch},
		{name: "CVC without its leading zero", req: func(r *AuthRequest) { r.CVC = "42" }, want: api.ReasonCVCMismatch},
		{name: "four digits", req: func(r *AuthRequest) { r.CVC = "0420" }, want: api.ReasonCVCMismatch},
		{name: "no derived CVC to compare with", cardCVC: "-", want: api.ReasonCVCMismatch},
		{name: "unknown card", card: func(*Card) bool { return false }, want: api.ReasonNotEnrolled},
		{name: "sealed expiry differs", req: func(r *AuthRequest) { r.Expiry = "2032-12" }, want: api.ReasonNotEnrolled},
		{name: "wrong CVC beats suspended", card: func(c *Card) bool { c.Status = StatusSuspended; return true }, req: func(r *AuthRequest) { r.CVC = "999" }, want: api.ReasonCVCMismatch},
		{name: "suspended", card: func(c *Card) bool { c.Status = StatusSuspended; return true }, want: api.ReasonInactive},
		{name: "closed", card: func(c *Card) bool { c.Status = StatusClosed; return true }, want: api.ReasonInactive},
		{name: "expired", card: func(c *Card) bool { c.Expiry = "2030-05"; return true }, req: func(r *AuthRequest) { r.Expiry = "2030-05" }, want: api.ReasonExpired},
		{name: "amount differs from the section's", req: func(r *AuthRequest) { r.Amount = 1 }, want: api.ReasonAmountMismatch},
		{name: "card in another currency", card: func(c *Card) bool { c.Currency = "USD"; return true }, want: api.ReasonCurrency},
		{name: "one cent too much", req: func(r *AuthRequest) { r.Amount, r.Total.Amount = 50_01, 50_01 }, want: api.ReasonInsufficientCredit},
		{name: "online ignores the CVC", req: func(r *AuthRequest) { r.Cardholder, r.Session, r.CVC = alice, "", "999" }, want: ""},
		{name: "online without a CVC", req: func(r *AuthRequest) { r.Cardholder, r.Session, r.CVC = alice, "", "" }, want: ""},
		{name: "online keeps the binding", req: func(r *AuthRequest) { r.Cardholder, r.Session = bob, "" }, want: api.ReasonNotEnrolled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := active
			cp := &c
			if tc.card != nil && !tc.card(cp) {
				cp = nil
			}
			r := assistedRequest("o", 1, 50_00, cardCVC)
			total := *r.Total
			r.Total = &total
			if tc.req != nil {
				tc.req(&r)
			}
			want := cmp.Or(tc.cardCVC, cardCVC)
			if want == "-" {
				want = ""
			}
			if got := Decide(cp, &r, want, now); got != tc.want {
				t.Fatalf("Decide = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestAuthorizeAssisted: the record keeps sealer, channel and session; the
// card's derived CVC approves a card enrolled to any cardholder, once; a
// wrong one declines without a debit; sessions go with consultants only.
func TestAuthorizeAssisted(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
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

	for name, r := range map[string]AuthRequest{
		"assisted without a session":  func() AuthRequest { r := assistedRequest("ord-x", 7, 10_00, cvc); r.Session = ""; return r }(),
		"assisted, malformed session": func() AuthRequest { r := assistedRequest("ord-x", 7, 10_00, cvc); r.Session = "ses_1"; return r }(),
		"online with a session":       func() AuthRequest { r := request("ord-x", 7, 10_00); r.Session = session; return r }(),
		"sealer not an identity":      func() AuthRequest { r := request("ord-x", 7, 10_00); r.Cardholder = "alice"; return r }(),
	} {
		if _, _, err := e.st.Authorize(ctx, r); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := e.st.Authorization(ctx, shop, "ord-x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("invalid request stored: %v", err)
	}

	// Listed newest first; by session, only that session's orders.
	all, err := e.st.Authorizations(ctx, "")
	if err != nil || len(all) != 3 || all[0].OrderID != "ord-wrong" || all[1].OrderID != "ord-phone" || all[2].OrderID != "ord-online" {
		t.Fatalf("all: %+v %v", all, err)
	}
	if all[1] != a {
		t.Fatalf("listed %+v, want %+v", all[1], a)
	}
	bySession, err := e.st.Authorizations(ctx, session)
	if err != nil || len(bySession) != 2 || bySession[0].OrderID != "ord-wrong" || bySession[1].OrderID != "ord-phone" {
		t.Fatalf("by session: %+v %v", bySession, err)
	}
	if none, err := e.st.Authorizations(ctx, "ses_zzzzzzzzzzzzzzzzzzzzzzzzzz"); err != nil || len(none) != 0 {
		t.Fatalf("another session: %+v %v", none, err)
	}

	// Wrong codes lock the card for assisted orders, the right one included;
	// online orders go on.
	for i := 2; i <= MaxCVCFailures; i++ {
		dec, _, err := e.st.Authorize(ctx, assistedRequest(fmt.Sprintf("ord-wrong-%d", i), byte(10+i), 10_00, wrong))
		if err != nil || dec.Reason != api.ReasonCVCMismatch {
			t.Fatalf("wrong CVC %d: %+v %v", i, dec, err)
		}
	}
	locked, _, err := e.st.Authorize(ctx, assistedRequest("ord-locked", 20, 10_00, cvc))
	if err != nil || locked.Decision != api.Declined || locked.Reason != api.ReasonCVCLocked {
		t.Fatalf("after %d wrong codes: %+v %v", MaxCVCFailures, locked, err)
	}
	if on, _, err := e.st.Authorize(ctx, request("ord-online-2", 21, 10_00)); err != nil || on.Decision != api.Approved {
		t.Fatalf("online order of a card locked for assisted ones: %+v %v", on, err)
	}
	later, err := Open(ctx, Config{Path: e.db, CardKey: e.key, Now: func() time.Time { return now.Add(CVCLockWindow + time.Minute) }})
	if err != nil {
		t.Fatal(err)
	}
	ok, _, err := later.Authorize(ctx, assistedRequest("ord-after", 22, 10_00, cvc))
	later.Close()
	if err != nil || ok.Decision != api.Approved {
		t.Fatalf("after the lock window: %+v %v", ok, err)
	}
}

// TestMigrationFromV1: a database written before assisted orders opens,
// its records read as online with no sealer or session, and the new
// columns keep a session exactly on assisted records. No column anywhere
// is named for a CVC.
func TestMigrationFromV1(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "issuer.db")
	db, err := sqlitex.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitex.Migrate(ctx, db, migrations[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO authorizations (merchant, order_id, header_hash, card_id, amount, currency, decision, reason, auth_code, decided)
		VALUES (?, 'ord-old', ?, NULL, 100, 'EUR', 'declined', 'card-not-enrolled', '', ?)`, shop, bytes.Repeat([]byte{1}, 32), now.UnixNano()); err != nil {
		t.Fatal(err)
	}
	db.Close()

	k, err := CreateCardKey(filepath.Join(dir, "card.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := Open(ctx, Config{Path: path, CardKey: k, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if v, err := sqlitex.Version(ctx, st.db); err != nil || v != len(migrations) {
		t.Fatalf("version %d %v", v, err)
	}
	old, err := st.Authorization(ctx, shop, "ord-old")
	if err != nil || old.Channel != api.ChannelOnline || old.Session != "" || old.Sealer != "" || old.Reason != api.ReasonNotEnrolled {
		t.Fatalf("old record: %+v %v", old, err)
	}
	for name, row := range map[string][]any{
		"":                           {api.ChannelAssisted, session}, // the statement itself is sound
		"assisted without a session": {api.ChannelAssisted, ""},
		"online with a session":      {api.ChannelOnline, session},
		"unknown channel":            {"fax", ""},
	} {
		if _, err := st.db.Exec(`INSERT INTO authorizations (merchant, order_id, header_hash, sealer, channel, session, amount, currency, decision, reason, auth_code, decided)
			VALUES (?, ?, ?, ?, ?, ?, 100, 'EUR', 'declined', 'x', '', 1)`, shop, "ord-"+name, bytes.Repeat([]byte{2}, 32), carol, row[0], row[1]); (err == nil) != (name == "") {
			t.Errorf("%q: %v", name, err)
		}
	}
	rows, err := st.db.Query(`SELECT m.name, p.name FROM sqlite_schema m, pragma_table_info(m.name) p WHERE m.type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	columns := 0
	for rows.Next() {
		var table, column string
		if err := rows.Scan(&table, &column); err != nil {
			t.Fatal(err)
		}
		columns++
		if strings.Contains(strings.ToLower(column), "cvc") || strings.Contains(strings.ToLower(column), "cvv") {
			t.Errorf("%s.%s: a column for a security code", table, column)
		}
	}
	if columns < 20 {
		t.Fatalf("only %d columns seen", columns)
	}
}
