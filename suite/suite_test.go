package suite_test

import (
	"errors"
	"testing"

	"orderseal/keygen"
	"orderseal/suite"
	"orderseal/suite/null"
	"orderseal/suite/os1"
	"orderseal/suite/os2"
	"orderseal/tstest/keys"
)

func TestRegistry(t *testing.T) {
	t.Setenv(null.EnvVar, "")
	for _, tc := range []struct {
		name string
		want error
	}{
		{os1.Name, nil},
		{os2.Name, nil},
		{null.Name, suite.ErrUnavailable},
		{"OS9-UNKNOWN", suite.ErrUnknown},
		{"", suite.ErrUnknown},
	} {
		s, err := suite.ByName(tc.name)
		if !errors.Is(err, tc.want) || (err == nil) != (s != nil) {
			t.Errorf("ByName(%q) = %v, %v; want %v", tc.name, s, err, tc.want)
		}
		if err == nil && s.Name() != tc.name {
			t.Errorf("ByName(%q).Name() = %q", tc.name, s.Name())
		}
	}
	// OS2 is the default for sealing (DESIGN.md §2.1 "Transition").
	if suite.Default().Name() != os2.Name {
		t.Errorf("default suite %s, want %s", suite.Default().Name(), os2.Name)
	}
	seen := map[string]bool{}
	for _, n := range suite.Names() {
		if seen[n] || !keygen.ValidSuiteName(n) {
			t.Errorf("suite name %q repeated or malformed", n)
		}
		seen[n] = true
	}
	t.Setenv(null.EnvVar, null.EnvValue)
	if _, err := suite.ByName(null.Name); err != nil {
		t.Errorf("null suite with %s set: %v", null.EnvVar, err)
	}
	t.Setenv(null.EnvVar, "yes")
	if _, err := suite.ByName(null.Name); !errors.Is(err, suite.ErrUnavailable) {
		t.Errorf("null suite with %s=yes: %v", null.EnvVar, err)
	}
}

// testKeys issues ids' keys from a test key center of suiteName.
func testKeys(t *testing.T, suiteName string, ids ...string) []*keygen.PartyKey {
	t.Helper()
	kc := keys.CenterFor(t, keygen.Params{Suite: suiteName, System: [16]byte{1, 2, 3}, K: 8}, [32]byte{})
	var out []*keygen.PartyKey
	for _, id := range ids {
		out = append(out, kc.Party(t, id))
	}
	return out
}

// Both suites give both ends the same K, and the null suite's K is not OS1's.
func TestPairwiseAgrees(t *testing.T) {
	t.Setenv(null.EnvVar, null.EnvValue)
	const a, b = "cardholder:alice@example.org", "merchant:shop.example"
	var fps []string
	for _, name := range []string{os1.Name, null.Name} {
		ks := testKeys(t, name, a, b)
		ab, err := suite.Pairwise(ks[0], b)
		if err != nil {
			t.Fatal(err)
		}
		ba, err := suite.NewKeys(ks[1], 2).Pairwise(a)
		if err != nil {
			t.Fatal(err)
		}
		if !ab.Equal(&ba) {
			t.Errorf("%s: K(a,b) ≠ K(b,a)", name)
		}
		if _, err := suite.Pairwise(ks[0], a); !errors.Is(err, keygen.ErrSameIdentity) {
			t.Errorf("%s: K(a,a) = %v", name, err)
		}
		fps = append(fps, ab.Fingerprint())
	}
	if fps[0] == fps[1] {
		t.Error("the null suite derives OS1's key")
	}
}

// A key of a suite this process cannot use derives nothing.
func TestUnusableSuiteKey(t *testing.T) {
	t.Setenv(null.EnvVar, "")
	ks := testKeys(t, "OS9-UNKNOWN", "cardholder:alice@example.org")
	if _, err := suite.For(ks[0]); !errors.Is(err, suite.ErrUnknown) {
		t.Errorf("For = %v", err)
	}
	if _, err := suite.NewKeys(ks[0], 2).Pairwise("merchant:shop.example"); !errors.Is(err, suite.ErrUnknown) {
		t.Errorf("NewKeys(…).Pairwise = %v", err)
	}
	ks = testKeys(t, null.Name, "cardholder:alice@example.org")
	if _, err := suite.Pairwise(ks[0], "merchant:shop.example"); !errors.Is(err, suite.ErrUnavailable) {
		t.Errorf("null key without %s: %v", null.EnvVar, err)
	}
}

// The null AEAD keeps OS1's sizes and refuses anything but its own zero tag.
func TestNullAEAD(t *testing.T) {
	var k keygen.Pairwise
	aead, err := null.Suite{}.SectionAEAD(&k, nil, "issuer", "ord_x")
	if err != nil {
		t.Fatal(err)
	}
	o := os1.Suite{}
	if aead.NonceSize() != o.NonceSize() || aead.Overhead() != o.Overhead() {
		t.Fatalf("sizes %d/%d, want %d/%d", aead.NonceSize(), aead.Overhead(), o.NonceSize(), o.Overhead())
	}
	nonce := make([]byte, aead.NonceSize())
	ct := aead.Seal(nil, nonce, []byte("plain"), nil)
	if pt, err := aead.Open(nil, nonce, ct, nil); err != nil || string(pt) != "plain" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	ct[len(ct)-1] = 1
	if _, err := aead.Open(nil, nonce, ct, nil); err == nil {
		t.Error("a non-zero tag opened")
	}
	if _, err := aead.Open(nil, nonce, ct[:3], nil); err == nil {
		t.Error("a short section opened")
	}
}
