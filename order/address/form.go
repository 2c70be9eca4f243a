package address

// Form is what an address form asks for in one country: the words for its
// postcode and region, whether each is required, the country's regions
// (Latin names) to choose from, and the postcode's format for the hint.
// Forms in a browser or a CLI prompt draw from it; Normalize decides.
type Form struct {
	Country          string   `json:"country"`
	Name             string   `json:"name"`
	PostcodeLabel    string   `json:"postcode_label"`
	PostcodeRequired bool     `json:"postcode_required"`
	PostcodeHint     string   `json:"postcode_hint"`
	RegionLabel      string   `json:"region_label"` // "" when the country's addresses carry none
	RegionRequired   bool     `json:"region_required"`
	Regions          []string `json:"regions,omitempty"`
	// LocalOrder: the country writes addresses from the region down, in
	// its own script; a form may ask for the fields in that order.
	LocalOrder bool `json:"local_order"`
}

// FormFor returns the address form of country cc (upper case ISO 3166-1),
// the generic one for a country without rules of its own.
func FormFor(cc string) Form {
	c := rulesOf(cc)
	f := Form{Country: cc, Name: CountryName(cc), PostcodeLabel: "Postcode", PostcodeRequired: c.postcodeRequired,
		PostcodeHint: c.postcodeWhat, RegionRequired: c.regionRequired, LocalOrder: c.localOrder}
	switch cc {
	case "US":
		f.PostcodeLabel, f.RegionLabel = "ZIP code", "State"
	case "JP":
		f.PostcodeLabel, f.RegionLabel = "Postal code (〒)", "Prefecture"
	case "KR", "CN":
		f.PostcodeLabel, f.RegionLabel = "Postal code", "Province or metropolitan city"
	case "GB", "DE":
	default:
		f.RegionLabel = "Region (optional)"
	}
	for _, r := range c.regions {
		f.Regions = append(f.Regions, r.latin)
	}
	return f
}
