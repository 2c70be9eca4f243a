package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"orderseal/assisted"
	"orderseal/internal/strictjson"
	"orderseal/internal/wire"
	"orderseal/suite"
	"orderseal/tstest/keys"
)

const tSession = "ses_abcdefghijklmnopqrstuvwxyz"

var loginNow = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

func TestLoginCompanySignature(t *testing.T) {
	r, err := NewLogin(keys.Keys(t, keys.CallCenter), testDevice(t), keys.Shop, keys.Carol, "desk-7", 8*time.Hour, loginNow)
	if err != nil {
		t.Fatal(err)
	}
	if !r.VerifyCompany(keys.Keys(t, keys.Shop)) {
		t.Fatal("a fresh login does not verify")
	}
	// Every signed field matters; a company's signature for one merchant
	// does not verify at another; a consultant cannot sign for the company.
	cases := []struct {
		name string
		edit func(r *LoginRequest)
		key  string
	}{
		{"consultant", func(r *LoginRequest) { r.Consultant = "consultant:mallory" }, keys.Shop},
		{"company", func(r *LoginRequest) { r.Company = "company:other" }, keys.Shop},
		{"device", func(r *LoginRequest) { r.Device = "desk-8" }, keys.Shop},
		{"shift", func(r *LoginRequest) { r.ShiftSeconds++ }, keys.Shop},
		{"date", func(r *LoginRequest) { r.Date = loginNow.Add(time.Second).Format(time.RFC3339) }, keys.Shop},
		{"nonce", func(r *LoginRequest) { r.Nonce = wire.B64(make([]byte, 16)) }, keys.Shop},
		{"signature missing", func(r *LoginRequest) { r.CompanySignature = "" }, keys.Shop},
		{"signature flipped", func(r *LoginRequest) {
			b, _ := wire.UnB64(r.CompanySignature)
			b[0] ^= 1
			r.CompanySignature = wire.B64(b)
		}, keys.Shop},
		{"another merchant", func(*LoginRequest) {}, "merchant:other.example"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cp := *r
			c.edit(&cp)
			if cp.VerifyCompany(keys.Keys(t, c.key)) {
				t.Fatal("verified")
			}
		})
	}
	forged, err := NewLogin(keys.Keys(t, keys.Carol), testDevice(t), keys.Shop, keys.Carol, "desk-7", time.Hour, loginNow)
	if err == nil && forged.VerifyCompany(keys.Keys(t, keys.Shop)) {
		t.Fatal("a consultant's own key passed as the company's")
	}
}

func TestLoginCheck(t *testing.T) {
	good, err := NewLogin(keys.Keys(t, keys.CallCenter), testDevice(t), keys.Shop, keys.Carol, "desk-7", time.Hour, loginNow)
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
	r, err := NewLogin(keys.Keys(f, keys.CallCenter), testDevice(f), keys.Shop, keys.Carol, "desk-7", time.Hour, loginNow)
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
	merchant := keys.Party(f, keys.Shop)
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

// testDevice is the test terminal's device key, the same on each call.
func testDevice(t testing.TB) *assisted.DeviceKey {
	t.Helper()
	seed := sha256.Sum256([]byte("test device desk-7"))
	k, err := assisted.NewDeviceKey(bytes.NewReader(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
