package address

import (
	"strconv"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// TestCallingCodes holds the browser's table of calling codes to
// libphonenumber's.
func TestCallingCodes(t *testing.T) {
	want := phonenumbers.GetSupportedCallingCodes()
	if len(want) != len(callingCodes) {
		t.Errorf("%d calling codes, libphonenumber knows %d", len(callingCodes), len(want))
	}
	for c := range want {
		if !callingCodes[strconv.Itoa(c)] {
			t.Errorf("calling code %d missing", c)
		}
	}
}

// TestPhoneShape: every number the full check accepts in international
// form the shape check accepts with the same E.164; what has no country
// code, letters or the wrong length it refuses.
func TestPhoneShape(t *testing.T) {
	for _, tc := range []struct {
		raw, want string // want "": refused
	}{
		{"+49 151 12345678", "+4915112345678"},
		{"+82 10-1234-5678", "+821012345678"},
		{"0082 10 1234 5678", "+821012345678"},
		{"+1 (415) 555-2671", "+14155552671"},
		{"+81 90/1234/5678", "+819012345678"},
		{"+39 06 6982", "+39066982"},
		{"010-1234-5678", ""},           // national: no country code
		{"+999 1234 5678", ""},          // no such calling code
		{"+49 12", ""},                  // too short
		{"+49 1511 2345 6789 0123", ""}, // over 15 digits
		{"+49 151 1234567x", ""},
		{"", ""},
		{"+", ""},
	} {
		got, ok := phoneShape(tc.raw)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("phoneShape(%q) = %q %v, want %q", tc.raw, got, ok, tc.want)
		}
		if tc.want != "" {
			if full, err := Phone(tc.raw, ""); err == nil && full != got {
				t.Errorf("%q: the full check gives %q, the shape check %q", tc.raw, full, got)
			}
		}
	}
	if got := callingCode("+4915112345678"); got != "49" {
		t.Errorf("calling code %q", got)
	}
}
