package keygen

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
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

// FuzzDirectoryEntry: whatever parses re-encodes to the same bytes and
// signs the same bytes (the signature itself is suite/os2's to check).
func FuzzDirectoryEntry(f *testing.F) {
	addSeeds(f, "entry-*.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		var e DirectoryEntry
		if err := e.UnmarshalJSON(data); err != nil {
			if !errors.Is(err, ErrDirectory) {
				t.Fatalf("refusal %v does not wrap ErrDirectory", err)
			}
			return
		}
		if ValidateIdentity(e.Identity) != nil || !ValidEpochName(e.Epoch) || len(e.PublicKey) != KEMPublicKeySize ||
			len(e.Signature) != DirectorySignature || e.NotAfter.Nanosecond() != 0 {
			t.Fatalf("accepted an inconsistent entry %q %q", e.Identity, e.Epoch)
		}
		out, err := e.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var e2 DirectoryEntry
		if err := e2.UnmarshalJSON(out); err != nil {
			t.Fatalf("re-parse of own output: %v", err)
		}
		if out2, _ := e2.MarshalJSON(); !bytes.Equal(out, out2) || !bytes.Equal(e.SignedBytes(), e2.SignedBytes()) {
			t.Fatal("round trip changed the entry")
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
		case strings.HasPrefix(name, "entry-"):
			err = new(DirectoryEntry).UnmarshalJSON(data)
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
	if valid < 6 {
		t.Errorf("only %d valid seeds; want one per target and suite", valid)
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
	// Under an epoch suite (stand-in public values: keygen checks sizes only).
	p2 := os2Params(PeriodMonth, DefaultGrace)
	k2 := os2Key(t, p2, "issuer:bank.example", "2026-12")
	k2j, _ := k2.MarshalJSON()
	p2j, _ := p2.MarshalJSON()
	entry := &DirectoryEntry{Identity: "carrier:parcel.example", Epoch: "2026-12", PublicKey: bytes.Repeat([]byte{3}, KEMPublicKeySize),
		NotAfter: utc("2027-01-08T00:00:00Z"), Signature: bytes.Repeat([]byte{4}, DirectorySignature)}
	ej, _ := entry.MarshalJSON()
	seeds := map[string][]byte{
		"partykey-valid-os2.json":       append(k2j, '\n'),
		"partykey-bad-os2-no-sok.json":  edit(k2j, func(v map[string]any) { delete(v, "sok") }),
		"partykey-bad-os2-day.json":     edit(k2j, func(v map[string]any) { v["epoch"] = "2026-12-06" }),
		"partykey-bad-os1-epoch.json":   edit(kj, func(v map[string]any) { v["epoch"] = "2026-12" }),
		"params-valid-os2.json":         append(p2j, '\n'),
		"params-bad-os2-grace.json":     edit(p2j, func(v map[string]any) { v["epochs"].(map[string]any)["grace"] = "168h" }),
		"params-bad-os2-short-sok.json": edit(p2j, func(v map[string]any) { v["epochs"].(map[string]any)["sok_public"] = "AAAA" }),
		"entry-valid.json":              append(ej, '\n'),
		"entry-bad-offset.json":         edit(ej, func(v map[string]any) { v["not_after"] = "2027-01-08T01:00:00+01:00" }),
		"entry-bad-short-key.json":      edit(ej, func(v map[string]any) { v["public_key"] = "AAAA" }),
		"entry-bad-v2.json":             edit(ej, func(v map[string]any) { v["v"] = 2 }),
	}
	for name, b := range map[string][]byte{
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
	} {
		seeds[name] = b
	}
	return seeds
}
