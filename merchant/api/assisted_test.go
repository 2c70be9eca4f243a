package api

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"orderseal/internal/strictjson"
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

var testKeys = map[string]*keygen.PartyKey{}

func key(t testing.TB, id string) *keygen.PartyKey {
	t.Helper()
	if k, ok := testKeys[id]; ok {
		return k
	}
	m, err := center.MasterFromSeed(keygen.Params{Suite: keygen.SuiteOS1, System: [16]byte{7}, K: 4}, [32]byte{7})
	if err != nil {
		t.Fatal(err)
	}
	k, err := m.Issue(id)
	if err != nil {
		t.Fatal(err)
	}
	testKeys[id] = k
	return k
}

var loginNow = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

func TestLoginCompanySignature(t *testing.T) {
	r, err := NewLogin(suite.NewKeys(key(t, tCompany), 4), tMerchant, tConsultant, "desk-7", 8*time.Hour, loginNow)
	if err != nil {
		t.Fatal(err)
	}
	if !r.VerifyCompany(suite.NewKeys(key(t, tMerchant), 4)) {
		t.Fatal("a fresh login does not verify")
	}
	// Every signed field matters; a company's signature for one merchant
	// does not verify at another; a consultant cannot sign for the company.
	cases := []struct {
		name string
		edit func(r *LoginRequest)
		key  string
	}{
		{"consultant", func(r *LoginRequest) { r.Consultant = "consultant:mallory" }, tMerchant},
		{"company", func(r *LoginRequest) { r.Company = "company:other" }, tMerchant},
		{"device", func(r *LoginRequest) { r.Device = "desk-8" }, tMerchant},
		{"shift", func(r *LoginRequest) { r.ShiftSeconds++ }, tMerchant},
		{"date", func(r *LoginRequest) { r.Date = loginNow.Add(time.Second).Format(time.RFC3339) }, tMerchant},
		{"nonce", func(r *LoginRequest) { r.Nonce = wire.B64(make([]byte, 16)) }, tMerchant},
		{"signature missing", func(r *LoginRequest) { r.CompanySignature = "" }, tMerchant},
		{"signature flipped", func(r *LoginRequest) {
			b, _ := wire.UnB64(r.CompanySignature)
			b[0] ^= 1
			r.CompanySignature = wire.B64(b)
		}, tMerchant},
		{"another merchant", func(*LoginRequest) {}, "merchant:other.example"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cp := *r
			c.edit(&cp)
			if cp.VerifyCompany(suite.NewKeys(key(t, c.key), 4)) {
				t.Fatal("verified")
			}
		})
	}
	forged, err := NewLogin(suite.NewKeys(key(t, tConsultant), 4), tMerchant, tConsultant, "desk-7", time.Hour, loginNow)
	if err == nil && forged.VerifyCompany(suite.NewKeys(key(t, tMerchant), 4)) {
		t.Fatal("a consultant's own key passed as the company's")
	}
}

func TestLoginCheck(t *testing.T) {
	good, err := NewLogin(suite.NewKeys(key(t, tCompany), 4), tMerchant, tConsultant, "desk-7", time.Hour, loginNow)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(r *LoginRequest){
		"cardholder as consultant": func(r *LoginRequest) { r.Consultant = "cardholder:alice" },
		"merchant as company":      func(r *LoginRequest) { r.Company = "merchant:shop" },
		"empty device":             func(r *LoginRequest) { r.Device = "" },
		"device upper case":        func(r *LoginRequest) { r.Device = "Desk" },
		"device too long":          func(r *LoginRequest) { r.Device = string(bytes.Repeat([]byte("d"), 65)) },
		"zero shift":               func(r *LoginRequest) { r.ShiftSeconds = 0 },
		"day-long shift":           func(r *LoginRequest) { r.ShiftSeconds = 86401 },
		"date":                     func(r *LoginRequest) { r.Date = "yesterday" },
		"short nonce":              func(r *LoginRequest) { r.Nonce = "AAAA" },
		"padded signature":         func(r *LoginRequest) { r.CompanySignature += "=" },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			r := *good
			edit(&r)
			if r.Check() == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func FuzzLoginRequest(f *testing.F) {
	r, err := NewLogin(suite.NewKeys(key(f, tCompany), 4), tMerchant, tConsultant, "desk-7", time.Hour, loginNow)
	if err != nil {
		f.Fatal(err)
	}
	good, _ := json.Marshal(r)
	f.Add(good)
	seeds, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzLoginRequest", "*"))
	if len(seeds) == 0 {
		f.Fatal("no seed corpus under testdata/fuzz/FuzzLoginRequest")
	}
	for _, p := range seeds {
		if _, err := os.Stat(p); err != nil {
			f.Fatal(err)
		}
	}
	merchant := key(f, tMerchant)
	f.Fuzz(func(t *testing.T, data []byte) {
		var r LoginRequest
		if strictjson.Decode(data, &r, MaxLoginBody) != nil {
			return
		}
		if r.Check() != nil {
			return
		}
		// A request that checks re-encodes to one that checks the same way.
		out, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		var back LoginRequest
		if err := strictjson.Decode(out, &back, MaxLoginBody); err != nil || back != r {
			t.Fatalf("round trip: %v", err)
		}
		_ = r.VerifyCompany(suite.NewKeys(merchant, 4))
	})
}
