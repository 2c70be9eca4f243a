//go:build js

package address

// In WebAssembly (the browser checkout) phone numbers are checked by their
// shape alone (phonebase.go): libphonenumber's metadata would double the
// program. The page asks for the number with its country code.

// Phone validates raw as an international phone number and returns it in
// E.164; region is not used (a national number is refused).
func Phone(raw, region string) (string, error) {
	n, ok := phoneShape(raw)
	if !ok {
		return "", errPhone()
	}
	return n, nil
}

// PhoneRegion is "" here: the region of a number needs the metadata.
func PhoneRegion(e164 string) string { return "" }

// FormatPhone writes an E.164 number as "+CC rest"; the input when it is
// not one.
func FormatPhone(e164 string) string {
	cc := callingCode(e164)
	if cc == "" {
		return e164
	}
	return "+" + cc + " " + e164[1+len(cc):]
}
