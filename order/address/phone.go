//go:build !js

package address

import (
	"strings"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// Phone validates raw as a phone number and returns it in E.164 ("+" and
// up to 15 digits). A number without a leading "+" (or 00) is read in
// region's national plan (ISO 3166-1, e.g. "KR" for 010-1234-5678);
// region "" accepts international numbers only. The number must be valid
// in its plan (a known prefix of the right length), not merely digits.
func Phone(raw, region string) (string, error) {
	raw = strings.TrimSpace(raw)
	bad := errPhone()
	if raw == "" || len(raw) > MaxPhoneLen || !utf8.ValidString(raw) {
		return "", bad
	}
	if region == "" {
		region = "ZZ" // unknown: only +CC numbers parse
	}
	n, err := phonenumbers.Parse(raw, strings.ToUpper(region))
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", bad
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}

// PhoneRegion is the ISO 3166-1 country of an E.164 number ("" when unknown).
func PhoneRegion(e164 string) string {
	n, err := phonenumbers.Parse(e164, "ZZ")
	if err != nil {
		return ""
	}
	if r := phonenumbers.GetRegionCodeForNumber(n); r != "ZZ" {
		return r
	}
	return ""
}

// FormatPhone writes an E.164 number in its international form for
// people ("+82 10-1234-5678"); the input when it does not parse.
func FormatPhone(e164 string) string {
	n, err := phonenumbers.Parse(e164, "ZZ")
	if err != nil {
		return e164
	}
	return phonenumbers.Format(n, phonenumbers.INTERNATIONAL)
}
