// Package cards holds the card brands' numbering rules in one table: the
// issuer identification number (IIN) ranges each brand's primary account
// numbers start with, their lengths, the length of the security code printed
// on the card, and the Luhn check digit (ISO/IEC 7812-1). The cardholder
// checks a number with it before sealing, the issuer before enrolling and
// when it derives the code printed on a card.
//
// The ranges are the ones the networks publish for card acceptance; a number
// matches the brand with the longest matching range (622126–622925 is
// Discover's within UnionPay's 62).
package cards

import (
	"errors"
	"fmt"
)

// Errors of Check and CheckCVC; messages never quote the number or code.
var (
	ErrDigits  = errors.New("card number must be digits only")
	ErrBrand   = errors.New("card number is of no card brand accepted here")
	ErrLength  = errors.New("card number has a length its brand does not issue")
	ErrLuhn    = errors.New("card number fails the Luhn check")
	ErrCVCForm = errors.New("card security code must be digits only")
	ErrCVCLen  = errors.New("card security code has the wrong length for the card's brand")
)

// Brand is one card network's numbering rules.
type Brand struct {
	Name    string  // stable, lower case: "visa", "amex", …
	Display string  // as printed for people
	Ranges  []Range // IIN ranges
	Lengths []int   // number lengths issued, ascending
	CVCLen  int     // digits of the security code printed on the card
}

// Range is an IIN range: the number's first Digits digits, read as a
// decimal integer, lie within [Lo, Hi].
type Range struct {
	Lo, Hi int
	Digits int
}

// Brands is the table; Lookup reads it, tests hold it to the networks'
// published test numbers (testdata/vectors.json).
var Brands = []Brand{
	{Name: "visa", Display: "Visa", Ranges: []Range{{4, 4, 1}}, Lengths: []int{13, 16, 19}, CVCLen: 3},
	{Name: "mastercard", Display: "Mastercard", Ranges: []Range{{51, 55, 2}, {222100, 272099, 6}}, Lengths: []int{16}, CVCLen: 3},
	{Name: "amex", Display: "American Express", Ranges: []Range{{34, 34, 2}, {37, 37, 2}}, Lengths: []int{15}, CVCLen: 4},
	{Name: "discover", Display: "Discover", Ranges: []Range{{6011, 6011, 4}, {644, 649, 3}, {65, 65, 2}, {622126, 622925, 6}},
		Lengths: []int{16, 17, 18, 19}, CVCLen: 3},
	{Name: "diners", Display: "Diners Club", Ranges: []Range{{300, 305, 3}, {3095, 3095, 4}, {36, 36, 2}, {38, 39, 2}},
		Lengths: []int{14, 15, 16, 17, 18, 19}, CVCLen: 3},
	{Name: "jcb", Display: "JCB", Ranges: []Range{{3528, 3589, 4}}, Lengths: []int{16, 17, 18, 19}, CVCLen: 3},
	{Name: "unionpay", Display: "UnionPay", Ranges: []Range{{62, 62, 2}, {81, 81, 2}}, Lengths: []int{16, 17, 18, 19}, CVCLen: 3},
	{Name: "maestro", Display: "Maestro", Ranges: []Range{{5018, 5018, 4}, {5020, 5020, 4}, {5038, 5038, 4}, {5893, 5893, 4},
		{6304, 6304, 4}, {6759, 6759, 4}, {6761, 6763, 4}}, Lengths: []int{12, 13, 14, 15, 16, 17, 18, 19}, CVCLen: 3},
}

// MaxLen is the longest number any brand issues.
const MaxLen = 19

// Lookup returns the brand of number (digits only) by its IIN alone,
// without checking its length or check digit.
func Lookup(number string) (*Brand, error) {
	if !digits(number) {
		return nil, ErrDigits
	}
	var best *Brand
	bestDigits := 0
	for i := range Brands {
		for _, r := range Brands[i].Ranges {
			if r.Digits > len(number) || r.Digits <= bestDigits {
				continue
			}
			if p := prefix(number, r.Digits); p >= r.Lo && p <= r.Hi {
				best, bestDigits = &Brands[i], r.Digits
			}
		}
	}
	if best == nil {
		return nil, ErrBrand
	}
	return best, nil
}

// Check returns the brand of a card number (digits only) that has a known
// IIN, a length its brand issues and a valid Luhn check digit.
func Check(number string) (*Brand, error) {
	if len(number) > MaxLen {
		return nil, ErrLength
	}
	b, err := Lookup(number)
	if err != nil {
		return nil, err
	}
	if !b.issues(len(number)) {
		return nil, ErrLength
	}
	if !Luhn(number) {
		return nil, ErrLuhn
	}
	return b, nil
}

// CheckCVC checks that cvc has the form b prints on its cards: CVCLen
// digits (four for American Express).
func (b *Brand) CheckCVC(cvc string) error {
	if !digits(cvc) {
		return ErrCVCForm
	}
	if len(cvc) != b.CVCLen {
		return fmt.Errorf("%w (%s: %d digits)", ErrCVCLen, b.Display, b.CVCLen)
	}
	return nil
}

func (b *Brand) issues(n int) bool {
	for _, l := range b.Lengths {
		if l == n {
			return true
		}
	}
	return false
}

// Luhn reports whether the digit string d passes the Luhn checksum (ISO/IEC
// 7812-1 Annex B). It is false for fewer than two digits or a non-digit.
func Luhn(d string) bool {
	if len(d) < 2 || !digits(d) {
		return false
	}
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			if v *= 2; v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

func prefix(s string, n int) int {
	v := 0
	for i := range n {
		v = v*10 + int(s[i]-'0')
	}
	return v
}

func digits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
