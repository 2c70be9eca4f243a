//go:build !js

package address

import (
	"strings"

	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

// CountryName is the English name of an ISO 3166-1 alpha-2 code in upper
// case, as UPU asks for the last line of an international address; the code
// itself when unknown.
func CountryName(code string) string {
	r, err := language.ParseRegion(code)
	if err != nil {
		return code
	}
	switch code {
	case "KR":
		return "REPUBLIC OF KOREA" // the UPU name; "South Korea" is colloquial
	}
	if n := display.English.Regions().Name(r); n != "" && n != "Unknown Region" {
		return strings.ToUpper(n)
	}
	return code
}
