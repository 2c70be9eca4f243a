package keygen

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	fp "github.com/cloudflare/circl/math/fp25519"

	"orderseal/keygen/internal/field"
)

// Fuzz targets for everything keygen parses (the master file is
// keygen/center's, center/fuzz_test.go). Seed corpora live in
// testdata/fuzz-seeds/ (regenerate with
// `go test ./keygen -run TestFuzzSeeds -keygen.write-fuzz-seeds`);
// inputs the fuzzer finds go to testdata/fuzz/ as usual.

var writeFuzzSeeds = flag.Bool("keygen.write-fuzz-seeds", false, "rewrite testdata/fuzz-seeds/")

const (
	fuzzSeedDir    = "testdata/fuzz-seeds"
	fuzzPassphrase = "fuzz passphrase 0"
	fuzzPeer       = "issuer:bank.example"
)

// addSeeds adds every file matching pattern in fuzzSeedDir to f's corpus. A
// glob that matches nothing fails: a renamed directory must not leave the
// fuzzer with no corpus and the test green.
func addSeeds(f *testing.F, pattern string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join(fuzzSeedDir, pattern))
	if err != nil {
		f.Fatal(err)
	}
	if len(files) == 0 {
		f.Fatalf("no seed files match %s/%s", fuzzSeedDir, pattern)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParsePartyKey(f *testing.F) {
	addSeeds(f, "partykey-*.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParsePartyKey(data)
		if err != nil {
			if k != nil {
				t.Fatal("key returned with an error")
			}
			return
		}
		if ValidateIdentity(k.Identity()) != nil || k.Params().Check() != nil || len(k.row) != k.Params().K {
			t.Fatalf("accepted an inconsistent key: %q k=%d len(row)=%d", k.Identity(), k.Params().K, len(k.row))
		}
		for i := range k.row {
			if !field.IsCanonical(&k.row[i]) {
				t.Fatalf("row element %d is not canonical", i)
			}
		}
		out, err := k.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		k2, err := ParsePartyKey(out)
		if err != nil {
			t.Fatalf("re-parse of own output: %v", err)
		}
		if !k2.Equal(k) {
			t.Fatal("round trip changed the key")
		}
		out2, _ := k2.MarshalJSON()
		if !bytes.Equal(out, out2) {
			t.Fatal("marshalling is not deterministic")
		}
		if k.Identity() != fuzzPeer {
			if _, err := k.pairwise(fuzzPeer); err != nil {
				t.Fatalf("Pairwise with a valid peer: %v", err)
			}
		} else if _, err := k.pairwise(fuzzPeer); err != ErrSameIdentity {
			t.Fatalf("Pairwise with oneself: %v", err)
		}
	})
}

func FuzzParseParams(f *testing.F) {
	addSeeds(f, "params-*.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseParams(data)
		if err != nil {
			return
		}
		if p.Check() != nil {
			t.Fatalf("accepted k=%d", p.K)
		}
		out, err := p.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		p2, err := ParseParams(out)
		if err != nil {
			t.Fatalf("re-parse of own output: %v", err)
		}
		if !p2.Equal(p) {
			t.Fatal("round trip changed the params")
		}
		if out2, _ := p2.MarshalJSON(); !bytes.Equal(out, out2) {
			t.Fatal("marshalling is not deterministic")
		}
		if s, err := ParseSystem(p.SystemHex()); err != nil || s != p.System {
			t.Fatalf("system %s does not round-trip", p.SystemHex())
		}
	})
}

// TestFuzzSeeds keeps the seed corpora honest: the valid seeds still parse
// (so the fuzzer starts inside the format), the malformed ones still fail.
// With -keygen.write-fuzz-seeds it regenerates them.
func TestFuzzSeeds(t *testing.T) {
	seeds := makeFuzzSeeds(t)
	if *writeFuzzSeeds {
		if err := os.MkdirAll(fuzzSeedDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range seeds {
			if err := os.WriteFile(filepath.Join(fuzzSeedDir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(fuzzSeedDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no seed files in %s (%v)", fuzzSeedDir, err)
	}
	var valid int
	for _, p := range files {
		name := filepath.Base(p)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(name, "partykey-"):
			_, err = ParsePartyKey(data)
		case strings.HasPrefix(name, "params-"):
			_, err = ParseParams(data)
		default:
			t.Errorf("%s: no fuzz target reads this seed", name)
			continue
		}
		wantValid := strings.Contains(name, "-valid")
		if wantValid != (err == nil) {
			t.Errorf("%s: parse error %v, but the name says valid=%v", name, err, wantValid)
		}
		if err == nil {
			valid++
		}
	}
	if valid < 3 {
		t.Errorf("only %d valid seeds; want one per target", valid)
	}
}

// makeFuzzSeeds builds the seed files deterministically.
func makeFuzzSeeds(t *testing.T) map[string][]byte {
	t.Helper()
	r := testRand("fuzz seeds")
	m := testMaster(t, 2, r)
	key := mustIssue(t, m, "merchant:shop.example")
	kj, _ := key.MarshalJSON()
	k1 := mustIssue(t, testMaster(t, 1, r), "cardholder:alice+x@example.org")
	k1j, _ := k1.MarshalJSON()
	pj, _ := m.Params().MarshalJSON()

	edit := func(src []byte, f func(map[string]any)) []byte {
		var v map[string]any
		if err := json.Unmarshal(src, &v); err != nil {
			t.Fatal(err)
		}
		f(v)
		b, _ := json.Marshal(v)
		return b
	}
	raw := make([]byte, 2*fp.Size)
	for j := range key.row {
		field.Encode(raw[j*fp.Size:], &key.row[j])
	}
	copy(raw[fp.Size:], leBytes(bigP))
	return map[string][]byte{
		"partykey-valid-k2.json":          append(kj, '\n'),
		"partykey-valid-k1.json":          append(k1j, '\n'),
		"partykey-bad-noncanonical.json":  edit(kj, func(v map[string]any) { v["row"] = base64.RawURLEncoding.EncodeToString(raw) }),
		"partykey-bad-unknown-field.json": edit(kj, func(v map[string]any) { v["extra"] = []int{1} }),
		"partykey-bad-k3.json":            edit(kj, func(v map[string]any) { v["k"] = 3 }),
		"partykey-bad-truncated.json":     kj[:len(kj)/2],
		"partykey-bad-duplicate.json":     []byte(strings.Replace(string(kj), `"k":2,`, `"k":2,"k":2,`, 1)),
		"params-valid.json":               append(pj, '\n'),
		"params-bad-uppercase.json":       []byte(strings.ToUpper(string(pj))),
		"params-bad-k0.json":              edit(pj, func(v map[string]any) { v["k"] = 0 }),
		"params-bad-v2.json":              edit(pj, func(v map[string]any) { v["v"] = 2 }),
	}
}
