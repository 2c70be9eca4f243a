package order

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"orderseal/keygen"
	"orderseal/suite"
	"orderseal/suite/os2"
	"orderseal/tstest/keys"
)

// bundleSeeds loads every bundle kept in testdata: the vectors' bundles
// (OS1 and OS2) and the files under testdata/fuzz-bundles. A seed glob that finds nothing fails.
func bundleSeeds(f *testing.F) [][]byte {
	f.Helper()
	var seeds [][]byte
	data, err := os.ReadFile(filepath.Join("testdata", "bundle_v1.json"))
	if err != nil {
		f.Fatal(err)
	}
	var v struct {
		Bundle json.RawMessage `json:"bundle"`
	}
	if err := json.Unmarshal(data, &v); err != nil || len(v.Bundle) == 0 {
		f.Fatalf("bundle_v1.json holds no bundle: %v", err)
	}
	seeds = append(seeds, v.Bundle)
	data, err = os.ReadFile(os2VecPath)
	if err != nil {
		f.Fatal(err)
	}
	v.Bundle = nil
	if err := json.Unmarshal(data, &v); err != nil || len(v.Bundle) == 0 {
		f.Fatalf("bundle_os2.json holds no bundle: %v", err)
	}
	seeds = append(seeds, v.Bundle)
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzz-bundles", "*.json"))
	if len(files) == 0 {
		f.Fatal("no seed files in testdata/fuzz-bundles")
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}

// FuzzParseBundle: whatever parses re-encodes to a bundle with the same header hash.
func FuzzParseBundle(f *testing.F) {
	for _, s := range bundleSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data)
		if err != nil {
			return
		}
		out, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseBundle(out)
		if err != nil {
			t.Fatalf("re-encoded bundle does not parse: %v", err)
		}
		if again.HeaderHash() != b.HeaderHash() {
			t.Fatal("header hash changed across a round trip")
		}
	})
}

// FuzzOpen: no input makes Open panic, and nothing opens unless it is the
// genuine section (the only way to authenticate is the cardholder's key).
func FuzzOpen(f *testing.F) {
	for _, s := range bundleSeeds(f) {
		f.Add(s, uint8(0))
	}
	data, _ := os.ReadFile(filepath.Join("testdata", "bundle_v1.json"))
	var v struct {
		Keys map[string]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		f.Fatal(err)
	}
	roles := []Role{RoleMerchant, RoleIssuer, RoleCarrier, RoleVault}
	ids := []string{keys.Shop, keys.Bank, keys.Parcel, keys.Vault}
	var partyKeys []*keygen.PartyKey
	for _, id := range ids {
		k, err := keygen.ParsePartyKey(v.Keys[id])
		if err != nil {
			f.Fatal(err)
		}
		partyKeys = append(partyKeys, k)
	}
	// The OS2 vector's recipients, with their KEM secrets.
	var v2 os2Vector
	data, _ = os.ReadFile(os2VecPath)
	if err := json.Unmarshal(data, &v2); err != nil {
		f.Fatal(err)
	}
	var os2Keys []Keyring
	for _, id := range ids {
		k, err := keygen.ParsePartyKey(v2.Keys[id])
		if err != nil {
			f.Fatal(err)
		}
		seed, _ := hex.DecodeString(v2.KEMSeeds[id])
		kem, err := os2.KEMKeyFromSeed(seed)
		if err != nil {
			f.Fatal(err)
		}
		os2Keys = append(os2Keys, suite.WithKEM(suite.NewKeys(k, 4), kem))
	}
	now := time.Date(2026, time.November, 1, 10, 1, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		b, err := ParseBundle(data)
		if err != nil {
			return
		}
		i := int(which) % len(roles)
		var key Keyring = suite.NewKeys(partyKeys[i], 4)
		at := now
		if b.Suite == os2.Name {
			key, at = os2Keys[i], os2Now.Add(time.Minute)
		}
		s, err := Open(b, key, roles[i], OpenOptions{Now: at})
		if err == nil && (s.Role != roles[i] || s.OrderID != b.OrderID) {
			t.Fatalf("opened a section that names %s/%s", s.Role, s.OrderID)
		}
	})
}
