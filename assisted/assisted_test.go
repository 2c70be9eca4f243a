package assisted

import (
	"errors"
	"testing"

	"bytes"
	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/keygen/center"
	"orderseal/suite"
)

const (
	tMerchant   = "merchant:shop.example"
	tConsultant = "consultant:carol"
	tCompany    = "company:callcenter.example"
	tSession    = "ses_abcdefghijklmnopqrstuvwxyz"
)

func key(t testing.TB, id string) *keygen.PartyKey {
	t.Helper()
	m, err := center.MasterFromSeed(keygen.Params{Suite: keygen.SuiteOS1, System: [16]byte{7}, K: 4}, [32]byte{7})
	if err != nil {
		t.Fatal(err)
	}
	k, err := m.Issue(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// A company signature binds every login field, the merchant and the company.
func TestCompanySignature(t *testing.T) {
	l := Login{Merchant: tMerchant, Consultant: tConsultant, Company: tCompany, Device: "desk-7",
		ShiftSeconds: 3600, Date: "2026-11-21T09:00:00Z", Nonce: "AAAAAAAAAAAAAAAAAAAAAA"}
	company, merchant := suite.NewKeys(key(t, tCompany), 4), suite.NewKeys(key(t, tMerchant), 4)
	sig, err := CompanySign(company, &l)
	if err != nil {
		t.Fatal(err)
	}
	if !VerifyCompany(merchant, &l, sig) {
		t.Fatal("a fresh signature does not verify")
	}
	for name, edit := range map[string]func(l *Login){
		"merchant":   func(l *Login) { l.Merchant = "merchant:other.example" },
		"consultant": func(l *Login) { l.Consultant = "consultant:mallory" },
		"company":    func(l *Login) { l.Company = "company:other.example" },
		"device":     func(l *Login) { l.Device = "desk-8" },
		"shift":      func(l *Login) { l.ShiftSeconds++ },
		"date":       func(l *Login) { l.Date = "2026-11-21T09:00:01Z" },
		"nonce":      func(l *Login) { l.Nonce = "AAAAAAAAAAAAAAAAAAAAAQ" },
	} {
		cp := l
		edit(&cp)
		if VerifyCompany(merchant, &cp, sig) {
			t.Errorf("a signature verifies with another %s", name)
		}
	}
	if _, err := CompanySign(suite.NewKeys(key(t, tConsultant), 4), &l); err == nil {
		t.Error("a consultant signed for the company")
	}
}

func TestSecretAndProof(t *testing.T) {
	merchant, consultant := key(t, tMerchant), key(t, tConsultant)
	secret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	type session struct{ session, device string }
	s := session{tSession, "desk-7"}
	sealed, err := SealSecret(suite.NewKeys(merchant, 4), tConsultant, s.session, s.device, secret)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenSecret(suite.NewKeys(consultant, 4), tMerchant, s.session, s.device, &sealed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("OpenSecret = %x, %v", got, err)
	}
	// The sealed identifier is bound to its session, device and consultant.
	for name, cp := range map[string]session{
		"device":  {tSession, "desk-8"},
		"session": {"ses_bbcdefghijklmnopqrstuvwxyz", "desk-7"},
	} {
		if _, err := OpenSecret(suite.NewKeys(consultant, 4), tMerchant, cp.session, cp.device, &sealed); !errors.Is(err, ErrProof) {
			t.Errorf("sealed id with another %s: %v", name, err)
		}
	}
	if _, err := OpenSecret(suite.NewKeys(key(t, "consultant:mallory"), 4), tMerchant, s.session, s.device, &sealed); !errors.Is(err, ErrProof) {
		t.Errorf("another consultant opened the identifier: %v", err)
	}
	if _, err := OpenSecret(suite.NewKeys(consultant, 4), tMerchant, s.session, s.device, nil); !errors.Is(err, ErrProof) {
		t.Errorf("another consultant opened the identifier: %v", err)
	}

	hH := [32]byte{1, 2, 3}
	proof, err := Prove(suite.NewKeys(consultant, 4), tMerchant, tSession, "desk-7", secret, hH)
	if err != nil {
		t.Fatal(err)
	}
	back, err := OpenProof(suite.NewKeys(merchant, 4), tConsultant, tSession, "desk-7", hH, proof)
	if err != nil || SecretHash(back) != SecretHash(secret) {
		t.Fatalf("OpenProof = %x, %v", back, err)
	}
	flip := func(s string) string { b, _ := wire.UnB64(s); b[len(b)-1] ^= 1; return wire.B64(b) }
	cases := []struct {
		name                string
		consultant, session string
		device              string
		hH                  [32]byte
		proof               Sealed
	}{
		{"other bundle", tConsultant, tSession, "desk-7", [32]byte{9}, proof},
		{"other device", tConsultant, tSession, "desk-8", hH, proof},
		{"other session", tConsultant, "ses_bbcdefghijklmnopqrstuvwxyz", "desk-7", hH, proof},
		{"other consultant", "consultant:mallory", tSession, "desk-7", hH, proof},
		{"flipped ciphertext", tConsultant, tSession, "desk-7", hH, Sealed{Nonce: proof.Nonce, CT: flip(proof.CT)}},
		{"flipped nonce", tConsultant, tSession, "desk-7", hH, Sealed{Nonce: flip(proof.Nonce), CT: proof.CT}},
		{"short ciphertext", tConsultant, tSession, "desk-7", hH, Sealed{Nonce: proof.Nonce, CT: "AAAA"}},
		{"empty", tConsultant, tSession, "desk-7", hH, Sealed{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := OpenProof(suite.NewKeys(merchant, 4), c.consultant, c.session, c.device, c.hH, c.proof); !errors.Is(err, ErrProof) {
				t.Fatalf("got %v, want ErrProof", err)
			}
		})
	}
}
