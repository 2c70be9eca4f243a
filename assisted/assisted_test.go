package assisted

import (
	"bytes"
	"errors"
	"testing"

	"orderseal/internal/wire"
	"orderseal/suite"
	"orderseal/tstest/keys"
)

const tSession = "ses_abcdefghijklmnopqrstuvwxyz"

// A company signature binds every login field, the merchant and the company.
func TestCompanySignature(t *testing.T) {
	l := Login{Merchant: keys.Shop, Consultant: keys.Carol, Company: keys.CallCenter, Device: "desk-7",
		ShiftSeconds: 3600, Date: "2026-11-21T09:00:00Z", Nonce: "AAAAAAAAAAAAAAAAAAAAAA"}
	company, merchant := keys.Keys(t, keys.CallCenter), keys.Keys(t, keys.Shop)
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
	if _, err := CompanySign(keys.Keys(t, keys.Carol), &l); err == nil {
		t.Error("a consultant signed for the company")
	}
}

func TestSecretAndProof(t *testing.T) {
	merchant, consultant := keys.Party(t, keys.Shop), keys.Party(t, keys.Carol)
	secret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	type session struct{ session, device string }
	s := session{tSession, "desk-7"}
	sealed, err := SealSecret(suite.NewKeys(merchant, 4), keys.Carol, s.session, s.device, secret)
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenSecret(suite.NewKeys(consultant, 4), keys.Shop, s.session, s.device, &sealed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("OpenSecret = %x, %v", got, err)
	}
	// The sealed identifier is bound to its session, device and consultant.
	for name, cp := range map[string]session{
		"device":  {tSession, "desk-8"},
		"session": {"ses_bbcdefghijklmnopqrstuvwxyz", "desk-7"},
	} {
		if _, err := OpenSecret(suite.NewKeys(consultant, 4), keys.Shop, cp.session, cp.device, &sealed); !errors.Is(err, ErrProof) {
			t.Errorf("sealed id with another %s: %v", name, err)
		}
	}
	if _, err := OpenSecret(keys.Keys(t, "consultant:mallory"), keys.Shop, s.session, s.device, &sealed); !errors.Is(err, ErrProof) {
		t.Errorf("another consultant opened the identifier: %v", err)
	}
	if _, err := OpenSecret(suite.NewKeys(consultant, 4), keys.Shop, s.session, s.device, nil); !errors.Is(err, ErrProof) {
		t.Errorf("another consultant opened the identifier: %v", err)
	}

	hH := [32]byte{1, 2, 3}
	proof, err := Prove(suite.NewKeys(consultant, 4), keys.Shop, tSession, "desk-7", secret, hH)
	if err != nil {
		t.Fatal(err)
	}
	back, err := OpenProof(suite.NewKeys(merchant, 4), keys.Carol, tSession, "desk-7", hH, proof)
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
		{"other bundle", keys.Carol, tSession, "desk-7", [32]byte{9}, proof},
		{"other device", keys.Carol, tSession, "desk-8", hH, proof},
		{"other session", keys.Carol, "ses_bbcdefghijklmnopqrstuvwxyz", "desk-7", hH, proof},
		{"other consultant", "consultant:mallory", tSession, "desk-7", hH, proof},
		{"flipped ciphertext", keys.Carol, tSession, "desk-7", hH, Sealed{Nonce: proof.Nonce, CT: flip(proof.CT)}},
		{"flipped nonce", keys.Carol, tSession, "desk-7", hH, Sealed{Nonce: flip(proof.Nonce), CT: proof.CT}},
		{"short ciphertext", keys.Carol, tSession, "desk-7", hH, Sealed{Nonce: proof.Nonce, CT: "AAAA"}},
		{"empty", keys.Carol, tSession, "desk-7", hH, Sealed{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := OpenProof(suite.NewKeys(merchant, 4), c.consultant, c.session, c.device, c.hH, c.proof); !errors.Is(err, ErrProof) {
				t.Fatalf("got %v, want ErrProof", err)
			}
		})
	}
}
