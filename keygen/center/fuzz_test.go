package center

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/suite/os2"
)

// Fuzz targets for the files the key center parses that parties never
// see (keygen/fuzz_test.go has the others): the master file, an
// officer's share file and a ledger line. Seeds live
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
	valid := map[string]int{}
	for _, p := range files {
		name := filepath.Base(p)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		target, _, _ := strings.Cut(name, "-")
		load, ok := seedLoaders[target]
		if !ok {
			t.Errorf("%s: no fuzz target reads this seed", name)
			continue
		}
		err = load(data)
		wantValid := strings.Contains(name, "-valid")
		if wantValid != (err == nil) {
			t.Errorf("%s: parse error %v, but the name says valid=%v", name, err, wantValid)
		}
		if err == nil {
			valid[target]++
		}
	}
	for target := range seedLoaders {
		if valid[target] < 1 {
			t.Errorf("no valid %s-*.json seed; want one per target", target)
		}
	}
}

// seedLoaders load a seed as its fuzz target does, by the seed's prefix.
var seedLoaders = map[string]func([]byte) error{
	"master": func(b []byte) error { _, err := OpenMaster(b, []byte(fuzzPassphrase)); return err },
	"share":  func(b []byte) error { _, err := openFuzzShare(b); return err },
	"ledger": func(b []byte) error { _, _, err := parseLedgerLine(b); return err },
}

// openFuzzShare parses an officer's share file and opens it with
// fuzzPassphrase (not against a center file: the fuzzer cannot forge its digest).
func openFuzzShare(data []byte) ([]byte, error) {
	w, b, err := parseShareFile(data)
	if err != nil {
		return nil, err
	}
	return b.open([]byte(fuzzPassphrase), w.aad())
}

func FuzzOfficerShare(f *testing.F) {
	addSeeds(f, "share-*.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		var w shareWire
		if err := json.Unmarshal(data, &w); err == nil {
			if w.KDF.Time > 2 || w.KDF.Memory > 16*1024 || w.KDF.Threads > 4 {
				t.Skip("argon2id cost too high for fuzzing")
			}
		}
		value, err := openFuzzShare(data)
		if err != nil {
			if value != nil {
				t.Fatal("value returned with an error")
			}
			return
		}
		// Round trip: seal again under the same fields, open again, same value.
		sw, _, _ := parseShareFile(data)
		sys, _ := keygen.ParseSystem(sw.System)
		l := &officerList{params: keygen.Params{Suite: sw.Suite, System: sys}, threshold: sw.Threshold}
		c, err := hex.DecodeString(sw.Center)
		if err != nil || len(c) != 16 {
			return // a center id parseShareFile does not check; openShare refuses it against the center file
		}
		copy(l.center[:], c)
		again, err := sealShare(l, Officer{Name: sw.Officer, Passphrase: []byte(fuzzPassphrase)}, sw.Share, value, cheapKDF, nil)
		if err != nil {
			t.Fatal(err)
		}
		v2, err := openFuzzShare(again)
		if err != nil || !bytes.Equal(v2, value) {
			t.Fatalf("re-open of own output: %v", err)
		}
		if w2, b2, _ := parseShareFile(data); w2 != nil {
			if _, err := b2.open([]byte(fuzzPassphrase+"x"), w2.aad()); err == nil {
				t.Fatal("opened with another passphrase")
			}
		}
	})
}

func FuzzLedgerLine(f *testing.F) {
	addSeeds(f, "ledger-*.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		l, tm, err := parseLedgerLine(data)
		if err != nil {
			if l != nil {
				t.Fatal("line returned with an error")
			}
			return
		}
		again, err := json.Marshal(l)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("a parsed line is not its own canonical form")
		}
		if tm.Location() != time.UTC && tm.UTC().Format(time.RFC3339Nano) != l.Time {
			t.Fatal("time not in UTC")
		}
		switch l.Kind {
		case LedgerIssue, LedgerDirectory:
			if keygen.ValidateIdentity(l.Identity) != nil || l.Sig != "" {
				t.Fatal("an issue line without a valid identity, or with a signature")
			}
		case LedgerCheckpoint:
			if l.Identity != "" || l.Sig == "" {
				t.Fatal("a checkpoint naming an identity, or unsigned")
			}
		default:
			t.Fatalf("kind %q accepted", l.Kind)
		}
	})
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
	// An officer's share, sealed under fuzzPassphrase.
	list := &officerList{params: keygen.Params{Suite: os2.Name, System: [16]byte{0xf0, 0x22}}, center: [16]byte{0xce}, threshold: 2}
	value := make([]byte, 32)
	for i := range 31 {
		value[i] = byte(r.Uint32())
	}
	share, err := sealShare(list, Officer{Name: "alice", Passphrase: []byte(fuzzPassphrase)}, 1, value, cheapKDF, rand.NewChaCha8(seed))
	if err != nil {
		t.Fatal(err)
	}
	// Ledger lines, one of each kind.
	issue, _ := json.Marshal(&ledgerLine{V: 1, Seq: 2, Time: "2026-12-06T12:00:00.001Z", Kind: LedgerIssue, Officers: []string{"alice", "bob"},
		Identity: "merchant:shop.example", Epoch: "2026-12", Role: "merchant", Key: strings.Repeat("ab", 32), Prev: strings.Repeat("01", 32)})
	checkpoint, _ := json.Marshal(&ledgerLine{V: 1, Seq: 3, Time: "2026-12-06T12:00:00.002Z", Kind: LedgerCheckpoint, Officers: []string{"alice", "bob"},
		Prev: strings.Repeat("02", 32), Sig: wire.B64(make([]byte, mldsa65.SignatureSize))})
	directory := bytes.Replace(bytes.Replace(issue, []byte(`"issue"`), []byte(`"directory"`), 1), []byte("merchant"), []byte("vault"), 2)
	return map[string][]byte{
		"share-valid.json":             append(share, '\n'),
		"share-bad-ct.json":            edit(share, func(v map[string]any) { s := v["ct"].(string); v["ct"] = flipFirst(s) }),
		"share-bad-officer.json":       edit(share, func(v map[string]any) { v["officer"] = "Alice" }),
		"share-bad-threshold.json":     edit(share, func(v map[string]any) { v["threshold"] = 1 }),
		"share-bad-nested.json":        []byte(`{"v":1,"argon2id":{"p":1,"p":1}}`),
		"ledger-valid-issue.json":      issue,
		"ledger-valid-directory.json":  directory,
		"ledger-valid-checkpoint.json": checkpoint,
		"ledger-bad-spacing.json":      bytes.Replace(issue, []byte(`"seq":2`), []byte(`"seq": 2`), 1),
		"ledger-bad-role.json":         bytes.Replace(issue, []byte(`"role":"merchant"`), []byte(`"role":"issuer"`), 1),
		"ledger-bad-kind.json":         bytes.Replace(issue, []byte(`"issue"`), []byte(`"revoke"`), 1),
		"ledger-bad-unsigned.json":     bytes.Replace(checkpoint, []byte(`"sig":"`), []byte(`"sig":"A`), 1),
		"ledger-bad-time.json":         bytes.Replace(issue, []byte(`.001Z`), []byte(`.001+00:00`), 1),
		"master-valid.json":            append(sealed, '\n'),
		"master-bad-ct.json":           edit(sealed, func(v map[string]any) { s := v["ct"].(string); v["ct"] = flipFirst(s) }),
		"master-bad-k.json":            edit(sealed, func(v map[string]any) { v["k"] = 3 }),
		"master-bad-kdf.json":          edit(sealed, func(v map[string]any) { v["argon2id"].(map[string]any)["m"] = 1 }),
		"master-bad-nested.json":       []byte(`{"v":1,"argon2id":{"t":1,"t":1}}`),
	}
}

// flipFirst replaces the first base64url character with another.
func flipFirst(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}
