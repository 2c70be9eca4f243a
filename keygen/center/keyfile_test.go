package center

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"orderseal/internal/secfile"
	"orderseal/internal/strictjson"
	"orderseal/keygen"
)

// Key files, the master file and batch issuance (DESIGN.md §2 "Key files",
// §4.1 "Party key file").

// cheapKDF keeps argon2id fast in tests; production uses DefaultKDF.
var cheapKDF = KDF{Time: 1, Memory: 8 * 1024, Threads: 1}

const testPassphrase = "correct horse battery staple"

// --- master file --------------------------------------------------------------

func initCenter(t *testing.T, dir string, k int) *Center {
	t.Helper()
	c, err := Init(dir, k, []byte(testPassphrase), InitOptions{KDF: cheapKDF})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return c
}

func TestMasterFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "center")
	c := initCenter(t, dir, 4)
	const id = "merchant:shop.example"
	first, err := c.Issue(id)
	if err != nil {
		t.Fatal(err)
	}
	firstRow := rowOf(t, first)
	seed := c.master.seed
	params := c.Params()
	c.Close()
	if c.master.seed != ([32]byte{}) || c.master.tri != nil {
		t.Error("Close left the master in memory")
	}
	masterPath := filepath.Join(dir, MasterFile)
	paramsPath := filepath.Join(dir, ParamsFile)
	original, err := os.ReadFile(masterPath)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("reopen issues the same key", func(t *testing.T) {
		c, err := OpenCenter(dir, []byte(testPassphrase))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if !c.Params().Equal(params) {
			t.Fatal("params changed across reopen")
		}
		again, err := c.Issue(id)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Equal(first) {
			t.Fatal("reopened center issues a different key")
		}
		p, err := ReadParams(dir)
		if err != nil || !p.Equal(params) {
			t.Fatalf("ReadParams = %v, %v", p, err)
		}
	})

	t.Run("modes and no secret in the clear", func(t *testing.T) {
		st, err := os.Stat(masterPath)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("master.json mode %04o, want 0600", st.Mode().Perm())
		}
		if st, err := os.Stat(dir); err != nil || st.Mode().Perm()&0o077 != 0 {
			t.Errorf("center directory mode %v (%v), want no group/other access", st.Mode().Perm(), err)
		}
		needles := map[string][]byte{"passphrase": []byte(testPassphrase)}
		for _, enc := range []struct {
			name string
			f    func([]byte) string
		}{
			{"raw", func(b []byte) string { return string(b) }},
			{"hex", hex.EncodeToString},
			{"base64url", base64.RawURLEncoding.EncodeToString},
			{"base64", base64.StdEncoding.EncodeToString},
		} {
			needles["seed "+enc.name] = []byte(enc.f(seed[:]))
			for j := range firstRow {
				needles[fmt.Sprintf("row element %d %s", j, enc.name)] = []byte(enc.f(firstRow[j][:]))
			}
		}
		for name, n := range needles {
			if bytes.Contains(original, n) {
				t.Errorf("master.json contains the %s", name)
			}
		}
	})

	t.Run("wrong passphrase", func(t *testing.T) {
		for _, pass := range []string{"correct horse battery stapler", "", strings.ToUpper(testPassphrase)} {
			if _, err := OpenCenter(dir, []byte(pass)); !errors.Is(err, ErrPassphrase) {
				t.Errorf("OpenCenter(%q) = %v, want ErrPassphrase", pass, err)
			}
		}
	})

	// Each edit to master.json (AEAD-authenticated header or ciphertext) must
	// be refused; the sentinel tells which check caught it.
	rewrite := func(t *testing.T, edit func(map[string]any)) {
		t.Helper()
		var f map[string]any
		if err := json.Unmarshal(original, &f); err != nil {
			t.Fatal(err)
		}
		edit(f)
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		writeMode(t, masterPath, b, 0o600)
	}
	flipB64 := func(s string, at int) string {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		b[at] ^= 0x01
		return base64.RawURLEncoding.EncodeToString(b)
	}
	otherSystem := strings.Repeat("ab", 16)
	for _, tc := range []struct {
		name string
		edit func(map[string]any)
		want error
	}{
		{"ciphertext first byte", func(f map[string]any) { f["ct"] = flipB64(f["ct"].(string), 0) }, ErrPassphrase},
		{"ciphertext tag byte", func(f map[string]any) { f["ct"] = flipB64(f["ct"].(string), 47) }, ErrPassphrase},
		{"nonce", func(f map[string]any) { f["nonce"] = flipB64(f["nonce"].(string), 3) }, ErrPassphrase},
		{"salt", func(f map[string]any) { f["salt"] = flipB64(f["salt"].(string), 3) }, ErrPassphrase},
		// k and system are authenticated data: a valid but different value
		// fails the AEAD; an invalid one fails the params check first.
		{"k changed to another valid k", func(f map[string]any) { f["k"] = 5 }, ErrPassphrase},
		{"k changed to 0", func(f map[string]any) { f["k"] = 0 }, keygen.ErrParams},
		{"system changed", func(f map[string]any) { f["system"] = otherSystem }, ErrPassphrase},
		{"system uppercased", func(f map[string]any) { f["system"] = strings.ToUpper(f["system"].(string)) }, keygen.ErrParams},
		{"kdf time", func(f map[string]any) { f["argon2id"].(map[string]any)["t"] = 2 }, ErrPassphrase},
		{"kdf memory below floor", func(f map[string]any) { f["argon2id"].(map[string]any)["m"] = 1024 }, keygen.ErrParams},
		{"version", func(f map[string]any) { f["v"] = 2 }, keygen.ErrVersion},
		{"suite malformed", func(f map[string]any) { f["suite"] = "os2" }, keygen.ErrSuite},
		{"suite another", func(f map[string]any) { f["suite"] = "OS2" }, ErrPassphrase}, // bound as AAD
		{"k spelled K", func(f map[string]any) { f["K"] = f["k"]; delete(f, "k") }, strictjson.ErrMalformed},
		{"unknown field", func(f map[string]any) { f["note"] = "x" }, strictjson.ErrMalformed},
	} {
		t.Run("tampered "+tc.name, func(t *testing.T) {
			defer writeMode(t, masterPath, original, 0o600)
			rewrite(t, tc.edit)
			c, err := OpenCenter(dir, []byte(testPassphrase))
			if err == nil {
				c.Close()
				t.Fatal("tampered master.json opened")
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("OpenCenter = %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("params.json out of step", func(t *testing.T) {
		origParams, err := os.ReadFile(paramsPath)
		if err != nil {
			t.Fatal(err)
		}
		defer writeMode(t, paramsPath, origParams, 0o644)
		for name, p := range map[string]keygen.Params{
			"other k":      {Suite: keygen.SuiteOS1, System: params.System, K: 5},
			"other system": {Suite: keygen.SuiteOS1, System: [16]byte{0xab}, K: params.K},
		} {
			b, _ := p.MarshalJSON()
			writeMode(t, paramsPath, b, 0o644)
			if _, err := OpenCenter(dir, []byte(testPassphrase)); !errors.Is(err, keygen.ErrSystem) {
				t.Errorf("%s: OpenCenter = %v, want keygen.ErrSystem", name, err)
			}
		}
	})

	t.Run("master.json readable by others", func(t *testing.T) {
		defer os.Chmod(masterPath, 0o600)
		if err := os.Chmod(masterPath, 0o640); err != nil {
			t.Fatal(err)
		}
		if _, err := OpenCenter(dir, []byte(testPassphrase)); !errors.Is(err, secfile.ErrPermissions) {
			t.Fatalf("OpenCenter(0640 master) = %v, want secfile.ErrPermissions", err)
		}
	})

	t.Run("init twice", func(t *testing.T) {
		if _, err := Init(dir, 4, []byte(testPassphrase), InitOptions{KDF: cheapKDF}); !errors.Is(err, ErrCenterExists) {
			t.Fatalf("second Init = %v, want ErrCenterExists", err)
		}
		if now, _ := os.ReadFile(masterPath); !bytes.Equal(now, original) {
			t.Fatal("second Init altered master.json")
		}
	})

	t.Run("short passphrase", func(t *testing.T) {
		d := filepath.Join(t.TempDir(), "c")
		if _, err := Init(d, 4, []byte("1234567"), InitOptions{KDF: cheapKDF}); err == nil {
			t.Fatal("Init accepted a 7-character passphrase")
		}
		if _, err := os.Stat(filepath.Join(d, MasterFile)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("refused Init left a master file (%v)", err)
		}
		c, err := Init(d, 4, []byte("twelve chars"), InitOptions{KDF: cheapKDF})
		if err != nil {
			t.Fatalf("Init with a 12-character passphrase: %v", err)
		}
		c.Close()
	})

	t.Run("bad k and bad kdf", func(t *testing.T) {
		for _, k := range []int{0, -1, keygen.MaxK + 1} {
			if _, err := Init(filepath.Join(t.TempDir(), "c"), k, []byte(testPassphrase), InitOptions{KDF: cheapKDF}); !errors.Is(err, keygen.ErrParams) {
				t.Errorf("Init(k=%d) = %v, want keygen.ErrParams", k, err)
			}
		}
		if _, err := Init(filepath.Join(t.TempDir(), "c"), 4, []byte(testPassphrase), InitOptions{KDF: KDF{Time: 1, Memory: 1024, Threads: 1}}); !errors.Is(err, keygen.ErrParams) {
			t.Errorf("Init(weak KDF) = %v, want keygen.ErrParams", err)
		}
	})
}

func writeMode(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// --- batch --------------------------------------------------------------------

func TestIssueBatch(t *testing.T) {
	dir := t.TempDir()
	c := initCenter(t, filepath.Join(dir, "center"), 8)
	defer c.Close()
	out := filepath.Join(dir, "keys")
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	ids := []string{
		"cardholder:alice@example.org",
		"cardholder:Bob", // invalid
		"merchant:shop.example",
		"carrier:parcel.example", // file exists
		"issuer:bank.example",
	}
	existing := filepath.Join(out, keygen.KeyFileName(ids[3]))
	if existing != filepath.Join(out, "carrier.parcel.example.key") {
		t.Fatalf("keygen.KeyFileName(%q) = %q", ids[3], filepath.Base(existing))
	}
	if err := os.WriteFile(existing, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	var calls atomic.Int32
	results := c.IssueBatch(context.Background(), ids, out, func(BatchResult) { calls.Add(1) })
	if int(calls.Load()) != len(ids) || len(results) != len(ids) {
		t.Fatalf("done called %d times, %d results, for %d identities", calls.Load(), len(results), len(ids))
	}
	for i, r := range results {
		if r.Identity != ids[i] {
			t.Fatalf("result %d is for %q, want %q", i, r.Identity, ids[i])
		}
		switch i {
		case 1:
			if !errors.Is(r.Err, keygen.ErrIdentity) {
				t.Errorf("%s: err = %v, want keygen.ErrIdentity", r.Identity, r.Err)
			}
		case 3:
			if !errors.Is(r.Err, os.ErrExist) {
				t.Errorf("%s: err = %v, want os.ErrExist", r.Identity, r.Err)
			}
		default:
			if r.Err != nil {
				t.Errorf("%s: %v", r.Identity, r.Err)
				continue
			}
			if r.Path != filepath.Join(out, keygen.KeyFileName(r.Identity)) {
				t.Errorf("%s written to %s", r.Identity, r.Path)
			}
			st, err := os.Stat(r.Path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %04o, want 0600", r.Path, st.Mode().Perm())
			}
			k, err := keygen.LoadPartyKey(r.Path)
			if err != nil {
				t.Fatal(err)
			}
			if k.Identity() != r.Identity {
				t.Errorf("%s holds the key of %s", r.Path, k.Identity())
			}
			want, err := c.Issue(r.Identity)
			if err != nil {
				t.Fatal(err)
			}
			if !k.Equal(want) {
				t.Errorf("%s: batch key differs from Issue", r.Identity)
			}
		}
	}
	if b, _ := os.ReadFile(existing); string(b) != "precious\n" {
		t.Error("batch overwrote an existing key file")
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 4 {
		t.Errorf("out dir holds %d files, want 4 (3 new + 1 existing)", len(entries))
	}

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		out2 := t.TempDir()
		res := c.IssueBatch(ctx, []string{"merchant:a", "merchant:b", "merchant:c"}, out2, nil)
		for _, r := range res {
			if r.Err == nil {
				continue // a worker may have taken it before the cancel was seen
			}
			if !errors.Is(r.Err, context.Canceled) {
				t.Errorf("%s: %v, want context.Canceled", r.Identity, r.Err)
			}
		}
	})
}
