package order

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-playground/validator/v10"

	"orderseal/order/cards"
	"orderseal/order/money/iso4217"
)

// CurrencyReason is why an order's currency is refused: the text of
// money.ErrUnsupported (iso4217's), which the issuer and the merchant refuse
// it with too.
var CurrencyReason = iso4217.ErrUnsupported.Error()

// ErrInvalidOrder is wrapped by every error ParseOrder and Validate return.
var ErrInvalidOrder = errors.New("invalid order")

// FieldError is one validation failure. It names the field by its JSON path
// (e.g. "items[2].qty") and says what is wrong, never what the value was:
// order errors end up in logs and problem+json responses.
type FieldError struct {
	Field  string // JSON path, e.g. "card.number"
	Reason string // fixed text, free of input values
}

func (e *FieldError) Error() string { return "order: " + e.Field + ": " + e.Reason }

// Unwrap makes every FieldError match ErrInvalidOrder.
func (e *FieldError) Unwrap() error { return ErrInvalidOrder }

// validate is the one validator instance; it caches struct metadata and is
// safe for concurrent use once set up here. It is set up on first use, not
// at package init: the browser checkout's program starts before it needs it.
var validate = sync.OnceValue(newValidator)

func newValidator() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			return f.Name
		}
		return name
	})
	custom := map[string]func(string) bool{
		"sku":       func(s string) bool { return isCode(s, 64) },
		"shiptoken": func(s string) bool { return isCode(s, 128) },
		"text":      isLine,
		"note":      isNote,
		"customs":   isCustomsCode,
	}
	for tag, ok := range custom {
		if err := v.RegisterValidation(tag, func(fl validator.FieldLevel) bool {
			return ok(fl.Field().String())
		}); err != nil {
			panic(err)
		}
	}
	// Baked-in tags the order uses, replaced under their own names (so tags
	// and errors stay) by equivalents without regexps or allocation.
	// FuzzBakedInTags holds each to the validator's original.
	bakedIn := map[string]validator.Func{
		"email":         func(fl validator.FieldLevel) bool { return isEmail(fl.Field().String()) },
		"e164":          func(fl validator.FieldLevel) bool { return isE164(fl.Field()) },
		"number":        func(fl validator.FieldLevel) bool { return isNumber(fl.Field()) },
		"luhn_checksum": func(fl validator.FieldLevel) bool { return hasLuhnChecksum(fl.Field()) },
		// The validator's own list knows codes no card is charged in
		// (fund units, the ISO list of its release): money decides, through
		// its table without the CLDR data (package iso4217).
		"iso4217": func(fl validator.FieldLevel) bool { return iso4217.Check(fl.Field().String()) == nil },
	}
	for tag, fn := range bakedIn {
		if err := v.RegisterValidation(tag, fn); err != nil {
			panic(err)
		}
	}
	return v
}

// stock is a validator as it comes, for the addresses isEmail leaves to it;
// like validate, set up on first use.
var stock = sync.OnceValue(func() *validator.Validate { return validator.New() })

// isEmail is the validator's email, which asks net/mail's ParseAddress and
// then a long regexp; it answers the plainest addresses itself.
func isEmail(s string) bool {
	return isPlainEmail(s) || stock().Var(s, "email") == nil
}

// isPlainEmail reports whether s is local@domain with dot-separated atoms of
// [A-Za-z0-9_+-] before the @, and after it two or more dot-separated labels
// of [A-Za-z0-9-] that neither start nor end with '-', the last of letters
// only. Both of the validator's email checks accept every such address:
// ParseAddress as a dot-atom addr-spec, the regexp as a plain local part and
// host name.
func isPlainEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	if !ok || !dotted(local, isAtomByte) || !dotted(domain, isLabelByte) {
		return false
	}
	last := domain[strings.LastIndexByte(domain, '.')+1:]
	if last == domain {
		return false // one label
	}
	for i := range len(last) {
		if c := last[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// dotted reports whether s is one or more non-empty labels joined by single
// dots, ok accepting each byte; edge tells ok the byte starts or ends its label.
func dotted(s string, ok func(c byte, edge bool) bool) bool {
	for {
		label, rest, more := strings.Cut(s, ".")
		if label == "" {
			return false
		}
		for i := range len(label) {
			if !ok(label[i], i == 0 || i == len(label)-1) {
				return false
			}
		}
		if !more {
			return true
		}
		s = rest
	}
}

func isAtomByte(c byte, _ bool) bool { return isAlnum(c) || c == '_' || c == '+' || c == '-' }

func isLabelByte(c byte, edge bool) bool { return isAlnum(c) || c == '-' && !edge }

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// isE164 is the validator's e164, ^\+?[1-9]\d{7,14}$; a value of another
// kind than string never matches it.
func isE164(f reflect.Value) bool {
	if f.Kind() != reflect.String {
		return false
	}
	s := strings.TrimPrefix(f.String(), "+")
	return len(s) >= 8 && len(s) <= 15 && s[0] != '0' && isDigits(s)
}

// isNumber is the validator's number: any integer or float, or a string
// matching ^[0-9]+$.
func isNumber(f reflect.Value) bool {
	switch f.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return true
	case reflect.String:
		return isDigits(f.String())
	}
	return false
}

// hasLuhnChecksum is the validator's luhn_checksum: at least two decimal
// digits (of a string or an integer) whose Luhn sum is a multiple of 10.
func hasLuhnChecksum(f reflect.Value) bool {
	var s string
	switch f.Kind() {
	case reflect.String:
		s = f.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s = strconv.FormatInt(f.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		s = strconv.FormatUint(f.Uint(), 10)
	default:
		panic(fmt.Sprintf("Bad field type %s", f.Type())) // as the validator does
	}
	if len(s) < 2 || !isDigits(s) {
		return false
	}
	sum := 0
	for i := range len(s) {
		d := int(s[i] - '0')
		if (len(s)-i)%2 == 0 { // every second digit from the right, check digit excluded
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

// isDigits reports whether s is one or more of 0-9.
func isDigits(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isCode reports whether s is 1 to max characters of [A-Za-z0-9._-], the
// alphabet of SKUs, ship tokens and order ids.
func isCode(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// isLine accepts non-blank, single-line text without control characters:
// names and address lines end up on labels and in fixed-width tables.
func isLine(s string) bool {
	blank := true
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf { // ASCII: no decoding, no tables
			if c < 0x20 || c == 0x7f {
				return false
			}
			blank = blank && c == ' '
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return false
		}
		blank = blank && unicode.IsSpace(r)
		i += n
	}
	return !blank
}

// isCustomsCode accepts 4 to 32 of [A-Z0-9]: the syntax of personal
// customs codes (order/address checks each country's own form).
func isCustomsCode(s string) bool {
	if len(s) < 4 || len(s) > 32 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; !('A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// isNote accepts free text: newlines and tabs, but no other control characters.
func isNote(s string) bool {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c < 0x20 && c != '\n' && c != '\t' || c == 0x7f {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 || unicode.IsControl(r) {
			return false
		}
		i += n
	}
	return true
}

// Validate checks o against the order rules of DESIGN.md §3. now decides
// whether the card has expired: a card is valid through the last day of its
// expiry month, compared in UTC. The error, if any, is a *FieldError for the
// first problem found and wraps ErrInvalidOrder; it names fields only.
func (o *Order) Validate(now time.Time) error {
	if o == nil {
		return &FieldError{Field: "order", Reason: "is missing"}
	}
	if err := validate().Struct(o); err != nil {
		var fes validator.ValidationErrors
		if !errors.As(err, &fes) || len(fes) == 0 {
			// InvalidValidationError: a programming error, not bad input.
			panic(fmt.Sprintf("order: validator: %v", err))
		}
		return &FieldError{Field: fieldPath(fes[0]), Reason: reason(fes[0])}
	}
	if fe := checkBrand(&o.Card); fe != nil {
		return fe
	}
	if r := checkExpiry(o.Card.Expiry, now); r != "" {
		return &FieldError{Field: "card.expiry", Reason: r}
	}
	if (o.ShipTo.Token == "") == (o.ShipTo.Address == nil) {
		return &FieldError{Field: "ship_to", Reason: "needs exactly one of token and address"}
	}
	if a := o.ShipTo.Address; a != nil && o.ShipTo.Country != "" && o.ShipTo.Country != a.Country {
		return &FieldError{Field: "ship_to.country", Reason: "is not the inline address's country"}
	}
	sum, ok := itemsTotal(o.Items)
	if !ok {
		return &FieldError{Field: "total", Reason: "the sum of qty × unit_price overflows"}
	}
	if sum != o.Total {
		return &FieldError{Field: "total", Reason: "does not equal the sum of qty × unit_price over items"}
	}
	return nil
}

// checkBrand holds the card to its brand's rules (package cards): a known
// IIN, a length the brand issues, and a security code of the brand's
// length (four digits for American Express). The validator has already
// checked digits and the Luhn sum.
func checkBrand(c *Card) *FieldError {
	b, err := cards.Check(c.Number)
	switch {
	case errors.Is(err, cards.ErrBrand):
		return &FieldError{Field: "card.number", Reason: "is of no card brand accepted here"}
	case errors.Is(err, cards.ErrLength):
		return &FieldError{Field: "card.number", Reason: "has a length its card brand does not issue"}
	case err != nil:
		return &FieldError{Field: "card.number", Reason: "fails the Luhn check"}
	}
	if c.CVC != "" && b.CheckCVC(c.CVC) != nil {
		return &FieldError{Field: "card.cvc", Reason: fmt.Sprintf("must be %d digits on %s cards", b.CVCLen, b.Display)}
	}
	return nil
}

// checkExpiry returns why expiry is unacceptable at now, or "".
func checkExpiry(expiry string, now time.Time) string {
	if len(expiry) != 7 || expiry[4] != '-' {
		return "must be YYYY-MM"
	}
	year, month := 0, 0
	for i, c := range []byte(expiry) {
		switch {
		case i == 4:
		case c < '0' || c > '9':
			return "must be YYYY-MM"
		case i < 4:
			year = year*10 + int(c-'0')
		default:
			month = month*10 + int(c-'0')
		}
	}
	if month < 1 || month > 12 {
		return "month must be 01 to 12"
	}
	now = now.UTC()
	if year*12+month < now.Year()*12+int(now.Month()) {
		return "the card has expired"
	}
	return ""
}

// itemsTotal returns Σ qty × unit_price, or false if a term is negative or
// anything overflows int64.
func itemsTotal(items []Item) (int64, bool) {
	var sum uint64
	for _, it := range items {
		if it.Qty < 0 || it.UnitPrice < 0 {
			return 0, false
		}
		hi, lo := bits.Mul64(uint64(it.Qty), uint64(it.UnitPrice))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, false
		}
		var carry uint64
		sum, carry = bits.Add64(sum, lo, 0)
		if carry != 0 || sum > math.MaxInt64 {
			return 0, false
		}
	}
	return int64(sum), true
}

// fieldPath turns the validator's "Order.items[0].sku" into "items[0].sku".
func fieldPath(fe validator.FieldError) string {
	_, path, ok := strings.Cut(fe.Namespace(), ".")
	if !ok {
		return fe.Field()
	}
	return path
}

// reason describes a failed tag from the tag and its parameter alone; it
// must never use fe.Value().
func reason(fe validator.FieldError) string {
	p := fe.Param()
	switch fe.Tag() {
	case "required":
		return "is required"
	case "min", "gt", "max":
		word := map[string]string{"min": "at least", "gt": "more than", "max": "at most"}[fe.Tag()]
		switch fe.Kind() {
		case reflect.String:
			return fmt.Sprintf("must be %s %s characters long", word, p)
		case reflect.Slice:
			unit := "entries"
			if p == "1" {
				unit = "entry"
			}
			return fmt.Sprintf("must have %s %s %s", word, p, unit)
		default:
			return fmt.Sprintf("must be %s %s", word, p)
		}
	case "number":
		return "must contain digits only"
	case "luhn_checksum":
		return "fails the Luhn check"
	case "e164", "startswith":
		return "must be an E.164 phone number with a leading plus sign"
	case "email":
		return "must be an email address"
	case "iso4217":
		return CurrencyReason
	case "iso3166_1_alpha2":
		return "must be an ISO 3166-1 alpha-2 country code in upper case"
	case "sku":
		return "must be 1 to 64 characters of A-Z a-z 0-9 . _ -"
	case "shiptoken":
		return "must be 1 to 128 characters of A-Z a-z 0-9 . _ -"
	case "text":
		return "must be non-blank text on one line without control characters"
	case "note":
		return "must not contain control characters other than newline and tab"
	case "customs":
		return "must be 4 to 32 characters of A-Z 0-9"
	}
	return "fails the " + fe.Tag() + " check"
}

// ValidateAddress checks one address on its own (the vault registers
// addresses outside any order). Errors name fields as "address.<field>".
func ValidateAddress(a *Address) error {
	if a == nil {
		return &FieldError{Field: "address", Reason: "is missing"}
	}
	if err := validate().Struct(a); err != nil {
		var fes validator.ValidationErrors
		if !errors.As(err, &fes) || len(fes) == 0 {
			panic(fmt.Sprintf("order: validator: %v", err))
		}
		return &FieldError{Field: "address." + fes[0].Field(), Reason: reason(fes[0])}
	}
	return nil
}
