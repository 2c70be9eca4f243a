package address

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"orderseal/order"
)

// FuzzNormalize: any input either is refused with a code or normalises to
// an address that normalises to itself, folds the same, and lays out.
func FuzzNormalize(f *testing.F) {
	n := 0
	for _, c := range normalizeCases(f) {
		b, err := json.Marshal(c.In)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		n++
	}
	if n == 0 {
		f.Fatal("no seed loaded")
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var a order.Address
		if json.Unmarshal(data, &a) != nil {
			return
		}
		got, err := Normalize(a)
		if err != nil {
			if CodeOf(err) == "" {
				t.Fatalf("refusal without a code: %v", err)
			}
			return
		}
		again, err := Normalize(got)
		if err != nil || again != got {
			t.Fatalf("not idempotent: %+v → %+v, %v", got, again, err)
		}
		if !utf8.Valid(FoldKey(got)) {
			t.Fatalf("fold key is not UTF-8: %q", FoldKey(got))
		}
		if b := Layout(got, "", "DE"); len(b.Lines) == 0 {
			t.Fatal("empty layout")
		}
	})
}

// FuzzPhone: Phone never panics, and what it accepts is E.164 that it
// accepts again unchanged.
func FuzzPhone(f *testing.F) {
	for _, s := range []string{"+821012345678", "010-1234-5678", "(415) 555-2671", "+44 20 7946 0958", "call me", "+"} {
		f.Add(s, "KR")
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, raw, region string) {
		got, err := Phone(raw, region)
		if err != nil {
			return
		}
		again, err := Phone(got, "")
		if err != nil || again != got {
			t.Fatalf("Phone(%q) = %q, again %q, %v", raw, got, again, err)
		}
	})
}
