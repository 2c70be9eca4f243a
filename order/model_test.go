package order

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"

	"orderseal/internal/strictjson"
	"orderseal/order/money"
)

// fixedNow keeps expiry tests independent of the wall clock.
var fixedNow = time.Date(2026, time.June, 15, 12, 0, 0, 0, time.UTC)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func exampleOrder(t testing.TB, name string) *Order {
	t.Helper()
	o, err := ParseOrder(readTestdata(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return o
}

func TestExampleOrdersValid(t *testing.T) {
	for _, name := range []string{"order.json", "order_token.json"} {
		t.Run(name, func(t *testing.T) {
			o := exampleOrder(t, name)
			if err := o.Validate(fixedNow); err != nil {
				t.Fatalf("fixed now: %v", err)
			}
			if err := o.Validate(time.Now()); err != nil {
				t.Fatalf("wall clock (has the example card expired?): %v", err)
			}
		})
	}
}

func TestExampleOrderContents(t *testing.T) {
	o := exampleOrder(t, "order.json")
	if o.Card.Number != "4111111111111111" || o.Card.Expiry != "2031-12" || o.Currency != "EUR" ||
		len(o.Items) != 2 || o.ShipTo.Address == nil || o.ShipTo.Address.Country != "DE" || o.ShipTo.Token != "" {
		t.Fatalf("order.json is not the documented example: %+v", o)
	}
	tok := exampleOrder(t, "order_token.json")
	if tok.ShipTo.Token == "" || tok.ShipTo.Address != nil {
		t.Fatalf("order_token.json should ship to a token only: %+v", tok.ShipTo)
	}
}

// TestValidateAccepts covers edge cases that must pass.
func TestValidateAccepts(t *testing.T) {
	cases := []struct {
		name string
		mut  func(*Order)
	}{
		{"expires this month", func(o *Order) { o.Card.Expiry = "2026-06" }},
		{"no cvc", func(o *Order) { o.Card.CVC = "" }},
		{"amex four digit cvc", func(o *Order) { o.Card.Number, o.Card.CVC = "378282246310005", "1234" }},
		{"amex no cvc", func(o *Order) { o.Card.Number, o.Card.CVC = "371449635398431", "" }},
		{"12 digit maestro", func(o *Order) { o.Card.Number = "501800000009" }},
		{"unionpay 19 digits", func(o *Order) { o.Card.Number = "6205500000000000004" }},
		{"yen", func(o *Order) { o.Currency = "JPY" }},
		{"won", func(o *Order) { o.Currency = "KRW" }},
		{"bahraini dinar", func(o *Order) { o.Currency = "BHD" }},
		{"19 digit card", func(o *Order) { o.Card.Number = "4111111111111111110" }},
		{"free item", func(o *Order) { o.Items = append(o.Items, Item{SKU: "gift-wrap", Name: "Gift wrap", Qty: 1}) }},
		{"100 items", func(o *Order) {
			o.Items = nil
			for range 100 {
				o.Items = append(o.Items, Item{SKU: "x", Name: "x", Qty: 1, UnitPrice: 1})
			}
			o.Total = 100
		}},
		{"max qty and price", func(o *Order) {
			o.Items = []Item{{SKU: "x", Name: "x", Qty: 10000, UnitPrice: 1_000_000_000_000}}
			o.Total = 10_000_000_000_000_000
		}},
		{"60 installments", func(o *Order) { o.Plan.Installments = 60 }},
		{"no gift note", func(o *Order) { o.GiftNote = "" }},
		{"500 char gift note", func(o *Order) { o.GiftNote = strings.Repeat("é", 500) }},
		{"200 char name", func(o *Order) { o.Buyer.Name = strings.Repeat("ß", 200) }},
		{"no line2, region, postal code", func(o *Order) {
			o.ShipTo.Address.Line2, o.ShipTo.Address.Region, o.ShipTo.Address.PostalCode = "", "", ""
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := exampleOrder(t, "order.json")
			c.mut(o)
			if err := o.Validate(fixedNow); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// invalidOrders are mutations of testdata/order.json that Validate must refuse.
var invalidOrders = []struct {
	name  string
	field string // the field the error must name
	mut   func(*Order)
}{
	{"bad luhn", "card.number", func(o *Order) { o.Card.Number = "4111111111111112" }},
	{"non-digit card", "card.number", func(o *Order) { o.Card.Number = "4111-1111-1111-1111" }},
	{"card with spaces", "card.number", func(o *Order) { o.Card.Number = "4111 1111 1111 1111" }},
	{"short card", "card.number", func(o *Order) { o.Card.Number = "42" }},
	{"long card", "card.number", func(o *Order) { o.Card.Number = "41111111111111111111" }},
	{"no card", "card.number", func(o *Order) { o.Card.Number = "" }},
	{"expired card", "card.expiry", func(o *Order) { o.Card.Expiry = "2026-05" }},
	{"long expired card", "card.expiry", func(o *Order) { o.Card.Expiry = "1999-12" }},
	{"month 13", "card.expiry", func(o *Order) { o.Card.Expiry = "2031-13" }},
	{"month 00", "card.expiry", func(o *Order) { o.Card.Expiry = "2031-00" }},
	{"expiry MM/YY", "card.expiry", func(o *Order) { o.Card.Expiry = "12/31" }},
	{"expiry slash", "card.expiry", func(o *Order) { o.Card.Expiry = "2031/12" }},
	{"expiry with day", "card.expiry", func(o *Order) { o.Card.Expiry = "2031-12-01" }},
	{"expiry sign", "card.expiry", func(o *Order) { o.Card.Expiry = "+031-12" }},
	{"no expiry", "card.expiry", func(o *Order) { o.Card.Expiry = "" }},
	{"cvc letters", "card.cvc", func(o *Order) { o.Card.CVC = "12a" }},
	{"cvc too long", "card.cvc", func(o *Order) { o.Card.CVC = "12345" }},
	{"amex three digit cvc", "card.cvc", func(o *Order) { o.Card.Number, o.Card.CVC = "378282246310005", "737" }},
	{"visa four digit cvc", "card.cvc", func(o *Order) { o.Card.CVC = "1234" }},
	{"no brand", "card.number", func(o *Order) { o.Card.Number = "123456789007" }},
	{"visa 15 digits", "card.number", func(o *Order) { o.Card.Number = "411111111111116" }},
	{"mastercard 19 digits", "card.number", func(o *Order) { o.Card.Number = "5555555555554444000" }},
	{"currency XYZ", "currency", func(o *Order) { o.Currency = "XYZ" }},
	{"currency fund unit", "currency", func(o *Order) { o.Currency = "CLF" }},
	{"currency test code", "currency", func(o *Order) { o.Currency = "XTS" }},
	{"currency EURO", "currency", func(o *Order) { o.Currency = "EURO" }},
	{"currency lowercase", "currency", func(o *Order) { o.Currency = "eur" }},
	{"no currency", "currency", func(o *Order) { o.Currency = "" }},
	{"buyer phone without plus", "buyer.phone", func(o *Order) { o.Buyer.Phone = "4915112345678" }},
	{"buyer phone local", "buyer.phone", func(o *Order) { o.Buyer.Phone = "0151 12345678" }},
	{"recipient phone too long", "recipient.phone", func(o *Order) { o.Recipient.Phone = "+491511234567890123" }},
	{"bad email", "buyer.email", func(o *Order) { o.Buyer.Email = "alice.example.org" }},
	{"no buyer name", "buyer.name", func(o *Order) { o.Buyer.Name = "" }},
	{"blank buyer name", "buyer.name", func(o *Order) { o.Buyer.Name = "   " }},
	{"buyer name newline", "buyer.name", func(o *Order) { o.Buyer.Name = "Alice\nExample" }},
	{"201 char name", "recipient.name", func(o *Order) { o.Recipient.Name = strings.Repeat("a", 201) }},
	{"bad country", "ship_to.address.country", func(o *Order) { o.ShipTo.Address.Country = "XX" }},
	{"lowercase country", "ship_to.address.country", func(o *Order) { o.ShipTo.Address.Country = "de" }},
	{"alpha-3 country", "ship_to.address.country", func(o *Order) { o.ShipTo.Address.Country = "DEU" }},
	{"long address line", "ship_to.address.line1", func(o *Order) { o.ShipTo.Address.Line1 = strings.Repeat("a", 201) }},
	{"long postal code", "ship_to.address.postal_code", func(o *Order) { o.ShipTo.Address.PostalCode = strings.Repeat("1", 21) }},
	{"no city", "ship_to.address.city", func(o *Order) { o.ShipTo.Address.City = "" }},
	{"total mismatch", "total", func(o *Order) { o.Total++ }},
	{"total zero", "total", func(o *Order) {
		o.Items = []Item{{SKU: "x", Name: "x", Qty: 1, UnitPrice: 0}}
		o.Total = 0
	}},
	{"negative total", "total", func(o *Order) { o.Total = -1 }},
	{"overflow qty×price", "items[0].unit_price", func(o *Order) {
		o.Items = []Item{{SKU: "x", Name: "x", Qty: 10000, UnitPrice: math.MaxInt64 / 2}}
		o.Total = math.MaxInt64
	}},
	{"zero items", "items", func(o *Order) { o.Items = []Item{} }},
	{"nil items", "items", func(o *Order) { o.Items = nil }},
	{"101 items", "items", func(o *Order) {
		o.Items = nil
		for range 101 {
			o.Items = append(o.Items, Item{SKU: "x", Name: "x", Qty: 1, UnitPrice: 1})
		}
		o.Total = 101
	}},
	{"qty 0", "items[1].qty", func(o *Order) { o.Items[1].Qty = 0 }},
	{"qty 10001", "items[0].qty", func(o *Order) { o.Items[0].Qty = 10001 }},
	{"negative price", "items[0].unit_price", func(o *Order) { o.Items[0].UnitPrice = -1 }},
	{"price over 10^12", "items[0].unit_price", func(o *Order) { o.Items[0].UnitPrice = 1_000_000_000_001 }},
	{"bad sku", "items[0].sku", func(o *Order) { o.Items[0].SKU = "BOOK 1984" }},
	{"long sku", "items[0].sku", func(o *Order) { o.Items[0].SKU = strings.Repeat("a", 65) }},
	{"no item name", "items[1].name", func(o *Order) { o.Items[1].Name = "" }},
	{"installments 0", "plan.installments", func(o *Order) { o.Plan.Installments = 0 }},
	{"installments 61", "plan.installments", func(o *Order) { o.Plan.Installments = 61 }},
	{"both token and address", "ship_to", func(o *Order) { o.ShipTo.Token = "tok_abc_adr" }},
	{"neither token nor address", "ship_to", func(o *Order) { o.ShipTo.Address = nil }},
	{"bad token", "ship_to.token", func(o *Order) { o.ShipTo.Address, o.ShipTo.Token = nil, "tok/../adr" }},
	{"long token", "ship_to.token", func(o *Order) { o.ShipTo.Address, o.ShipTo.Token = nil, strings.Repeat("t", 129) }},
	{"long gift note", "gift_note", func(o *Order) { o.GiftNote = strings.Repeat("a", 501) }},
	{"gift note escape", "gift_note", func(o *Order) { o.GiftNote = "hi \x1b[2J" }},
}

func TestValidateRefuses(t *testing.T) {
	for _, c := range invalidOrders {
		t.Run(c.name, func(t *testing.T) {
			o := exampleOrder(t, "order.json")
			c.mut(o)
			err := o.Validate(fixedNow)
			if !errors.Is(err, ErrInvalidOrder) {
				t.Fatalf("want ErrInvalidOrder, got %v", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("error %q should name field %q", err, c.field)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "order: "+c.field+": ") || strings.Contains(msg, "\n") {
				t.Fatalf("not a one-line message naming %s: %q", c.field, msg)
			}
		})
	}
}

// TestValidationErrorsNameNoValues checks that no message repeats a
// sensitive value of the order that produced it.
func TestValidationErrorsNameNoValues(t *testing.T) {
	for _, c := range invalidOrders {
		t.Run(c.name, func(t *testing.T) {
			o := exampleOrder(t, "order.json")
			c.mut(o)
			err := o.Validate(fixedNow)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			secrets := []string{o.Card.Number, o.Card.CVC, o.Card.Expiry, o.Buyer.Phone, o.Buyer.Email, o.Recipient.Phone}
			if a := o.ShipTo.Address; a != nil {
				secrets = append(secrets, a.Name, a.Line1, a.Line2, a.City, a.PostalCode)
			}
			for _, s := range secrets {
				// Values of one or two characters ("", "de") cannot be told from prose.
				if len(s) >= 3 && strings.Contains(msg, s) {
					t.Fatalf("message %q contains the value %q", msg, s)
				}
			}
		})
	}
}

func TestParseOrderRefusesMalformed(t *testing.T) {
	good := readTestdata(t, "order.json")
	cases := []struct {
		name string
		in   []byte
	}{
		{"unknown field", bytes.Replace(good, []byte(`"currency"`), []byte(`"pin": "1234", "currency"`), 1)},
		{"unknown nested field", bytes.Replace(good, []byte(`"cvc"`), []byte(`"pin": "1234", "cvc"`), 1)},
		{"duplicate key", bytes.Replace(good, []byte(`"currency"`), []byte(`"total": 1, "currency"`), 1)},
		{"duplicate nested key", bytes.Replace(good, []byte(`"cvc"`), []byte(`"number": "4111111111111111", "cvc"`), 1)},
		{"oversize", append(bytes.Clone(good), bytes.Repeat([]byte(" "), MaxOrderSize)...)},
		{"trailing data", append(bytes.Clone(good), []byte(`{}`)...)},
		{"float total", bytes.Replace(good, []byte(`"total": 3448`), []byte(`"total": 34.48`), 1)},
		{"string qty", bytes.Replace(good, []byte(`"qty": 2`), []byte(`"qty": "2"`), 1)},
		{"not an object", []byte(`[]`)},
		{"empty", nil},
		{"truncated", good[:len(good)/2]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if bytes.Equal(c.in, good) {
				t.Fatal("mutation did not apply")
			}
			_, err := ParseOrder(c.in)
			if !errors.Is(err, strictjson.ErrMalformed) || !errors.Is(err, ErrInvalidOrder) {
				t.Fatalf("want ErrMalformed and ErrInvalidOrder, got %v", err)
			}
			if strings.Contains(err.Error(), "4111111111111111") {
				t.Fatalf("message contains the card number: %v", err)
			}
		})
	}
}

func TestItemsTotalOverflow(t *testing.T) {
	cases := []struct {
		name  string
		items []Item
		sum   int64
		ok    bool
	}{
		{"empty", nil, 0, true},
		{"plain", []Item{{Qty: 2, UnitPrice: 1299}, {Qty: 1, UnitPrice: 850}}, 3448, true},
		{"max product", []Item{{Qty: 1, UnitPrice: math.MaxInt64}}, math.MaxInt64, true},
		{"product overflows", []Item{{Qty: 2, UnitPrice: math.MaxInt64/2 + 1}}, 0, false},
		{"product overflows 128 bits", []Item{{Qty: math.MaxInt64, UnitPrice: math.MaxInt64}}, 0, false},
		{"sum overflows", []Item{{Qty: 1, UnitPrice: math.MaxInt64}, {Qty: 1, UnitPrice: 1}}, 0, false},
		{"negative qty", []Item{{Qty: -1, UnitPrice: 5}}, 0, false},
		{"negative price", []Item{{Qty: 1, UnitPrice: -5}}, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sum, ok := itemsTotal(c.items)
			if ok != c.ok || (ok && sum != c.sum) {
				t.Fatalf("itemsTotal = %d, %v; want %d, %v", sum, ok, c.sum, c.ok)
			}
		})
	}
}

// The regular expressions and loops the text checks were first written
// with; the hand-written checks must agree with them on every input.
var (
	codeRefs = map[int]*regexp.Regexp{
		64:  regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`),
		128: regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`),
	}
	lineRef = func(s string) bool {
		if !utf8.ValidString(s) || strings.TrimSpace(s) == "" {
			return false
		}
		for _, r := range s {
			if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
				return false
			}
		}
		return true
	}
	noteRef = func(s string) bool {
		if !utf8.ValidString(s) {
			return false
		}
		for _, r := range s {
			if unicode.IsControl(r) && r != '\n' && r != '\t' {
				return false
			}
		}
		return true
	}
)

// textSeeds are edge cases of the text checks: blanks, controls, separators,
// invalid and surrogate UTF-8, and the length limits of isCode.
var textSeeds = []string{
	"", " ", "   ", "a", " a ", "\t", "a\tb", "a\nb", "a\rb", "\x00", "\x1f", "\x7f", "\u0085", "a\u0085",
	"\u009f", "\u00a0", "\u00a0a", "\u2028", "a\u2029", "\u3000", "\u3000x", "\ufeff", "\ufffd",
	"\xff", "a\xc3", "\xed\xa0\x80", "é", "Musterstraße 12", "BOOK-1984.pb", "mug_blue-350", "BOOK 1984",
	"tok/../adr", "a+b", strings.Repeat("a", 64), strings.Repeat("a", 65), strings.Repeat("t", 128),
	strings.Repeat("t", 129), strings.Repeat("é", 40),
}

func FuzzTextChecks(f *testing.F) {
	for _, s := range textSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for max, re := range codeRefs {
			if got, want := isCode(s, max), re.MatchString(s); got != want {
				t.Errorf("isCode(%q, %d) = %v, want %v", s, max, got, want)
			}
		}
		if got, want := isLine(s), lineRef(s); got != want {
			t.Errorf("isLine(%q) = %v, want %v", s, got, want)
		}
		if got, want := isNote(s), noteRef(s); got != want {
			t.Errorf("isNote(%q) = %v, want %v", s, got, want)
		}
	})
}

// FuzzBakedInTags: the tags newValidator replaces give the verdicts of the
// validator's own functions, for strings and for integers.
func FuzzBakedInTags(f *testing.F) {
	for _, s := range []string{"", "0", "00", "18", "4111111111111111", "4111111111111112", "+4915112345678",
		"4915112345678", "+0151123456", "+1234567", "+12345678", "+123456789012345", "+1234567890123456",
		"++12345678", "+", "12a", "٣٤", "-12", "1 2", "4111-1111-1111-1111", "\xff12",
		"alice@example.org", "a@b.c", "a.b+c_d-e@x-y.z.co", "-a+@b.cd", "a@-b.cd", "a@b-.cd", "a@b.c1", "a@b..cd",
		"a..b@c.de", ".a@b.cd", "a.@b.cd", "a@b.cd.", "a@bcd", "A@B.CD", "a@1.cd", "a@b.c-d", "a@b@c.de",
		"Alice <a@b.cd>", "a@b.cd (Alice)", " a@b.cd", "a@[1.2.3.4]", "\"a b\"@c.de", "é@b.cd", "a@b.ü"} {
		f.Add(s, int64(len(s))*1234567)
	}
	plain := validator.New()
	f.Fuzz(func(t *testing.T, s string, n int64) {
		for _, tag := range []string{"email", "e164", "number", "luhn_checksum"} {
			for _, v := range []any{s, n, uint64(n), -n} {
				want := plain.Var(v, tag) == nil
				if got := validate().Var(v, tag) == nil; got != want {
					t.Errorf("%s on %T %v: %v, want %v", tag, v, v, got, want)
				}
			}
		}
	})
}

// TestPlainEmail: the shapes isEmail answers itself, and some it leaves to
// the stock check (FuzzBakedInTags compares the verdicts).
func TestPlainEmail(t *testing.T) {
	cases := []struct {
		in    string
		plain bool
	}{
		{"alice@example.org", true},
		{"a.b+c_d-e@x-y.z.co", true},
		{"A@B.CD", true},
		{"a@b.c", true},
		{"a@1.cd", true},
		{"a@b.c1", false},
		{"a@bcd", false},
		{"a@-b.cd", false},
		{"a@b-.cd", false},
		{"a..b@c.de", false},
		{"a@b.cd.", false},
		{"a!b@c.de", false},
		{"Alice <a@b.cd>", false},
	}
	for _, c := range cases {
		if got := isPlainEmail(c.in); got != c.plain {
			t.Errorf("isPlainEmail(%q) = %v, want %v", c.in, got, c.plain)
		}
	}
}

func TestValidateNil(t *testing.T) {
	var o *Order
	if err := o.Validate(fixedNow); !errors.Is(err, ErrInvalidOrder) {
		t.Fatalf("nil order: %v", err)
	}
}

// leakPattern matches what a leaked email, phone or card number would look
// like; fixed reasons contain no '@', no '+' and no long digit runs.
var leakPattern = regexp.MustCompile(`[@+]|[0-9]{14}`)

func seedFiles(f *testing.F, pattern string) {
	f.Helper()
	names, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	if len(names) == 0 {
		f.Fatalf("no seed files match testdata/%s", pattern)
	}
}

func FuzzParseOrder(f *testing.F) {
	seedFiles(f, "order*.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseOrder(data)
		if err != nil {
			if !errors.Is(err, strictjson.ErrMalformed) || !errors.Is(err, ErrInvalidOrder) {
				t.Fatalf("parse error wraps neither sentinel: %v", err)
			}
			return
		}
		err = o.Validate(fixedNow)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) || !errors.Is(err, ErrInvalidOrder) {
				t.Fatalf("validation error of type %T: %v", err, err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || leakPattern.MatchString(msg) {
				t.Fatalf("message may leak a value: %q", msg)
			}
			return
		}
		// A valid order survives a round trip unchanged.
		again, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) > MaxOrderSize {
			return // HTML escaping can grow a valid order past the limit
		}
		o2, err := ParseOrder(again)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if err := o2.Validate(fixedNow); err != nil {
			t.Fatalf("re-validate: %v", err)
		}
		again2, _ := json.Marshal(o2)
		if !bytes.Equal(again, again2) {
			t.Fatalf("round trip changed the order:\n%s\n%s", again, again2)
		}
	})
}

// TestCurrencyRefusedAtComposition: an unknown or unsupported currency is
// refused before sealing, in the words of package money that the issuer
// and the merchant use for it too.
func TestCurrencyRefusedAtComposition(t *testing.T) {
	for _, code := range []string{"XYZ", "XTS", "CLF", "eur", "EURO", "€"} {
		t.Run(code, func(t *testing.T) {
			o := exampleOrder(t, "order.json")
			o.Currency = code
			err := o.Validate(fixedNow)
			if want := "order: currency: " + money.ErrUnsupported.Error(); err == nil || err.Error() != want {
				t.Fatalf("Validate with currency %q: %v; want %q", code, err, want)
			}
		})
	}
}

// TestCVCLengthByBrand: the security code's length is the brand's (four
// digits on American Express, three on the others), refused at composition.
func TestCVCLengthByBrand(t *testing.T) {
	for _, tc := range []struct {
		number, cvc string
		ok          bool
	}{
		{"378282246310005", "737", false},
		{"378282246310005", "7373", true},
		{"371449635398431", "12", false},
		{"4111111111111111", "737", true},
		{"4111111111111111", "7373", false},
		{"5555555555554444", "123", true},
		{"3530111333300000", "1234", false},
		{"6200000000000005", "123", true},
	} {
		t.Run(tc.number+"/"+tc.cvc, func(t *testing.T) {
			o := exampleOrder(t, "order.json")
			o.Card.Number, o.Card.CVC = tc.number, tc.cvc
			err := o.Validate(fixedNow)
			var fe *FieldError
			switch {
			case tc.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !tc.ok && (!errors.As(err, &fe) || fe.Field != "card.cvc"):
				t.Fatalf("want a card.cvc refusal, got %v", err)
			}
		})
	}
}

// TestNoValidateFn: no validate tag of a type the order checks uses the
// validator's validateFn, which the checkout's sealing program is built
// without (merchant/checkout.BuildFlags: the tag validator_novalidatefn
// turns validateFn into a panic so that the linker can drop reflect's
// MethodByName). It walks every struct type reachable from Order.
func TestNoValidateFn(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(ty reflect.Type, path string) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Array || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] {
			return
		}
		seen[ty] = true
		for f := range ty.Fields() {
			if tag := f.Tag.Get("validate"); strings.Contains(tag, "validateFn") {
				t.Errorf("%s.%s: validate tag %q uses validateFn", path, f.Name, tag)
			}
			walk(f.Type, path+"."+f.Name)
		}
	}
	walk(reflect.TypeFor[Order](), "Order")
	walk(reflect.TypeFor[Address](), "Address")
	if len(seen) < 5 {
		t.Fatalf("walked only %d struct types from Order", len(seen))
	}
}
