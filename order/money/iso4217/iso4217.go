// Package iso4217 is which ISO 4217 currencies orders are paid in and the
// minor unit of each (JPY 0, EUR 2, BHD 3): the part of package money that
// validating an order needs. Its table is github.com/bojanz/currency's list,
// generated (gen.go) and held to the library by order/money's tests, so the
// browser's sealing program checks a currency without linking the library's
// CLDR formatting data and the decimal arithmetic under it (issue 20).
package iso4217

import "errors"

//go:generate go run gen.go

// ErrUnsupported is the refusal of a code that is not a currency orders are
// paid in. Its text is the whole message a person reads, at every party; it
// never quotes the input.
var ErrUnsupported = errors.New("not an ISO 4217 currency that orders are paid in (such as EUR, JPY or BHD)")

// notPaidIn are ISO 4217 codes of the library's list that are not money a
// card is charged in: fund and accounting units. (Precious metals, XDR,
// XTS and XXX are not in the library's list at all.)
var notPaidIn = map[string]bool{
	"BOV": true, "CHE": true, "CHW": true, "CLF": true, "COU": true, "MXV": true,
	"USN": true, "UYI": true, "UYW": true, "XAD": true, "XSU": true, "XUA": true,
}

// MaxDigits is the largest minor unit of a supported currency (BHD, KWD, …).
const MaxDigits = 3

// Check is nil for a supported currency code (upper case, e.g. "EUR") and
// ErrUnsupported for anything else: an unknown code, lower case, a fund unit.
func Check(code string) error {
	_, err := Digits(code)
	return err
}

// Digits is the minor unit of a supported currency: the number of decimals
// of its amounts (JPY 0, EUR 2, BHD 3).
func Digits(code string) (int, error) {
	if len(code) != 3 || notPaidIn[code] {
		return 0, ErrUnsupported
	}
	for i := range 3 {
		if code[i] < 'A' || code[i] > 'Z' {
			return 0, ErrUnsupported
		}
	}
	d, ok := Listed(code)
	if !ok || d > MaxDigits {
		return 0, ErrUnsupported
	}
	return d, nil
}

// Listed is the minor unit of any code of the library's list, fund units
// and all, without the policy of Digits.
func Listed(code string) (digits int, ok bool) {
	lo, hi := 0, len(table)/4
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch c := table[4*m : 4*m+3]; {
		case c == code:
			return int(table[4*m+3] - '0'), true
		case c < code:
			lo = m + 1
		default:
			hi = m
		}
	}
	return 0, false
}

// Codes lists the supported currency codes in alphabetical order.
func Codes() []string {
	var out []string
	for i := 0; i < len(table); i += 4 {
		if c := table[i : i+3]; Check(c) == nil {
			out = append(out, c)
		}
	}
	return out
}
