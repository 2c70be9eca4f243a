package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

var (
	cvcRe  = regexp.MustCompile(`^[0-9]{3}$`)
	cvc4Re = regexp.MustCompile(`^[0-9]{4}$`)
)

// TestCVC: the derived CVC matches vectors computed outside Go (testdata),
// is 3 digits, stable, differs across cards, expiries and card keys, and
// needs the card key.
func TestCVC(t *testing.T) {
	data, err := os.ReadFile("testdata/cvc.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Keys    map[string]string
		Vectors []struct{ Key, Number, Expiry, CVC string }
	}
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) == 0 || len(f.Keys) < 2 {
		t.Fatal("no vectors loaded")
	}
	keys := map[string]*SubKeys{}
	for name, text := range f.Keys {
		ks, err := DeriveSubKeys(keyFrom(t, text))
		if err != nil {
			t.Fatal(err)
		}
		keys[name] = ks
	}
	type card struct{ number, expiry string }
	byKey := map[string]map[card]string{}
	for _, v := range f.Vectors {
		ks := keys[v.Key]
		if ks == nil {
			t.Fatalf("vector names an unknown key %q", v.Key)
		}
		got, err := CVC(ks, v.Number, v.Expiry)
		if re := map[bool]*regexp.Regexp{false: cvcRe, true: cvc4Re}[strings.HasPrefix(v.Number, "37")]; !re.MatchString(v.CVC) {
			t.Errorf("vector %s: CVC %q of the wrong length for its brand", v.Number, v.CVC)
		}
		if err != nil || got != v.CVC {
			t.Errorf("CVC(%s, %s) under %s = %q, %v; want %q", v.Number, v.Expiry, v.Key, got, err, v.CVC)
		}
		if again, _ := CVC(ks, v.Number, v.Expiry); again != got {
			t.Errorf("CVC not stable: %q then %q", got, again)
		}
		if byKey[v.Key] == nil {
			byKey[v.Key] = map[card]string{}
		}
		byKey[v.Key][card{v.Number, v.Expiry}] = got
	}
	k1, k2 := byKey["k1"], byKey["k2"]
	if k1[card{visa, "2031-12"}] == k1[card{visa, "2032-01"}] || k1[card{visa, "2031-12"}] == k1[card{master, "2031-12"}] {
		t.Error("the CVC does not depend on the number or the expiry")
	}
	for c, v := range k1 {
		if k2[c] == v {
			t.Errorf("%v: the same CVC under two card keys", c)
		}
	}

	// Over many cards: always 3 digits, spread over the thousand values.
	ks := keys["k1"]
	seen := map[string]bool{}
	for i := range 400 {
		n := withLuhn(fmt.Sprintf("400000%09d", i*7919))
		got, err := CVC(ks, n, "2031-12")
		if err != nil || !cvcRe.MatchString(got) {
			t.Fatalf("CVC(%s) = %q, %v", n, got, err)
		}
		seen[got] = true
	}
	if len(seen) < 250 { // about 330 expected for 400 draws from 1000
		t.Fatalf("only %d distinct CVCs over 400 cards", len(seen))
	}

	// It needs the key, a canonical number and an expiry; errors never quote the number.
	if _, err := CVC(nil, visa, "2031-12"); !errors.Is(err, ErrNoCardKey) {
		t.Fatalf("CVC without a card key: %v", err)
	}
	for _, in := range []struct{ number, expiry string }{
		{"4111 1111 1111 1111", "2031-12"}, {"4111111111111112", "2031-12"}, {"", "2031-12"},
		{visa, "12/31"}, {visa, ""}, {visa, "2031-13"}, {"9111111111111110", "2031-12"},
	} {
		_, err := CVC(ks, in.number, in.expiry)
		if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "1111") {
			t.Errorf("CVC(%q, %q): %v", in.number, in.expiry, err)
		}
	}
}
