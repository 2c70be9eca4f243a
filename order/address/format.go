package address

import (
	"encoding/json"
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"

	"orderseal/order"
)

// FoldKey is the form in which two normalised addresses are the same
// place: each field NFC, full-width forms folded to their ASCII
// counterparts, Unicode case folding (ß and SS, Σ and σ alike), white space
// folded; the result is canonical JSON, so it hashes the same everywhere.
// The vault's dedupe hash is taken over it; what it stores is the
// normalised address itself, case intact.
func FoldKey(a order.Address) []byte {
	f := func(s string) string {
		s = norm.NFC.String(s)
		s = width.Fold.String(s)
		s = cases.Fold().String(s)
		return strings.Join(strings.Fields(norm.NFC.String(s)), " ")
	}
	b, _ := json.Marshal([]string{f(a.Name), f(a.Line1), f(a.Line2), f(a.City), f(a.Region), f(a.PostalCode), f(a.Country)})
	return b
}

// Block is an address laid out as its destination writes it.
type Block struct {
	Lines []string
	Name  int // index of the recipient's line, -1 when there is none
}

// Layout lays out a for a label posted in origin (ISO 3166-1, upper case):
// the destination's line order for the script the address is written in
// (KR, JP and CN addresses in their own script run from the region down to
// the name; in Latin script, and in every other country, from the name
// down), and on an international parcel the destination country's name,
// in English capitals, as the last line (UPU). recipient, when not empty,
// is the name on the parcel; the address's own name follows it when it
// differs (a company, a c/o).
func Layout(a order.Address, recipient, origin string) Block {
	var b Block
	b.Name = -1
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" {
			b.Lines = append(b.Lines, s)
		}
	}
	names := func(suffix string) {
		if recipient = strings.TrimSpace(recipient); recipient != "" {
			b.Name = len(b.Lines)
			add(recipient + suffix)
			if !strings.EqualFold(recipient, strings.TrimSpace(a.Name)) {
				add(a.Name)
			}
			return
		}
		b.Name = len(b.Lines)
		add(a.Name + suffix)
	}
	local := rulesOf(a.Country).localOrder && (hasLocalScript(a.Line1) || hasLocalScript(a.City) || hasLocalScript(a.Region))
	switch {
	case local && a.Country == "JP":
		if a.PostalCode != "" {
			add("〒" + a.PostalCode)
		}
		add(a.Region + a.City)
		add(a.Line1)
		add(a.Line2)
		names(" 様")
	case local && a.Country == "CN":
		add(a.PostalCode)
		add(a.Region + a.City)
		add(a.Line1)
		add(a.Line2)
		names("")
	case local && a.Country == "KR":
		add(strings.TrimSpace(a.Region + " " + a.City))
		add(a.Line1)
		add(a.Line2)
		names("")
		add(a.PostalCode)
	case a.Country == "US":
		names("")
		add(a.Line1)
		add(a.Line2)
		add(strings.TrimSpace(a.City + ", " + strings.TrimSpace(a.Region+" "+a.PostalCode)))
	case a.Country == "GB":
		names("")
		add(a.Line1)
		add(a.Line2)
		add(strings.ToUpper(a.City))
		add(a.Region)
		add(a.PostalCode)
	case a.Country == "JP":
		names("")
		add(a.Line1)
		add(a.Line2)
		add(joinNonEmpty(", ", a.City, a.Region))
		add(a.PostalCode)
	case a.Country == "KR" || a.Country == "CN":
		names("")
		add(a.Line1)
		add(a.Line2)
		add(a.City)
		add(joinNonEmpty(" ", a.Region, a.PostalCode))
	default: // DE and the rest of continental Europe: postcode before city
		names("")
		add(a.Line1)
		add(a.Line2)
		add(joinNonEmpty(" ", a.PostalCode, a.City))
		add(a.Region)
	}
	if origin != "" && origin != a.Country {
		add(CountryName(a.Country))
	}
	if b.Name >= len(b.Lines) {
		b.Name = -1
	}
	return b
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}
