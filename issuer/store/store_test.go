package store

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderseal/internal/secfile"
	"orderseal/issuer/api"
	"orderseal/order"
	"orderseal/order/cards"
)

// The tests here need no backend: key files, sub-keys, parsing, the
// decision rules and the CVC. The store itself is tested through
// storetest, by each backend.

const (
	alice   = "cardholder:alice@example.org"
	bob     = "cardholder:bob@example.org"
	carol   = "consultant:carol.shop.example"
	shop    = "merchant:shop.example"
	visa    = "4111111111111111"
	master  = "5555555555554444"
	session = "ses_abcdefghijklmnopqrstuvwxyz"
)

// now is the clock in these tests: mid-month, so expiry edges are clear.
var now = time.Date(2030, 6, 15, 12, 0, 0, 0, time.UTC)

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
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "card.key")
	key, err := CreateCardKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CreateCardKey(keyPath); !errors.Is(err, os.ErrExist) {
		t.Fatalf("CreateCardKey overwrote a key: %v", err)
	}
	if st, err := os.Stat(keyPath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	k, err := LoadCardKey(keyPath)
	if err != nil || !k.Equal(key) {
		t.Fatalf("reload: %v", err)
	}
	os.Chmod(keyPath, 0o644)
	if _, err := LoadCardKey(keyPath); !errors.Is(err, secfile.ErrPermissions) {
		t.Fatalf("0644 key loaded: %v", err)
	}
	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("AAAA\n"), 0o600)
	if _, err := LoadCardKey(bad); !errors.Is(err, ErrBadCardKey) {
		t.Fatalf("short key: %v", err)
	}
}

// keyFrom loads a card key file holding text.
func keyFrom(t *testing.T, text string) *CardKey {
	t.Helper()
	p := filepath.Join(t.TempDir(), "card.key")
	if err := os.WriteFile(p, []byte(text+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadCardKey(p)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// subKeys derives fresh sub-keys of a random card key.
func subKeys(t *testing.T) *SubKeys {
	t.Helper()
	k, err := CreateCardKey(filepath.Join(t.TempDir(), "card.key"))
	if err != nil {
		t.Fatal(err)
	}
	ks, err := DeriveSubKeys(k)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

func TestParseNumber(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{visa, visa},
		{"4111 1111 1111 1111\n", visa},
		{"4111-1111-1111-1111", visa},
		{"378282246310005", "378282246310005"},
		{"6011111111111117", "6011111111111117"},
		{"4111111111111112", ""},
		{"9111111111111110", ""}, // no brand's IIN
		{"411111111111116", ""},  // Visa does not issue 15 digits
		{"3566002020360505", "3566002020360505"},
		{"6205 5000 0000 0000 004", "6205500000000000004"},
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
		if _, err := cards.Check(n); err != nil || len(n) < 12 || len(n) > 19 || strings.Trim(n, "0123456789") != "" || !luhn(n) {
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
		{name: "online with a wrong CVC", req: func(r *AuthRequest) { r.Cardholder, r.Session, r.CVC = alice, "", "999" }, want: api.ReasonCVCMismatch},
		{name: "online with the card's CVC", req: func(r *AuthRequest) { r.Cardholder, r.Session, r.CVC = alice, "", cardCVC }, want: ""},
		{name: "online, wrong CVC, card inactive", card: func(c *Card) bool { c.Status = StatusSuspended; return true },
			req: func(r *AuthRequest) { r.Cardholder, r.Session, r.CVC = alice, "", "999" }, want: api.ReasonCVCMismatch},
		{name: "online, wrong CVC, other cardholder's card", req: func(r *AuthRequest) { r.Cardholder, r.Session, r.CVC = bob, "", "999" }, want: api.ReasonNotEnrolled},
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
