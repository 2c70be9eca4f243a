package address

import "testing"

// TestCountryNames holds the browser's table to CountryName's native
// answer for every two-letter code, upper case.
func TestCountryNames(t *testing.T) {
	n := 0
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			code := string([]rune{a, b})
			want := CountryName(code)
			got, ok := countryNames[code]
			if !ok {
				got = code
			}
			if got != want {
				t.Errorf("%s: table %q, display %q", code, got, want)
			}
			if ok {
				n++
			}
		}
	}
	if n < 250 {
		t.Fatalf("only %d names in the table", n)
	}
}
