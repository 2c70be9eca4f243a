package address

import (
	"strings"

	"orderseal/order"
)

// MaxPhoneLen bounds the raw text Phone parses.
const MaxPhoneLen = 64

func errPhone() *Error {
	return &Error{Code: CodePhoneInvalid, Field: "phone", Reason: "is not a phone number: give it with its country code, e.g. +82 10-1234-5678"}
}

// OrderPhones writes o's buyer and recipient phones in E.164 (Phone): the
// buyer's in international form, the recipient's also in the national form
// of an inline destination's country. It stops at the first that is no
// phone number and returns whose it is, "buyer" or "recipient", with
// Phone's error.
func OrderPhones(o *order.Order) (whose string, err error) {
	region := ""
	if o.ShipTo.Address != nil {
		region = o.ShipTo.Address.Country
	}
	for _, p := range []struct {
		whose, region string
		v             *string
	}{{"buyer", "", &o.Buyer.Phone}, {"recipient", region, &o.Recipient.Phone}} {
		n, err := Phone(*p.v, p.region)
		if err != nil {
			return p.whose, err
		}
		*p.v = n
	}
	return "", nil
}

// callingCodes are the ITU country calling codes libphonenumber knows
// (TestCallingCodes holds them to github.com/nyaruka/phonenumbers); they
// are prefix-free, so a number names at most one.
var callingCodes = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range strings.Fields(`1 7 20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 60 61 62 63 64 65 66
		81 82 84 86 90 91 92 93 94 95 98 211 212 213 216 218 220 221 222 223 224 225 226 227 228 229 230 231 232 233 234 235 236 237
		238 239 240 241 242 243 244 245 246 247 248 249 250 251 252 253 254 255 256 257 258 260 261 262 263 264 265 266 267 268 269
		290 291 297 298 299 350 351 352 353 354 355 356 357 358 359 370 371 372 373 374 375 376 377 378 380 381 382 383 385 386 387
		389 420 421 423 500 501 502 503 504 505 506 507 508 509 590 591 592 593 594 595 596 597 598 599 670 672 673 674 675 676 677
		678 679 680 681 682 683 685 686 687 688 689 690 691 692 800 808 850 852 853 855 856 870 878 880 881 882 883 886 888 960 961
		962 963 964 965 966 967 968 970 971 972 973 974 975 976 977 979 992 993 994 995 996 998`) {
		m[c] = true
	}
	return m
}()

// phoneShape is the check of a phone number without libphonenumber's
// metadata, for the browser checkout's program (phone_js.go), where the
// metadata would double its size: an international number ("+" or "00",
// a known country calling code, 4 to 14 more digits, 15 at most in all;
// spaces, dots, dashes, slashes and parentheses between digits ignored).
// It accepts numbers libphonenumber would refuse (an unassigned prefix, a
// wrong length for the plan); the parties that open the section check
// again with the full metadata.
func phoneShape(raw string) (string, bool) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > MaxPhoneLen {
		return "", false
	}
	var digits strings.Builder
	intl := false
	switch {
	case strings.HasPrefix(raw, "+"):
		raw, intl = raw[1:], true
	case strings.HasPrefix(raw, "00"):
		raw, intl = raw[2:], true
	}
	if !intl {
		return "", false
	}
	for _, r := range raw {
		switch {
		case r >= '0' && r <= '9':
			digits.WriteRune(r)
		case strings.ContainsRune(" .-/()", r):
		default:
			return "", false
		}
	}
	d := digits.String()
	for n := 1; n <= 3 && n <= len(d); n++ {
		if callingCodes[d[:n]] {
			if rest := len(d) - n; rest < 4 || len(d) > 15 {
				return "", false
			}
			return "+" + d, true
		}
	}
	return "", false
}

// callingCode is the country calling code an E.164 number starts with
// ("" when none).
func callingCode(e164 string) string {
	d := strings.TrimPrefix(e164, "+")
	for n := 1; n <= 3 && n <= len(d); n++ {
		if callingCodes[d[:n]] {
			return d[:n]
		}
	}
	return ""
}
