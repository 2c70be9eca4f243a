//go:build js

package address

// CountryName is the English name of an ISO 3166-1 alpha-2 code in upper
// case, as UPU asks for the last line of an international address; the code
// itself when unknown. In WebAssembly it reads the table countrynames.go
// holds, the names display.English gives natively.
func CountryName(code string) string {
	if n, ok := countryNames[code]; ok {
		return n
	}
	return code
}
