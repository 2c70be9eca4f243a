// Package address structures postal addresses per country (DESIGN.md §6.9):
// postcode and region rules for KR, JP, CN, US, GB and DE with a generic
// fallback for the rest, Unicode NFC and white-space normalisation, the fold
// that decides when two addresses are the same place, the local line order
// of each country and script, and phone numbers validated and written in
// E.164 (github.com/nyaruka/phonenumbers, the Go port of libphonenumber).
//
// Errors are *Error values with a stable Code (for problem+json answers and
// CLI messages) and a Reason that never repeats the input: addresses end up
// nowhere but the vault, and error texts end up in logs.
package address

import (
	"errors"
	"regexp"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"

	"orderseal/order"
)

// ErrInvalid is wrapped by every *Error; an *Error also matches
// order.ErrInvalidOrder, so callers that check only that still see it.
var ErrInvalid = errors.New("invalid address")

// Stable codes of the refusals. One code per cause, never reused.
const (
	CodeField           = "address-field-invalid" // a field is missing, too long, or holds control characters
	CodePostcodeInvalid = "postcode-invalid"      // not the country's postcode format (a KR postcode of 4 digits)
	CodePostcodeMissing = "postcode-required"     // the country's addresses need a postcode
	CodePostcodeForeign = "postcode-foreign"      // another country's postcode format (a US ZIP in a GB address)
	CodeRegionMissing   = "region-required"       // the country's addresses need a region (a JP address without prefecture)
	CodeRegionUnknown   = "region-unknown"        // not one of the country's regions
	CodePhoneInvalid    = "phone-invalid"         // not a phone number of any numbering plan
	CodeCustomsInvalid  = "customs-code-invalid"  // not the destination's form of a personal customs code
)

// Error is one refusal: which field, which code, and why in words free of
// the input's values.
type Error struct {
	Code   string // one of the Code constants
	Field  string // "address.postal_code", "phone", …
	Reason string // fixed text
}

func (e *Error) Error() string { return "address: " + e.Field + ": " + e.Reason }

// Unwrap makes every *Error match ErrInvalid and order.ErrInvalidOrder.
func (e *Error) Unwrap() []error { return []error{ErrInvalid, order.ErrInvalidOrder} }

// CodeOf returns the stable code of err, or "" when err is no *Error.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// country holds one country's rules.
type country struct {
	// postcode turns a cleaned postcode (upper case, ASCII, no spaces)
	// into its canonical form, or reports false.
	postcode         func(string) (string, bool)
	postcodeRequired bool
	postcodeWhat     string // "5 digits, e.g. 03187", for reasons
	alphanumeric     bool   // postcodes hold letters (GB), not digits alone
	regions          []region
	regionRequired   bool
	// localOrder: in the country's own script, the address is written
	// from the largest unit down (region, city, street, name).
	localOrder bool
}

var (
	digits5   = regexp.MustCompile(`^[0-9]{5}$`)
	digits6   = regexp.MustCompile(`^[0-9]{6}$`)
	digits7   = regexp.MustCompile(`^[0-9]{7}$`)
	digits9   = regexp.MustCompile(`^[0-9]{9}$`)
	gbPost    = regexp.MustCompile(`^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$`)
	genericPC = regexp.MustCompile(`^[A-Z0-9][A-Z0-9-]{1,11}$`)
)

func exact(re *regexp.Regexp) func(string) (string, bool) {
	return func(s string) (string, bool) { return s, re.MatchString(s) }
}

var countries = map[string]*country{
	"KR": {postcode: exact(digits5), postcodeRequired: true, postcodeWhat: "5 digits (since 2015), e.g. 03187",
		regions: krProvinces, regionRequired: true, localOrder: true},
	"JP": {postcode: func(s string) (string, bool) {
		s = strings.ReplaceAll(s, "-", "")
		if !digits7.MatchString(s) {
			return "", false
		}
		return s[:3] + "-" + s[3:], true
	}, postcodeRequired: true, postcodeWhat: "7 digits written 100-0001",
		regions: jpPrefectures, regionRequired: true, localOrder: true},
	"CN": {postcode: exact(digits6), postcodeRequired: true, postcodeWhat: "6 digits, e.g. 100000",
		regions: cnProvinces, regionRequired: true, localOrder: true},
	"US": {postcode: func(s string) (string, bool) {
		s = strings.ReplaceAll(s, "-", "")
		switch {
		case digits5.MatchString(s):
			return s, true
		case digits9.MatchString(s):
			return s[:5] + "-" + s[5:], true
		}
		return "", false
	}, postcodeRequired: true, postcodeWhat: "a ZIP code of 5 digits or ZIP+4, e.g. 94105 or 94105-1804",
		regions: usStates, regionRequired: true},
	"GB": {postcode: func(s string) (string, bool) {
		if s == "GIR0AA" {
			return "GIR 0AA", true
		}
		m := gbPost.FindStringSubmatch(s)
		if m == nil {
			return "", false
		}
		return m[1] + " " + m[2], true
	}, postcodeRequired: true, postcodeWhat: "an outward and inward code, e.g. SW1A 1AA", alphanumeric: true},
	"DE": {postcode: exact(digits5), postcodeRequired: true, postcodeWhat: "5 digits, e.g. 80331"},
}

// generic is the rule of every other country: a postcode is optional and
// free-form within [A-Z0-9-], the region free text.
var generic = &country{postcode: exact(genericPC), postcodeWhat: "2 to 12 letters, digits or hyphens"}

// Supported lists the countries with rules of their own.
func Supported() []string { return []string{"CN", "DE", "GB", "JP", "KR", "US"} }

func rulesOf(cc string) *country {
	if c, ok := countries[cc]; ok {
		return c
	}
	return generic
}

// clean is NFC with white space trimmed and inner runs folded to one space.
func clean(s string) string {
	return strings.Join(strings.Fields(norm.NFC.String(s)), " ")
}

// cleanPostcode is the postcode in ASCII upper case without spaces or a
// leading postal mark: full-width digits and hyphens fold to ASCII.
func cleanPostcode(s string) string {
	s = width.Fold.String(norm.NFC.String(s))
	s = strings.TrimPrefix(strings.TrimSpace(s), "〒")
	s = strings.Map(func(r rune) rune {
		switch {
		case unicode.IsSpace(r):
			return -1
		case r == '‐' || r == '−' || r == 'ー' || r == '–':
			return '-'
		}
		return unicode.ToUpper(r)
	}, s)
	return s
}

// Normalize returns a in canonical form and checks it against its country's
// rules: every field NFC with white space folded, the country and postcode
// upper case in the country's format, the region in its canonical spelling
// (a JP prefecture, a KR province, a CN province, a US state code). A KR,
// JP or CN city that begins with its region gets the region split off into
// Region. The error is an *Error.
func Normalize(a order.Address) (order.Address, error) {
	n := order.Address{Name: clean(a.Name), Line1: clean(a.Line1), Line2: clean(a.Line2), City: clean(a.City),
		Region: clean(a.Region), PostalCode: cleanPostcode(a.PostalCode), Country: strings.ToUpper(clean(a.Country))}
	if err := order.ValidateAddress(&n); err != nil {
		var fe *order.FieldError
		if errors.As(err, &fe) {
			return order.Address{}, &Error{Code: CodeField, Field: fe.Field, Reason: fe.Reason}
		}
		return order.Address{}, &Error{Code: CodeField, Field: "address", Reason: "is not a postal address"}
	}
	c := rulesOf(n.Country)
	if err := c.checkPostcode(&n); err != nil {
		return order.Address{}, err
	}
	if err := c.checkRegion(&n); err != nil {
		return order.Address{}, err
	}
	return n, nil
}

func (c *country) checkPostcode(n *order.Address) error {
	if n.PostalCode == "" {
		if c.postcodeRequired {
			return &Error{Code: CodePostcodeMissing, Field: "address.postal_code",
				Reason: n.Country + " addresses need a postcode: " + c.postcodeWhat}
		}
		return nil
	}
	if pc, ok := c.postcode(n.PostalCode); ok {
		n.PostalCode = pc
		return nil
	}
	// A code of the other kind (digits where letters belong, or letters
	// where digits do) is most likely another country's.
	if other, what := foreignPostcode(n.PostalCode); other != "" && other != n.Country && c.alphanumeric != alnum(n.PostalCode) && c != generic {
		return &Error{Code: CodePostcodeForeign, Field: "address.postal_code",
			Reason: "looks like " + what + ", not a " + n.Country + " postcode (" + c.postcodeWhat + ")"}
	}
	return &Error{Code: CodePostcodeInvalid, Field: "address.postal_code",
		Reason: "is not a " + n.Country + " postcode: want " + c.postcodeWhat}
}

// foreignPostcode names the country whose postcode format pc has, when it
// is one of the distinctive ones; "" when none.
func foreignPostcode(pc string) (cc, what string) {
	switch {
	case regexp.MustCompile(`^[0-9]{5}-[0-9]{4}$`).MatchString(pc):
		return "US", "a US ZIP+4 code"
	case gbPost.MatchString(pc):
		return "GB", "a GB postcode"
	case regexp.MustCompile(`^[0-9]{3}-[0-9]{4}$`).MatchString(pc):
		return "JP", "a JP postcode"
	case digits5.MatchString(pc):
		return "US", "a US ZIP code"
	case digits6.MatchString(pc):
		return "CN", "a CN postcode"
	}
	return "", ""
}

// alnum reports whether pc holds a letter.
func alnum(pc string) bool { return strings.ContainsFunc(pc, unicode.IsLetter) }

func (c *country) checkRegion(n *order.Address) error {
	if len(c.regions) == 0 {
		return nil
	}
	if n.Region == "" && c.localOrder {
		// "東京都千代田区", "서울특별시 강남구": the region written into the city.
		if r, rest, ok := splitRegion(c.regions, n.City); ok {
			n.Region, n.City = r.local, rest
		}
	}
	if n.Region == "" {
		if c.regionRequired {
			return &Error{Code: CodeRegionMissing, Field: "address.region", Reason: n.Country + " addresses need " + regionWord(n.Country)}
		}
		return nil
	}
	r, ok := findRegion(c.regions, n.Region)
	if !ok {
		return &Error{Code: CodeRegionUnknown, Field: "address.region", Reason: "is not " + regionWord(n.Country) + " of " + n.Country}
	}
	switch {
	case n.Country == "US":
		n.Region = r.local // the USPS code
	case hasLocalScript(n.Region):
		n.Region = r.local
	default:
		n.Region = r.latin
	}
	return nil
}

func regionWord(cc string) string {
	switch cc {
	case "JP":
		return "a prefecture"
	case "US":
		return "a state"
	case "KR", "CN":
		return "a province or metropolitan city"
	}
	return "a region"
}

// regionKey folds a region's spelling for matching: case, width, spaces,
// hyphens, dots and commas do not count.
func regionKey(s string) string {
	s = width.Fold.String(norm.NFC.String(s))
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '-' || r == '.' || r == ',' {
			return -1
		}
		return unicode.ToLower(r)
	}, s)
}

func findRegion(rs []region, s string) (region, bool) {
	k := regionKey(s)
	for _, r := range rs {
		if regionKey(r.local) == k || regionKey(r.latin) == k || hasLocalScript(r.local) && regionKey(bareName(r.local)) == k {
			return r, true
		}
		for _, a := range r.aliases {
			if regionKey(a) == k {
				return r, true
			}
		}
	}
	return region{}, false
}

// bareName is a CJK region's name without its kind: 北京 of 北京市, 東京 of 東京都.
func bareName(s string) string {
	for _, suf := range []string{"壮族自治区", "回族自治区", "维吾尔自治区", "自治区", "省", "市", "都", "府", "県"} {
		if b, ok := strings.CutSuffix(s, suf); ok && b != "" {
			return b
		}
	}
	return s
}

// splitRegion finds a region's local name (or alias in local script) at
// the start of city and returns it and the rest.
func splitRegion(rs []region, city string) (region, string, bool) {
	for _, r := range rs {
		if rest, ok := strings.CutPrefix(city, r.local); ok && strings.TrimSpace(rest) != "" {
			return r, strings.TrimSpace(rest), true
		}
		// A short form only as a word of its own: 광주 is also a city of 경기도.
		for _, name := range r.aliases {
			if rest, ok := strings.CutPrefix(city, name+" "); ok && hasLocalScript(name) && strings.TrimSpace(rest) != "" {
				return r, strings.TrimSpace(rest), true
			}
		}
	}
	return region{}, "", false
}

// hasLocalScript reports whether s holds Hangul, Han, Hiragana or Katakana.
func hasLocalScript(s string) bool {
	for _, r := range s {
		if unicode.In(r, unicode.Hangul, unicode.Han, unicode.Hiragana, unicode.Katakana) {
			return true
		}
	}
	return false
}

// CheckCustomsCode checks a personal customs clearance code against the
// destination's form: KR's 개인통관고유부호 is P and 12 digits; elsewhere
// 4 to 32 of A-Z 0-9.
func CheckCustomsCode(country, code string) error {
	re := regexp.MustCompile(`^[A-Z0-9]{4,32}$`)
	what := "4 to 32 letters and digits"
	if country == "KR" {
		re, what = regexp.MustCompile(`^P[0-9]{12}$`), "P and 12 digits"
	}
	if !re.MatchString(code) {
		return &Error{Code: CodeCustomsInvalid, Field: "recipient.customs_code", Reason: "is not a " + country + " personal customs code: want " + what}
	}
	return nil
}
