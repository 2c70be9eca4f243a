package iso4217

import (
	"errors"
	"slices"
	"testing"
)

// The generated table is four bytes an entry, three upper-case letters and
// a digit, sorted and without repeats: what Listed's binary search needs.
func TestTableShape(t *testing.T) {
	if len(table)%4 != 0 || len(table) < 4*150 {
		t.Fatalf("table of %d bytes", len(table))
	}
	prev := ""
	for i := 0; i < len(table); i += 4 {
		e := table[i : i+4]
		for _, c := range e[:3] {
			if c < 'A' || c > 'Z' {
				t.Fatalf("entry %q", e)
			}
		}
		if e[3] < '0' || e[3] > '9' || e[:3] <= prev {
			t.Fatalf("entry %q after %q", e, prev)
		}
		prev = e[:3]
	}
}

func TestDigits(t *testing.T) {
	for code, want := range map[string]int{"JPY": 0, "EUR": 2, "BHD": 3, "AED": 2, "ZWL": 2} {
		if _, listed := Listed(code); !listed {
			continue // a code the library dropped
		}
		if d, err := Digits(code); err != nil || d != want {
			t.Errorf("Digits(%q) = %d, %v; want %d", code, d, err, want)
		}
	}
	for _, code := range []string{"", "AAA", "ZZZ", "eur", "CLF", "EURO", "XTS"} {
		if _, err := Digits(code); !errors.Is(err, ErrUnsupported) {
			t.Errorf("Digits(%q): %v, want ErrUnsupported", code, err)
		}
	}
	if c := Codes(); !slices.IsSorted(c) || slices.Contains(c, "CLF") || !slices.Contains(c, "EUR") {
		t.Errorf("Codes() = %v", c)
	}
}
