package order

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orderseal/tstest/keys"
)

func TestDefaultPolicies(t *testing.T) {
	ps := DefaultPolicies()
	if err := ps.Check(); err != nil {
		t.Fatal(err)
	}
	for country, want := range map[string]string{"KR": "kr-2026-12", "JP": "jp-2026-12", "CN": "cn-2026-12",
		"DE": "eu-2026-12", "US": "default-2026-12", "GB": "default-2026-12", "ZZ": "default-2026-12"} {
		if got := ps.For(country); got == nil || got.ID != want {
			t.Errorf("For(%s) = %v, want %s", country, got, want)
		}
	}
	kr := ps.For("KR")
	if !kr.sees(RoleCarrier, FieldCustomsCode) || kr.Require[FieldCustomsCode] != RequireImport || kr.Require[FieldRecipientPhone] != RequireAlways {
		t.Errorf("KR policy: %+v", kr)
	}
	if ps.For("US").sees(RoleCarrier, FieldCustomsCode) {
		t.Error("the default policy sends the customs code")
	}
	// Copies: changing one changes no other.
	kr.Fields[FieldCardNumber] = append(kr.Fields[FieldCardNumber], RoleMerchant)
	if DefaultPolicies().For("KR").sees(RoleMerchant, FieldCardNumber) {
		t.Fatal("DefaultPolicies hands out shared policies")
	}
}

// TestPolicyHashes holds Hash to the vector: each embedded policy's hash,
// and that key order and role order in the JSON do not count.
func TestPolicyHashes(t *testing.T) {
	path := filepath.Join("testdata", "policy_hashes.json")
	ps := DefaultPolicies()
	if *update {
		m := map[string]string{}
		for _, p := range ps.Policies {
			h := p.Hash()
			m[p.ID] = hex.EncodeToString(h[:])
		}
		out, _ := json.MarshalIndent(map[string]any{"comment": "SHA-256 policy hashes of policies_default.json (PROTOCOL.md §9.9); made by go test ./order -run TestPolicyHashes -update", "hashes": m}, "", " ")
		if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Hashes map[string]string }
	if err := json.Unmarshal(data, &v); err != nil || len(v.Hashes) != len(ps.Policies) {
		t.Fatalf("vector: %d hashes, %v", len(v.Hashes), err)
	}
	for _, p := range ps.Policies {
		h := p.Hash()
		if hex.EncodeToString(h[:]) != v.Hashes[p.ID] {
			t.Errorf("%s: hash %x, vector %s", p.ID, h, v.Hashes[p.ID])
		}
	}
	a := &Policy{ID: "x", Countries: []string{"KR", "JP"}, Fields: map[string][]Role{FieldTotal: {RoleMerchant, RoleIssuer}}}
	b := &Policy{ID: "x", Countries: []string{"JP", "KR"}, Fields: map[string][]Role{FieldTotal: {RoleIssuer, RoleMerchant}}}
	if a.Hash() != b.Hash() {
		t.Error("order of countries or roles changes the hash")
	}
	for _, c := range []*Policy{
		{ID: "y", Countries: a.Countries, Fields: a.Fields},
		{ID: "x", Countries: []string{"KR"}, Fields: a.Fields},
		{ID: "x", Countries: a.Countries, Fields: map[string][]Role{FieldTotal: {RoleMerchant}}},
		{ID: "x", Countries: a.Countries, Fields: a.Fields, Require: map[string]string{FieldTotal: RequireAlways}},
	} {
		if c.Hash() == a.Hash() {
			t.Errorf("%+v hashes as %+v", c, a)
		}
	}
}

func TestPolicySetRefuses(t *testing.T) {
	good := string(defaultPoliciesJSON)
	for name, in := range map[string]string{
		"no default":       strings.Replace(good, `"countries": ["*"]`, `"countries": ["FR"]`, 1),
		"country twice":    strings.Replace(good, `"countries": ["JP"]`, `"countries": ["KR"]`, 1),
		"id twice":         strings.Replace(good, `"id": "jp-2026-12"`, `"id": "kr-2026-12"`, 1),
		"bad id":           strings.Replace(good, `"id": "jp-2026-12"`, `"id": "JP 2026"`, 1),
		"bad country":      strings.Replace(good, `"countries": ["JP"]`, `"countries": ["jp"]`, 1),
		"bad requirement":  strings.Replace(good, `{"recipient.phone": "always"}`, `{"recipient.phone": "sometimes"}`, 1),
		"required nowhere": strings.Replace(good, `{"recipient.phone": "always"}`, `{"recipient.customs_code": "always"}`, 1),
		"customs to shop":  strings.Replace(good, `"recipient.customs_code": ["carrier"]`, `"recipient.customs_code": ["carrier", "merchant"]`, 1),
		"empty":            `{"policies":[]}`,
	} {
		if in == good {
			t.Fatalf("%s: mutation did not apply", name)
		}
		if _, err := ParsePolicySet([]byte(in)); !errors.Is(err, ErrPolicy) {
			t.Errorf("%s: %v, want ErrPolicy", name, err)
		}
	}
}

func TestCheckOrder(t *testing.T) {
	kr := DefaultPolicies().For("KR")
	o := loadOrder(t, "order.json")
	o.Recipient.CustomsCode = ""
	if err := kr.CheckOrder(o, "DE", "KR"); err == nil || !strings.Contains(err.Error(), FieldCustomsCode) {
		t.Fatalf("an import to KR without customs code: %v", err)
	}
	if err := kr.CheckOrder(o, "KR", "KR"); err != nil {
		t.Fatalf("a domestic KR parcel: %v", err)
	}
	o.Recipient.CustomsCode = "P123456789012"
	if err := kr.CheckOrder(o, "DE", "KR"); err != nil {
		t.Fatal(err)
	}
	o.Recipient.Phone = ""
	if err := kr.CheckOrder(o, "KR", "KR"); err == nil {
		t.Fatal("KR without the recipient's phone")
	}
}

// TestSealBindsPolicy: a bundle sealed under a published policy names it
// in the header; the customs code reaches the carrier alone; changing the
// header's policy id or hash, or dropping it, shuts every section.
func TestSealBindsPolicy(t *testing.T) {
	vc := vectorKeys(t)
	o := loadOrder(t, "order.json")
	o.Recipient.CustomsCode = "P123456789012"
	kr := DefaultPolicies().For("KR")
	b, err := Seal(o, vc.Keys(t, keys.Alice), threeParties, SealOptions{Now: sealNow, Policy: kr, Rand: detRand("policy")})
	if err != nil {
		t.Fatal(err)
	}
	if b.Policy == nil || b.Policy.ID != "kr-2026-12" || b.Policy.Hash != kr.Hash() {
		t.Fatalf("header policy %+v", b.Policy)
	}
	raw, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	if *b2.Policy != *b.Policy || b2.HeaderHash() != b.HeaderHash() {
		t.Fatal("the policy ref does not survive the wire")
	}
	for _, r := range []Role{RoleMerchant, RoleIssuer, RoleCarrier} {
		s, err := openAt(b2, vc.Keys(t, b.Parties[r]), r)
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		got := s.Recipient != nil && s.Recipient.CustomsCode != ""
		if got != (r == RoleCarrier) {
			t.Errorf("%s sees the customs code: %v", r, got)
		}
	}
	relayed, err := b2.ForRole(RoleCarrier)
	if err != nil || relayed.Policy == nil || relayed.HeaderHash() != b.HeaderHash() {
		t.Fatalf("relayed: %+v %v", relayed, err)
	}
	for name, mutate := range map[string]func(*Bundle){
		"id":      func(x *Bundle) { x.Policy.ID = "default-2026-12" },
		"hash":    func(x *Bundle) { x.Policy.Hash[0] ^= 1 },
		"dropped": func(x *Bundle) { x.Policy = nil },
	} {
		x, _ := ParseBundle(raw)
		mutate(x)
		if _, err := openAt(x, vc.Keys(t, keys.Parcel), RoleCarrier); !errors.Is(err, ErrAuth) && !errors.Is(err, ErrCommitment) {
			t.Errorf("policy %s changed: %v", name, err)
		}
	}
	bad := strings.Replace(string(raw), `"id":"kr-2026-12"`, `"id":"KR!"`, 1)
	if _, err := ParseBundle([]byte(bad)); !errors.Is(err, ErrMalformed) {
		t.Errorf("a malformed policy id: %v", err)
	}
}

// FuzzParsePolicySet: what parses passes Check, every country finds a
// policy, and the hashes are stable across a JSON round trip.
func FuzzParsePolicySet(f *testing.F) {
	f.Add(defaultPoliciesJSON)
	f.Add([]byte(`{"policies":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ps, err := ParsePolicySet(data)
		if err != nil {
			return
		}
		if ps.For("ZZ") == nil {
			t.Fatal("no policy for an unlisted country")
		}
		raw, err := json.Marshal(ps)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParsePolicySet(raw)
		if err != nil {
			t.Fatalf("re-encoded set does not parse: %v", err)
		}
		for i, p := range ps.Policies {
			if p.Hash() != again.Policies[i].Hash() {
				t.Fatalf("%s: hash changes across a round trip", p.ID)
			}
		}
	})
}
