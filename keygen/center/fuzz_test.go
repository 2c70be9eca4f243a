package center

import (
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Fuzz target for the master file, the one file the key center parses
// that parties never see (keygen/fuzz_test.go has the others). Seeds live
// in testdata/fuzz-seeds/ (regenerate with
// `go test ./keygen/center -run TestFuzzSeeds -center.write-fuzz-seeds`).

var writeFuzzSeeds = flag.Bool("center.write-fuzz-seeds", false, "rewrite testdata/fuzz-seeds/")

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

func FuzzOpenMaster(f *testing.F) {
	addSeeds(f, "master-*.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		// The argon2id cost comes from the file. Mutations can ask for up to
		// 4 GiB and 64 passes, legal for a real center but not for a fuzzer:
		// look first (with the same decoder the strict one wraps) and skip those.
		var w masterWire
		if err := json.Unmarshal(data, &w); err == nil {
			if w.KDF.Time > 2 || w.KDF.Memory > 16*1024 || w.KDF.Threads > 4 {
				t.Skip("argon2id cost too high for fuzzing")
			}
		}
		m, err := OpenMaster(data, []byte(fuzzPassphrase))
		if err != nil {
			if m != nil {
				t.Fatal("master returned with an error")
			}
			return
		}
		if m.params.Check() != nil {
			t.Fatalf("opened a master with k=%d", m.params.K)
		}
		// Round trip: seal again, open again, same master.
		sealed, err := m.Seal([]byte(fuzzPassphrase), cheapKDF, nil)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := OpenMaster(sealed, []byte(fuzzPassphrase))
		if err != nil {
			t.Fatalf("re-open of own output: %v", err)
		}
		if m2.seed != m.seed || !m2.params.Equal(m.params) {
			t.Fatal("round trip changed the master")
		}
		if _, err := OpenMaster(data, []byte(fuzzPassphrase+"x")); err == nil {
			t.Fatal("opened with another passphrase")
		}
		if m.params.K <= 64 {
			k1, err := m.Issue(fuzzPeer)
			if err != nil {
				t.Fatal(err)
			}
			k2, err := m2.Issue(fuzzPeer)
			if err != nil {
				t.Fatal(err)
			}
			if !k1.Equal(k2) {
				t.Fatal("resealed master issues another key")
			}
		}
	})
}

// TestFuzzSeeds keeps the seed corpus honest: the valid seed still opens
// (so the fuzzer starts inside the format), the malformed ones still fail.
// With -center.write-fuzz-seeds it regenerates them.
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
		if !strings.HasPrefix(name, "master-") {
			t.Errorf("%s: no fuzz target reads this seed", name)
			continue
		}
		_, err = OpenMaster(data, []byte(fuzzPassphrase))
		wantValid := strings.Contains(name, "-valid")
		if wantValid != (err == nil) {
			t.Errorf("%s: parse error %v, but the name says valid=%v", name, err, wantValid)
		}
		if err == nil {
			valid++
		}
	}
	if valid < 1 {
		t.Errorf("no valid seed; want one per target")
	}
}

// makeFuzzSeeds builds the seed files deterministically.
func makeFuzzSeeds(t *testing.T) map[string][]byte {
	t.Helper()
	r := testRand("fuzz seeds")
	m := testMaster(t, 2, r)
	var seed [32]byte
	for i := range seed {
		seed[i] = byte(r.Uint32())
	}
	sealed, err := m.Seal([]byte(fuzzPassphrase), cheapKDF, rand.NewChaCha8(seed))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(src []byte, f func(map[string]any)) []byte {
		var v map[string]any
		if err := json.Unmarshal(src, &v); err != nil {
			t.Fatal(err)
		}
		f(v)
		b, _ := json.Marshal(v)
		return b
	}
	return map[string][]byte{
		"master-valid.json":      append(sealed, '\n'),
		"master-bad-ct.json":     edit(sealed, func(v map[string]any) { s := v["ct"].(string); v["ct"] = flipFirst(s) }),
		"master-bad-k.json":      edit(sealed, func(v map[string]any) { v["k"] = 3 }),
		"master-bad-kdf.json":    edit(sealed, func(v map[string]any) { v["argon2id"].(map[string]any)["m"] = 1 }),
		"master-bad-nested.json": []byte(`{"v":1,"argon2id":{"t":1,"t":1}}`),
	}
}

// flipFirst replaces the first base64url character with another.
func flipFirst(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}
