package center

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"orderseal/internal/secfile"
	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/suite"
	"orderseal/suite/os2"
)

// The officers of an OS2 center: T-of-n recovery of the root, each share
// checked and named, the keys it issues checked by the suite.

var testOfficers = []string{"alice", "bob", "carol"}

// testEpoch is the epoch the tests issue for, and testNow a time inside it.
const testEpoch = "2026-12"

var testNow = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func officerPass(name string) []byte { return []byte("passphrase of " + name) }

func officersOf(names ...string) []Officer {
	out := make([]Officer, len(names))
	for i, n := range names {
		out[i] = Officer{Name: n, Passphrase: officerPass(n)}
	}
	return out
}

// fixedClock ticks one millisecond per call from testNow.
func fixedClock() func() time.Time {
	t := testNow
	return func() time.Time { t = t.Add(time.Millisecond); return t }
}

// newOfficerCenter makes a 2-of-3 OS2 center with k=8 in a new directory;
// label picks its randomness (system, center id, root; circl draws the
// polynomial's other coefficients itself).
func newOfficerCenter(t testing.TB, label string) (string, *Center) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "center")
	c, err := InitOfficers(dir, 8, officersOf(testOfficers...), 2,
		InitOptions{KDF: cheapKDF, Rand: testReader(label), Now: fixedClock()})
	if err != nil {
		t.Fatalf("InitOfficers: %v", err)
	}
	return dir, c
}

// testReader is a deterministic byte stream for label.
func testReader(label string) io.Reader {
	return rand.NewChaCha8(sha256.Sum256([]byte("orderseal center officers: " + label)))
}

func openWith(t testing.TB, dir string, names ...string) *Center {
	t.Helper()
	c, err := OpenOfficers(dir, officersOf(names...))
	if err != nil {
		t.Fatalf("OpenOfficers(%v): %v", names, err)
	}
	c.now = fixedClock()
	return c
}

func TestOfficerRecovery(t *testing.T) {
	dir, c := newOfficerCenter(t, "recovery")
	root := c.master.seed
	c.Close()
	for _, f := range append([]string{ParamsFile, CenterFile, LedgerFile}, OfficerFile("alice"), OfficerFile("bob"), OfficerFile("carol")) {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if f == ParamsFile || f == CenterFile {
			want = 0o644
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s has mode %o, want %o", f, st.Mode().Perm(), want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, MasterFile)); err == nil {
		t.Error("an OS2 center wrote a master file")
	}
	for _, tc := range []struct {
		given []string
		err   error
		msg   string // substring of the error
	}{
		{[]string{"alice", "bob"}, nil, ""},
		{[]string{"alice", "carol"}, nil, ""},
		{[]string{"bob", "carol"}, nil, ""},
		{[]string{"carol", "alice"}, nil, ""},
		{[]string{"carol", "bob", "alice"}, nil, ""},
		{[]string{"alice"}, ErrOfficers, "needs 2 of the officers alice, bob, carol; given 1: alice"},
		{nil, ErrOfficers, "given 0: none"},
		{[]string{"alice", "alice"}, ErrOfficers, "officer alice given twice"},
		{[]string{"alice", "dave"}, ErrOfficers, `"dave" is not an officer`},
	} {
		t.Run(strings.Join(tc.given, "+"), func(t *testing.T) {
			c, err := OpenOfficers(dir, officersOf(tc.given...))
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("want %v containing %q, got %v", tc.err, tc.msg, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.master.seed != root {
				t.Fatal("recovered another root")
			}
			if !slices.Equal(c.Officers(), tc.given) {
				t.Errorf("officers %v, want %v", c.Officers(), tc.given)
			}
		})
	}
}

func TestOfficerShareRefused(t *testing.T) {
	dir, c := newOfficerCenter(t, "refused")
	c.Close()
	otherDir, o := newOfficerCenter(t, "refused, another center")
	o.Close()
	// The same system, center id and root, split again: other shares.
	resplitDir, o := newOfficerCenter(t, "refused")
	o.Close()
	read := func(d, name string) []byte {
		b, err := os.ReadFile(filepath.Join(d, OfficerFile(name)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// forged is bob's share file holding another value, sealed under his
	// own passphrase with every public field right: only the digest tells.
	forged := func() []byte {
		p, _ := ReadParams(dir)
		l, err := readOfficerList(dir, p)
		if err != nil {
			t.Fatal(err)
		}
		value := make([]byte, 32)
		value[0] = 7
		b, err := sealShare(l, Officer{Name: "bob", Passphrase: officerPass("bob")}, 2, value, cheapKDF, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name    string
		bobFile []byte      // replaces officer-bob.json
		mode    os.FileMode // of officer-bob.json, 0: 0600
		pass    string      // bob's passphrase, "": the right one
		err     error
	}{
		{name: "wrong passphrase", pass: "not bob's passphrase", err: ErrSharePassphrase},
		{name: "share of another center", bobFile: read(otherDir, "bob"), err: ErrForeignShare},
		{name: "share of another split of the same root", bobFile: read(resplitDir, "bob"), err: ErrShare},
		{name: "alice's share as bob's", bobFile: read(dir, "alice"), err: ErrShare},
		{name: "forged share", bobFile: forged(), err: ErrShare},
		{name: "altered ciphertext", bobFile: bytes.Replace(read(dir, "bob"), []byte(`"ct": "`), []byte(`"ct": "A`), 1), err: nil},
		{name: "group-readable", mode: 0o640, err: secfile.ErrPermissions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := copyDir(t, dir)
			path := filepath.Join(d, OfficerFile("bob"))
			if tc.bobFile != nil {
				if err := os.WriteFile(path, tc.bobFile, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tc.mode != 0 {
				os.Chmod(path, tc.mode)
			}
			officers := officersOf("alice", "bob")
			if tc.pass != "" {
				officers[1].Passphrase = []byte(tc.pass)
			}
			c, err := OpenOfficers(d, officers)
			if err == nil {
				c.Close()
				t.Fatal("opened")
			}
			var oe *OfficerError
			if !errors.As(err, &oe) || oe.Officer != "bob" || !strings.Contains(err.Error(), "officer bob") {
				t.Fatalf("error does not name bob: %v", err)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("want %v, got %v", tc.err, err)
			}
		})
	}
}

// copyDir copies a center directory's files, keeping their modes.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if err := os.Mkdir(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		info, _ := e.Info()
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestInitOfficersRefuses(t *testing.T) {
	dir, c := newOfficerCenter(t, "init refuses")
	c.Close()
	for _, tc := range []struct {
		name      string
		officers  []Officer
		threshold int
		want      error
	}{
		{"one officer", officersOf("alice"), 1, ErrOfficers},
		{"threshold 1", officersOf("alice", "bob"), 1, ErrOfficers},
		{"threshold above n", officersOf("alice", "bob"), 3, ErrOfficers},
		{"same name twice", officersOf("alice", "alice"), 2, ErrOfficers},
		{"bad name", officersOf("Alice", "bob"), 2, ErrOfficers},
		{"short passphrase", []Officer{{"alice", []byte("short")}, {"bob", officerPass("bob")}}, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := filepath.Join(t.TempDir(), "c")
			_, err := InitOfficers(d, 8, tc.officers, tc.threshold, InitOptions{KDF: cheapKDF})
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("want %v, got %v", tc.want, err)
			}
			if _, err := os.Stat(filepath.Join(d, CenterFile)); err == nil {
				t.Error("a refused init wrote a center file")
			}
		})
	}
	if _, err := InitOfficers(dir, 8, officersOf(testOfficers...), 2, InitOptions{KDF: cheapKDF}); !errors.Is(err, ErrCenterExists) {
		t.Errorf("init over an OS2 center: %v", err)
	}
	if _, err := Init(dir, 8, []byte(testPassphrase), InitOptions{KDF: cheapKDF}); !errors.Is(err, ErrCenterExists) {
		t.Errorf("OS1 init over an OS2 center: %v", err)
	}
}

// TestOfficerKeys: keys the officers' center issues pass the suite's check
// at load; one whose d1 is another point, or whose epoch and grace are
// over, is refused.
func TestOfficerKeys(t *testing.T) {
	dir, root := newOfficerCenter(t, "keys")
	c, err := root.ForEpoch(testEpoch)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := t.TempDir()
	const shop, bank = "merchant:shop.example", "issuer:bank.example"
	if err := c.IssueFile(shop, filepath.Join(out, "shop.key")); err != nil {
		t.Fatal(err)
	}
	res, err := c.IssueBatchLogged(t.Context(), []string{bank, "cardholder:alice@example.org"}, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	params, _ := ReadParams(dir)
	if !params.Equal(c.Params()) {
		t.Fatal("params.json is not the center's params")
	}
	shopKey, err := suite.LoadKey(filepath.Join(out, "shop.key"), keygen.RoleMerchant, testNow)
	if err != nil {
		t.Fatalf("issued key refused: %v", err)
	}
	bankKey, err := suite.LoadKey(filepath.Join(out, keygen.KeyFileName(bank)), keygen.RoleIssuer, testNow)
	if err != nil {
		t.Fatalf("batch key refused: %v", err)
	}
	if shopKey.Epoch() != testEpoch || shopKey.Params().Suite != os2.Name {
		t.Fatalf("key of epoch %q, suite %s", shopKey.Epoch(), shopKey.Params().Suite)
	}
	a, err := suite.Pairwise(shopKey, bank)
	if err != nil {
		t.Fatal(err)
	}
	b, err := suite.Pairwise(bankKey, shop)
	if err != nil {
		t.Fatal(err)
	}
	if a.Fingerprint() != b.Fingerprint() {
		t.Fatal("the two sides derive different pairwise keys")
	}

	// The shop's key file with d1 taken from the bank's key.
	data, err := os.ReadFile(filepath.Join(out, "shop.key"))
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	sok, _ := wire.UnB64Len(f["sok"].(string), keygen.SOKG1Size+keygen.SOKG2Size)
	copy(sok, bankKey.SOK()[:keygen.SOKG1Size])
	f["sok"] = wire.B64(sok)
	swapped, _ := json.Marshal(f)
	bad := filepath.Join(out, "swapped-d1.key")
	if err := os.WriteFile(bad, swapped, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := suite.LoadKey(bad, "", testNow); !errors.Is(err, os2.ErrSOKKey) {
		t.Errorf("key with another d1: %v", err)
	}
	_, end, _ := params.Epochs.Span(testEpoch)
	over := end.Add(params.Epochs.Grace)
	if _, err := suite.LoadKey(filepath.Join(out, "shop.key"), "", over.Add(-time.Second)); err != nil {
		t.Errorf("key refused within its grace: %v", err)
	}
	if _, err := suite.LoadKey(filepath.Join(out, "shop.key"), "", over); !errors.Is(err, keygen.ErrEpochOver) {
		t.Errorf("key past its grace: %v", err)
	}

	// The keys are those the root's master issues, by Issue and by batch.
	m, _ := EpochMasterFromSeed(params, root.master.seed)
	em, _ := m.ForEpoch(testEpoch)
	if want := mustIssue(t, em, bank); !want.Equal(bankKey) {
		t.Error("batch key differs from Issue's")
	}
	s, err := VerifyLedger(dir)
	if err != nil || s.Issued != 3 || s.Checkpoints != 3 {
		t.Fatalf("ledger: %+v, %v", s, err)
	}
}

// TestOfficerDirectory: an entry the center signs verifies under the
// params' directory key, and not once any byte of it changes.
func TestOfficerDirectory(t *testing.T) {
	dir, c := newOfficerCenter(t, "directory")
	defer c.Close()
	kem, err := os2.KEMKeyFromSeed(bytes.Repeat([]byte{9}, os2.KEMSecretSize))
	if err != nil {
		t.Fatal(err)
	}
	notAfter := time.Date(2027, 1, 8, 0, 0, 0, 0, time.UTC)
	e, err := c.SignEntry("vault:vault.shop.example", testEpoch, kem.PublicKey(), notAfter)
	if err != nil {
		t.Fatal(err)
	}
	p := c.Params()
	if err := (os2.Suite{}).VerifyEntry(p, e, testNow); err != nil {
		t.Fatalf("entry does not verify: %v", err)
	}
	wireForm, _ := json.Marshal(e)
	var back keygen.DirectoryEntry
	if err := json.Unmarshal(wireForm, &back); err != nil {
		t.Fatal(err)
	}
	if err := (os2.Suite{}).VerifyEntry(p, &back, testNow); err != nil {
		t.Fatalf("entry does not verify after a round trip: %v", err)
	}
	signed := e.SignedBytes()
	for i := 0; i < len(signed); i += 97 { // every part: label, identity, epoch, key, not_after
		tampered := *e
		switch {
		case i < len(keygen.DirectoryLabel):
			continue // the label is not the entry's
		case i < len(keygen.DirectoryLabel)+2+len(e.Identity)+2+len(e.Epoch)+2:
			tampered.Identity = "vault:vault.shop.examplf"
		default:
			pk := append([]byte(nil), e.PublicKey...)
			pk[(i*7)%len(pk)] ^= 1
			tampered.PublicKey = pk
		}
		if (os2.Suite{}).VerifyEntry(p, &tampered, testNow) == nil {
			t.Fatalf("tampered entry (byte %d) verifies", i)
		}
	}
	for i := 0; i < len(e.Signature); i += 331 {
		tampered := *e
		tampered.Signature = append([]byte(nil), e.Signature...)
		tampered.Signature[i] ^= 0x80
		if (os2.Suite{}).VerifyEntry(p, &tampered, testNow) == nil {
			t.Fatalf("entry with signature byte %d flipped verifies", i)
		}
	}
	later := *e
	later.NotAfter = notAfter.Add(time.Second)
	if (os2.Suite{}).VerifyEntry(p, &later, testNow) == nil {
		t.Fatal("entry with a later not_after verifies")
	}
	other := *e
	other.Epoch = "2027-01"
	if (os2.Suite{}).VerifyEntry(p, &other, testNow) == nil {
		t.Fatal("entry for another epoch verifies")
	}
	if s, err := VerifyLedger(dir); err != nil || s.Directory != 1 {
		t.Fatalf("ledger: %+v, %v", s, err)
	}
}
