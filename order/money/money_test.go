package money

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bojanz/currency"

	"orderseal/order/money/iso4217"
)

// TestISO4217Table holds package iso4217's generated table to the library
// it was generated from: the same codes, each with the same minor unit (go
// generate ./order/money/iso4217 after an upgrade).
func TestISO4217Table(t *testing.T) {
	codes := currency.GetCurrencyCodes()
	if len(codes) < 150 {
		t.Fatalf("the library lists %d codes", len(codes))
	}
	listed := 0
	for _, c := range codes {
		want, _ := currency.GetDigits(c)
		got, ok := iso4217.Listed(c)
		if !ok || got != int(want) {
			t.Errorf("iso4217.Listed(%q) = %d, %v; the library says %d", c, got, ok, want)
		}
		listed++
	}
	var all int
	for c := 'A'; c <= 'Z'; c++ {
		for d := 'A'; d <= 'Z'; d++ {
			for e := 'A'; e <= 'Z'; e++ {
				code := string([]rune{c, d, e})
				if _, ok := iso4217.Listed(code); ok {
					all++
					if _, lib := currency.GetDigits(code); !lib {
						t.Errorf("iso4217 lists %s, the library does not", code)
					}
				}
			}
		}
	}
	if all != listed {
		t.Errorf("iso4217 lists %d codes, the library %d", all, listed)
	}
}

func TestDigits(t *testing.T) {
	for _, tc := range []struct {
		code   string
		digits int
		err    error
	}{
		{"JPY", 0, nil}, {"KRW", 0, nil}, {"CLP", 0, nil}, {"ISK", 0, nil}, {"XOF", 0, nil},
		{"EUR", 2, nil}, {"USD", 2, nil}, {"GBP", 2, nil}, {"XCD", 2, nil},
		{"BHD", 3, nil}, {"KWD", 3, nil}, {"JOD", 3, nil}, {"OMR", 3, nil}, {"TND", 3, nil},
		{"XYZ", 0, ErrUnsupported}, // not ISO 4217
		{"eur", 0, ErrUnsupported}, // lower case
		{"Eur", 0, ErrUnsupported},
		{"EURO", 0, ErrUnsupported},
		{"EU", 0, ErrUnsupported},
		{"", 0, ErrUnsupported},
		{"XAU", 0, ErrUnsupported}, // gold
		{"XTS", 0, ErrUnsupported}, // testing code
		{"XXX", 0, ErrUnsupported}, // no currency
		{"CLF", 0, ErrUnsupported}, // fund unit, 4 decimals
		{"USN", 0, ErrUnsupported}, // next-day dollars
		{"UYW", 0, ErrUnsupported},
		{"E\x00R", 0, ErrUnsupported},
	} {
		t.Run(strconv.Quote(tc.code), func(t *testing.T) {
			d, err := Digits(tc.code)
			if !errors.Is(err, tc.err) || d != tc.digits {
				t.Fatalf("Digits(%q) = %d, %v; want %d, %v", tc.code, d, err, tc.digits, tc.err)
			}
			if got := Check(tc.code); !errors.Is(got, tc.err) {
				t.Fatalf("Check(%q) = %v; want %v", tc.code, got, tc.err)
			}
		})
	}
}

func TestCodes(t *testing.T) {
	codes := Codes()
	for _, want := range []string{"BHD", "EUR", "JPY", "KRW", "USD"} {
		if !slices.Contains(codes, want) {
			t.Errorf("Codes() lacks %s", want)
		}
	}
	for _, c := range codes {
		if d, err := Digits(c); err != nil || d > MaxDigits {
			t.Errorf("Codes() lists %s (%d, %v)", c, d, err)
		}
	}
	if !slices.IsSorted(codes) || len(codes) < 150 {
		t.Errorf("Codes(): %d codes, sorted %v", len(codes), slices.IsSorted(codes))
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		minor  int64
		code   string
		locale string
		want   string
	}{
		{50000, "EUR", "", "500.00 EUR"},
		{3448, "EUR", "", "34.48 EUR"},
		{1299, "EUR", "", "12.99 EUR"},
		{5, "EUR", "", "0.05 EUR"},
		{-500, "EUR", "", "-5.00 EUR"},
		{129900, "JPY", "", "129,900 JPY"},
		{1500, "KRW", "", "1,500 KRW"},
		{1500, "BHD", "", "1.500 BHD"},
		{1234567, "BHD", "", "1,234.567 BHD"},
		{math.MaxInt64, "EUR", "", "92,233,720,368,547,758.07 EUR"},
		{1299, "XYZ", "", "1299 XYZ"}, // unsupported: raw, nothing hidden
		{129999, "EUR", "de-DE", "1.299,99\u00a0€"},
		{129999, "EUR", "de_DE.UTF-8", "1.299,99\u00a0€"},
		{129999, "EUR", "en", "€1,299.99"},
		{129900, "JPY", "ja", "￥129,900"},
		{1500, "BHD", "fr", "1,500\u00a0BHD"},
		{1299, "EUR", "C", "12.99 EUR"},
		{1299, "EUR", "POSIX", "12.99 EUR"},
		{1299, "XYZ", "de", "1299 XYZ"},
	} {
		t.Run(tc.code+"/"+tc.locale+"/"+strconv.FormatInt(tc.minor, 10), func(t *testing.T) {
			got := FormatLocale(tc.minor, tc.code, tc.locale)
			if got != tc.want {
				t.Fatalf("FormatLocale(%d, %s, %q) = %q; want %q", tc.minor, tc.code, tc.locale, got, tc.want)
			}
			if tc.locale == "" && Format(tc.minor, tc.code) != tc.want {
				t.Fatalf("Format(%d, %s) = %q; want %q", tc.minor, tc.code, Format(tc.minor, tc.code), tc.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, code string
		want     int64
		err      error
	}{
		{"12.90", "EUR", 1290, nil},
		{"12.9", "EUR", 1290, nil},
		{"12", "EUR", 1200, nil},
		{"0.05", "EUR", 5, nil},
		{"0", "EUR", 0, nil},
		{"1299", "JPY", 1299, nil},
		{"1.500", "BHD", 1500, nil},
		{"1.5", "BHD", 1500, nil},
		{"92233720368547758.07", "EUR", math.MaxInt64, nil},
		{"12.905", "EUR", 0, ErrMinorUnits},
		{"1299.0", "JPY", 0, ErrMinorUnits},
		{"1299.00", "KRW", 0, ErrMinorUnits},
		{"1.5000", "BHD", 0, ErrMinorUnits},
		{"12.90", "XYZ", 0, ErrUnsupported},
		{"12.90", "eur", 0, ErrUnsupported},
		{"92233720368547758.08", "EUR", 0, ErrAmount},
		{"9223372036854775808", "JPY", 0, ErrAmount},
		{"", "EUR", 0, ErrAmount},
		{".5", "EUR", 0, ErrAmount},
		{"5.", "EUR", 0, ErrAmount},
		{"-5", "EUR", 0, ErrAmount},
		{"+5", "EUR", 0, ErrAmount},
		{"1,299.00", "EUR", 0, ErrAmount},
		{"12,90", "EUR", 0, ErrAmount},
		{"1e3", "EUR", 0, ErrAmount},
		{" 12", "EUR", 0, ErrAmount},
		{"1.2.3", "EUR", 0, ErrAmount},
		{"١٢", "EUR", 0, ErrAmount},
		{strings.Repeat("0", MaxInput+1), "JPY", 0, ErrAmount},
	} {
		t.Run(tc.code+"/"+strconv.Quote(tc.in), func(t *testing.T) {
			got, err := Parse(tc.in, tc.code)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("Parse(%q, %s) = %d, %v; want %d, %v", tc.in, tc.code, got, err, tc.want, tc.err)
			}
		})
	}
}

func TestParseInput(t *testing.T) {
	for _, tc := range []struct {
		in, code string
		want     int64
		err      error
	}{
		{"1290", "EUR", 1290, nil}, // minor units
		{"12.90", "EUR", 1290, nil},
		{"12.9", "EUR", 1290, nil},
		{"1299", "JPY", 1299, nil},
		{"1500", "BHD", 1500, nil},
		{"1.500", "BHD", 1500, nil},
		{"9223372036854775807", "EUR", math.MaxInt64, nil},
		{"12.905", "EUR", 0, ErrMinorUnits},
		{"1299.0", "JPY", 0, ErrMinorUnits},
		{"1.5000", "BHD", 0, ErrMinorUnits},
		{"9223372036854775808", "EUR", 0, ErrAmount},
		{"12,90", "EUR", 0, ErrAmount},
		{"-1", "EUR", 0, ErrAmount},
		{"", "EUR", 0, ErrAmount},
		{"1290", "XYZ", 0, ErrUnsupported},
		{"12.90", "XYZ", 0, ErrUnsupported},
	} {
		t.Run(tc.code+"/"+strconv.Quote(tc.in), func(t *testing.T) {
			got, err := ParseInput(tc.in, tc.code)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("ParseInput(%q, %s) = %d, %v; want %d, %v", tc.in, tc.code, got, err, tc.want, tc.err)
			}
		})
	}
}

func TestCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code string
		ok   bool
	}{
		{ErrUnsupported, CodeUnsupported, true},
		{ErrMinorUnits, CodeMinorUnits, true},
		{ErrAmount, CodeAmount, true},
		{errors.Join(errors.New("catalog"), ErrUnsupported), CodeUnsupported, true},
		{errors.New("other"), "", false},
		{nil, "", false},
	} {
		if code, ok := Code(tc.err); code != tc.code || ok != tc.ok {
			t.Errorf("Code(%v) = %q, %v; want %q, %v", tc.err, code, ok, tc.code, tc.ok)
		}
	}
}

// plain writes minor units of a currency with digits decimals as Parse reads them.
func plain(minor int64, digits int) string {
	s := strconv.FormatInt(minor, 10)
	if digits == 0 {
		return s
	}
	s = strings.Repeat("0", max(0, digits+1-len(s))) + s
	return s[:len(s)-digits] + "." + s[len(s)-digits:]
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"12.90", "12.905", "1299", "1.500", "0", "", ".", "92233720368547758.07", "9223372036854775808", "1,299.00", "-1"} {
		for _, code := range []string{"EUR", "JPY", "BHD", "XYZ"} {
			f.Add(s, code)
		}
	}
	f.Fuzz(func(t *testing.T, s, code string) {
		if n, err := ParseInput(s, code); err == nil && !strings.Contains(s, ".") && strconv.FormatInt(n, 10) != strings.TrimLeft(s, "0") && n != 0 {
			t.Fatalf("ParseInput(%q, %q) = %d: not the integer typed", s, code, n)
		} else if _, ok := Code(err); err != nil && !ok {
			t.Fatalf("ParseInput(%q, %q): error without a code: %v", s, code, err)
		}
		n, err := Parse(s, code)
		if err != nil {
			if _, ok := Code(err); !ok {
				t.Fatalf("Parse(%q, %q): error without a code: %v", s, code, err)
			}
			if n != 0 {
				t.Fatalf("Parse(%q, %q) = %d with error %v", s, code, n, err)
			}
			return
		}
		d, _ := Digits(code)
		// Round trip: the canonical form parses to the same amount, and
		// Format shows the same digits.
		if back, err := Parse(plain(n, d), code); err != nil || back != n {
			t.Fatalf("Parse(%q, %s) = %d; its plain form %q parses to %d, %v", s, code, n, plain(n, d), back, err)
		}
		if got := strings.ReplaceAll(strings.TrimSuffix(Format(n, code), " "+code), ",", ""); got != plain(n, d) {
			t.Fatalf("Format(%d, %s) = %q; want the digits %q", n, code, Format(n, code), plain(n, d))
		}
	})
}

func TestShow(t *testing.T) {
	for _, tc := range []struct{ locale, want string }{
		{"", "1,299.00 EUR"},
		{"C", "1,299.00 EUR"},
		{"de-DE", "1.299,00\u00a0€"},
		{"fr_FR.UTF-8", "1\u202f299,00\u00a0€"},
	} {
		t.Run(tc.locale, func(t *testing.T) {
			t.Setenv(LocaleEnv, tc.locale)
			if got := Show(129900, "EUR"); got != tc.want {
				t.Fatalf("Show with %s=%q: %q; want %q", LocaleEnv, tc.locale, got, tc.want)
			}
		})
	}
}
