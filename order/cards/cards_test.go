package cards

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

type vectors struct {
	Comment string `json:"comment"`
	Valid   []struct {
		Number, Brand, Source string
	} `json:"valid"`
	Invalid []struct {
		Number, Error, Why string
	} `json:"invalid"`
}

func loadVectors(t testing.TB) vectors {
	t.Helper()
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Valid) < 20 || len(v.Invalid) < 10 {
		t.Fatalf("vectors.json: %d valid, %d invalid: too few to prove anything", len(v.Valid), len(v.Invalid))
	}
	return v
}

var sentinels = map[string]error{"luhn": ErrLuhn, "length": ErrLength, "brand": ErrBrand, "digits": ErrDigits}

// TestPublishedTestCards: every network's published test number is
// accepted as its brand; the derived bad numbers are refused for the
// reason the vector names.
func TestPublishedTestCards(t *testing.T) {
	v := loadVectors(t)
	brands := map[string]bool{}
	for _, tc := range v.Valid {
		t.Run(tc.Brand+"/"+tc.Number, func(t *testing.T) {
			b, err := Check(tc.Number)
			if err != nil || b.Name != tc.Brand {
				t.Fatalf("Check(%s) = %v, %v; want %s", tc.Number, b, err, tc.Brand)
			}
			brands[b.Name] = true
		})
	}
	for _, b := range []string{"visa", "mastercard", "amex", "discover", "diners", "jcb", "unionpay"} {
		if !brands[b] {
			t.Errorf("no published test number of %s in vectors.json", b)
		}
	}
	for _, tc := range v.Invalid {
		t.Run("invalid/"+tc.Why, func(t *testing.T) {
			want, ok := sentinels[tc.Error]
			if !ok {
				t.Fatalf("vector names unknown error %q", tc.Error)
			}
			if b, err := Check(tc.Number); !errors.Is(err, want) {
				t.Fatalf("Check(%q) = %v, %v; want %v", tc.Number, b, err, want)
			}
		})
	}
}

func TestLookupLongestRange(t *testing.T) {
	for _, tc := range []struct{ number, brand string }{
		{"6221260000000000", "discover"}, // 622126: Discover inside UnionPay's 62
		{"6229250000000000", "discover"},
		{"6221250000000000", "unionpay"},
		{"6229260000000000", "unionpay"},
		{"2221000000000000", "mastercard"},
		{"2720000000000000", "mastercard"},
		{"5100000000000000", "mastercard"},
		{"5018000000000000", "maestro"},
		{"3528000000000000", "jcb"},
		{"3589000000000000", "jcb"},
		{"3095000000000000", "diners"},
		{"340000000000000", "amex"},
		{"6500000000000000", "discover"},
		{"8100000000000000", "unionpay"},
		{"4", "visa"},
	} {
		t.Run(tc.number, func(t *testing.T) {
			b, err := Lookup(tc.number)
			if err != nil || b.Name != tc.brand {
				t.Fatalf("Lookup(%s) = %v, %v; want %s", tc.number, b, err, tc.brand)
			}
		})
	}
	for _, n := range []string{"2220999999999999", "2721000000000000", "3527000000000000", "3590000000000000", "35", "6", "0000000000000000", "7000000000000000"} {
		if b, err := Lookup(n); !errors.Is(err, ErrBrand) {
			t.Errorf("Lookup(%s) = %v, %v; want ErrBrand", n, b, err)
		}
	}
}

func TestCheckCVC(t *testing.T) {
	for _, tc := range []struct {
		number, cvc string
		err         error
	}{
		{"4111111111111111", "737", nil},
		{"4111111111111111", "7373", ErrCVCLen},
		{"4111111111111111", "73", ErrCVCLen},
		{"5555555555554444", "000", nil},
		{"378282246310005", "7373", nil},
		{"378282246310005", "737", ErrCVCLen}, // Amex prints four digits
		{"371449635398431", "12345", ErrCVCLen},
		{"3530111333300000", "123", nil},
		{"6200000000000005", "123", nil},
		{"4111111111111111", "7a7", ErrCVCForm},
		{"4111111111111111", "", ErrCVCForm},
		{"378282246310005", "٧٣٧٣", ErrCVCForm},
	} {
		t.Run(tc.number+"/"+tc.cvc, func(t *testing.T) {
			b, err := Check(tc.number)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.CheckCVC(tc.cvc); !errors.Is(err, tc.err) {
				t.Fatalf("CheckCVC(%q) on %s = %v; want %v", tc.cvc, b.Name, err, tc.err)
			}
			if err := b.CheckCVC(tc.cvc); err != nil && strings.Contains(err.Error(), tc.cvc) && tc.cvc != "" {
				t.Fatalf("error quotes the code: %v", err)
			}
		})
	}
}

// TestTable keeps the table sane: names unique, ranges of one width each
// with Lo ≤ Hi, lengths ascending within 12..MaxLen, codes 3 or 4 digits.
func TestTable(t *testing.T) {
	seen := map[string]bool{}
	for _, b := range Brands {
		if seen[b.Name] || b.Name == "" || b.Display == "" {
			t.Errorf("brand %q: duplicate or unnamed", b.Name)
		}
		seen[b.Name] = true
		for _, r := range b.Ranges {
			if r.Lo > r.Hi || r.Digits < 1 || r.Digits > 6 || len(itoa(r.Lo)) != r.Digits || len(itoa(r.Hi)) != r.Digits {
				t.Errorf("%s: range %+v", b.Name, r)
			}
		}
		for i, l := range b.Lengths {
			if l < 12 || l > MaxLen || i > 0 && l <= b.Lengths[i-1] {
				t.Errorf("%s: lengths %v", b.Name, b.Lengths)
			}
		}
		if b.CVCLen != 3 && b.CVCLen != 4 || (b.Name == "amex") != (b.CVCLen == 4) {
			t.Errorf("%s: CVC length %d", b.Name, b.CVCLen)
		}
	}
}

func itoa(n int) string {
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

func TestLuhn(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"79927398713", true}, {"79927398710", false}, {"0", false}, {"00", true}, {"18", true},
		{"", false}, {"4111111111111111", true}, {"4111111111111112", false}, {"12a", false},
	} {
		if got := Luhn(tc.in); got != tc.ok {
			t.Errorf("Luhn(%q) = %v; want %v", tc.in, got, tc.ok)
		}
	}
}

// FuzzCheck: Check never panics, accepts only what its parts accept, and
// whatever it accepts keeps being accepted (brand, length and Luhn hold).
func FuzzCheck(f *testing.F) {
	v := loadVectors(f)
	for _, tc := range v.Valid {
		f.Add(tc.Number, "123")
	}
	for _, tc := range v.Invalid {
		f.Add(tc.Number, "1234")
	}
	f.Fuzz(func(t *testing.T, number, cvc string) {
		b, err := Check(number)
		if err != nil {
			if b != nil {
				t.Fatalf("Check(%q): brand %s with error %v", number, b.Name, err)
			}
			if len(number) >= 6 && strings.Contains(err.Error(), number) { // shorter strings can be words of the message
				t.Fatalf("error quotes the number: %v", err)
			}
			return
		}
		if !Luhn(number) || !b.issues(len(number)) {
			t.Fatalf("Check(%q) accepted %s", number, b.Name)
		}
		if lb, err := Lookup(number); err != nil || lb != b {
			t.Fatalf("Lookup(%q) = %v, %v; Check said %s", number, lb, err, b.Name)
		}
		if err := b.CheckCVC(cvc); err == nil && (len(cvc) != b.CVCLen || !digits(cvc)) {
			t.Fatalf("CheckCVC(%q) accepted for %s", cvc, b.Name)
		}
	})
}
