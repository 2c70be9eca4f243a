package order

import (
	"bytes"
	"errors"
	"testing"

	"orderseal/keygen"
	"orderseal/suite"
	"orderseal/suite/null"
	"orderseal/tstest/keys"
)

// nullKeys issues alice and the issuer keys of a null relay key center.
func nullKeys(t *testing.T) (alice, issuer *keygen.PartyKey) {
	t.Helper()
	kc := keys.CenterFor(t, keygen.Params{Suite: null.Name, System: [16]byte{0x30}, K: 8}, [32]byte{4})
	return kc.Party(t, keys.Alice), kc.Party(t, keys.Bank)
}

// A bundle seals under its sealer's suite and opens only where that suite
// may be used: the null relay suite's bundles, which anyone can read and
// forge, are refused by a process without the benchmark switch.
func TestSuiteOfBundle(t *testing.T) {
	alice, issuer := nullKeys(t)
	t.Setenv(null.EnvVar, null.EnvValue)
	b, err := Seal(loadOrder(t, "order.json"), suite.NewKeys(alice, 4), threeParties, SealOptions{Now: sealNow})
	if err != nil {
		t.Fatal(err)
	}
	if b.Suite != null.Name {
		t.Fatalf("sealed under %q, want %q", b.Suite, null.Name)
	}
	if !bytes.Contains(b.Sections[RoleIssuer].CT, []byte(`"number":"4111111111111111"`)) {
		t.Fatal("a null relay section is not the plaintext behind a zero tag")
	}
	raw, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openAt(b, suite.NewKeys(issuer, 4), RoleIssuer); err != nil {
		t.Fatalf("open with the switch on: %v", err)
	}
	// An OS1 key of the same identity does not open it: another system and suite.
	if _, err := openAt(b, vectorKeys(t).Keys(t, keys.Bank), RoleIssuer); !errors.Is(err, ErrSystem) {
		t.Errorf("an OS1 key opened a null bundle: %v", err)
	}

	t.Setenv(null.EnvVar, "")
	if _, err := ParseBundle(raw); !errors.Is(err, ErrSuite) || !errors.Is(err, suite.ErrUnavailable) {
		t.Errorf("ParseBundle without the switch: %v, want ErrSuite wrapping suite.ErrUnavailable", err)
	}
	if _, err := openAt(b, suite.NewKeys(issuer, 4), RoleIssuer); !errors.Is(err, ErrSuite) || !errors.Is(err, suite.ErrUnavailable) {
		t.Errorf("open without the switch: %v, want ErrSuite wrapping suite.ErrUnavailable", err)
	}
	if err := b.Check(); !errors.Is(err, ErrSuite) {
		t.Errorf("Check without the switch: %v", err)
	}
	if _, err := Seal(loadOrder(t, "order.json"), suite.NewKeys(alice, 4), threeParties, SealOptions{Now: sealNow}); !errors.Is(err, ErrSuite) {
		t.Errorf("seal without the switch: %v", err)
	}
	b.Suite = "OS9-UNKNOWN"
	if err := b.Check(); !errors.Is(err, ErrSuite) || !errors.Is(err, suite.ErrUnknown) {
		t.Errorf("Check of an unknown suite: %v", err)
	}
}
