package keygen

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	fp "github.com/cloudflare/circl/math/fp25519"

	"orderseal/internal/secfile"
	"orderseal/internal/strictjson"
)

// Key files, the master file and batch issuance (DESIGN.md §2 "Key files",
// §4.1 "Party key file").

// cheapKDF keeps argon2id fast in tests; production uses DefaultKDF.
var cheapKDF = KDF{Time: 1, Memory: 8 * 1024, Threads: 1}

const testPassphrase = "correct horse battery staple"

func TestValidateIdentity(t *testing.T) {
	for _, tc := range []struct {
		name, id string
		ok       bool
	}{
		{"merchant", "merchant:shop.example", true},
		{"plus and at", "cardholder:alice+x@example.org", true},
		{"every allowed byte", "issuer:az09._@+-", true},
		{"every role", "vault:v", true},
		{"consultant", "consultant:c", true},
		{"company", "company:c", true},
		{"carrier", "carrier:c", true},
		{"one char name", "merchant:a", true},
		{"200-char name", "merchant:" + strings.Repeat("a", 200), true},
		{"no colon", "merchantshop.example", false},
		{"empty name", "merchant:", false},
		{"empty role", ":shop.example", false},
		{"empty", "", false},
		{"201-char name", "merchant:" + strings.Repeat("a", 201), false},
		{"uppercase name", "merchant:Shop.example", false},
		{"uppercase role", "Merchant:shop.example", false},
		{"space", "merchant:shop example", false},
		{"trailing space", "merchant:shop.example ", false},
		{"second colon", "merchant:shop:example", false},
		{"slash", "merchant:shop/example", false},
		{"unknown role", "bank:x", false},
		{"unicode", "cardholder:zoë@example.org", false},
		{"nul", "merchant:shop\x00", false},
		{"newline", "merchant:shop\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidateIdentity(tc.id)
			if tc.ok && err != nil {
				t.Fatalf("ValidateIdentity(%q) = %v, want nil", tc.id, err)
			}
			if !tc.ok && !errors.Is(err, ErrIdentity) {
				t.Fatalf("ValidateIdentity(%q) = %v, want ErrIdentity", tc.id, err)
			}
			if _, err2 := IdentityPoint([16]byte{1}, tc.id); (err2 == nil) != tc.ok {
				t.Fatalf("IdentityPoint(%q) error %v disagrees with ValidateIdentity", tc.id, err2)
			}
		})
	}
}

// keyFields is a party key file as a map, to be altered field by field.
func keyFields(t *testing.T, k *PartyKey) map[string]any {
	t.Helper()
	data, err := k.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func encodeFields(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// leBytes is n as 32 bytes little-endian (n < 2^256).
func leBytes(n *big.Int) []byte {
	var be [32]byte
	n.FillBytes(be[:])
	out := make([]byte, 32)
	for i := range be {
		out[i] = be[31-i]
	}
	return out
}

func TestPartyKeyFile(t *testing.T) {
	m := testMaster(t, 2, testRand("keyfile"))
	key := mustIssue(t, m, "merchant:shop.example")
	data, err := key.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("round trip", func(t *testing.T) {
		got, err := ParsePartyKey(data)
		if err != nil {
			t.Fatalf("ParsePartyKey(own output): %v", err)
		}
		if !got.Equal(key) {
			t.Fatal("parsed key differs from the marshalled one")
		}
		if got.Identity() != key.Identity() || !got.Params().Equal(key.Params()) {
			t.Fatal("identity or params lost in the round trip")
		}
		// The file is self-describing per §4.1.
		f := keyFields(t, key)
		if f["v"] != 1.0 || f["suite"] != SuiteOS1 || f["system"] != m.params.SystemHex() ||
			f["k"] != 2.0 || f["identity"] != "merchant:shop.example" || len(f) != 6 {
			t.Fatalf("key file fields: %v", f)
		}
		// A different key is not Equal.
		other := mustIssue(t, m, "merchant:other.example")
		if other.Equal(key) {
			t.Fatal("keys of two identities compare Equal")
		}
	})

	p := bigP
	pMinus1 := new(big.Int).Sub(p, bigOne)
	two255 := new(big.Int).Lsh(bigOne, 255)
	two256m1 := new(big.Int).Sub(new(big.Int).Lsh(bigOne, 256), bigOne)
	rowWith := func(i int, v *big.Int) string {
		raw := make([]byte, 2*fp.Size)
		for j := range key.row {
			encodeElt(raw[j*fp.Size:], &key.row[j])
		}
		copy(raw[i*fp.Size:], leBytes(v))
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	good := keyFields(t, key)["row"].(string)

	for _, tc := range []struct {
		name string
		edit func(map[string]any)
		raw  string // used instead of edit when set
		want []error
	}{
		{name: "unknown field", edit: func(f map[string]any) { f["note"] = "x" }, want: []error{ErrKeyFile}},
		{name: "duplicate key", raw: strings.Replace(string(data), `"v":1,`, `"v":1,"v":1,`, 1), want: []error{ErrKeyFile}},
		// encoding/json matches keys case-insensitively; strict files have one spelling.
		{name: "key differing only in case", raw: strings.Replace(string(data), `"v":1,`, `"V":1,`, 1), want: []error{ErrKeyFile}},
		{name: "case-variant duplicate identity", raw: strings.Replace(string(data), `"identity":"merchant:shop.example"`,
			`"identity":"merchant:shop.example","IDENTITY":"merchant:evil"`, 1), want: []error{ErrKeyFile}},
		{name: "trailing data", raw: string(data) + "{}", want: []error{ErrKeyFile}},
		{name: "not json", raw: "v=1", want: []error{ErrKeyFile}},
		{name: "v=2", edit: func(f map[string]any) { f["v"] = 2 }, want: []error{ErrKeyFile, ErrVersion}},
		{name: "v missing", edit: func(f map[string]any) { delete(f, "v") }, want: []error{ErrKeyFile, ErrVersion}},
		{name: "malformed suite", edit: func(f map[string]any) { f["suite"] = "OS2 other" }, want: []error{ErrKeyFile, ErrSuite}},
		{name: "uppercase system", edit: func(f map[string]any) { f["system"] = strings.ToUpper(m.params.SystemHex()) }, want: []error{ErrKeyFile, ErrParams}},
		{name: "short system", edit: func(f map[string]any) { f["system"] = m.params.SystemHex()[:30] }, want: []error{ErrKeyFile, ErrParams}},
		{name: "long system", edit: func(f map[string]any) { f["system"] = m.params.SystemHex() + "00" }, want: []error{ErrKeyFile, ErrParams}},
		{name: "k=0", edit: func(f map[string]any) { f["k"] = 0; f["row"] = "" }, want: []error{ErrKeyFile, ErrParams}},
		{name: "k>MaxK", edit: func(f map[string]any) { f["k"] = MaxK + 1 }, want: []error{ErrKeyFile, ErrParams}},
		{name: "k negative", edit: func(f map[string]any) { f["k"] = -1 }, want: []error{ErrKeyFile, ErrParams}},
		{name: "k fractional", edit: func(f map[string]any) { f["k"] = 2.5 }, want: []error{ErrKeyFile}},
		{name: "k=3 with a 2-element row", edit: func(f map[string]any) { f["k"] = 3 }, want: []error{ErrKeyFile}},
		{name: "k=1 with a 2-element row", edit: func(f map[string]any) { f["k"] = 1 }, want: []error{ErrKeyFile}},
		{name: "row one byte short", edit: func(f map[string]any) {
			raw, _ := base64.RawURLEncoding.DecodeString(good)
			f["row"] = base64.RawURLEncoding.EncodeToString(raw[:63])
		}, want: []error{ErrKeyFile}},
		{name: "row one byte long", edit: func(f map[string]any) {
			raw, _ := base64.RawURLEncoding.DecodeString(good)
			f["row"] = base64.RawURLEncoding.EncodeToString(append(raw, 0))
		}, want: []error{ErrKeyFile}},
		{name: "padded row", edit: func(f map[string]any) { f["row"] = good + "==" }, want: []error{ErrKeyFile}},
		{name: "std base64 row", edit: func(f map[string]any) {
			raw, _ := base64.RawURLEncoding.DecodeString(good)
			f["row"] = base64.StdEncoding.EncodeToString(raw)
		}, want: []error{ErrKeyFile}},
		{name: "row with '+'", edit: func(f map[string]any) { f["row"] = "+" + good[1:] }, want: []error{ErrKeyFile}},
		{name: "row with non-zero trailing bits", edit: func(f map[string]any) {
			// 64 bytes leave 4 unused bits in the last character.
			last := strings.IndexByte(b64URLAlphabet, good[len(good)-1])
			f["row"] = good[:len(good)-1] + string(b64URLAlphabet[last^1])
		}, want: []error{ErrKeyFile}},
		{name: "row element = p", edit: func(f map[string]any) { f["row"] = rowWith(0, p) }, want: []error{ErrKeyFile, ErrNonCanonical}},
		{name: "row element = p+1", edit: func(f map[string]any) { f["row"] = rowWith(1, new(big.Int).Add(p, bigOne)) }, want: []error{ErrKeyFile, ErrNonCanonical}},
		{name: "row element = 2^255", edit: func(f map[string]any) { f["row"] = rowWith(1, two255) }, want: []error{ErrKeyFile, ErrNonCanonical}},
		{name: "row element = 2^256-1", edit: func(f map[string]any) { f["row"] = rowWith(1, two256m1) }, want: []error{ErrKeyFile, ErrNonCanonical}},
		{name: "invalid identity", edit: func(f map[string]any) { f["identity"] = "merchant:Shop" }, want: []error{ErrKeyFile, ErrIdentity}},
		{name: "identity missing", edit: func(f map[string]any) { delete(f, "identity") }, want: []error{ErrKeyFile, ErrIdentity}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.raw)
			if tc.edit != nil {
				f := keyFields(t, key)
				tc.edit(f)
				in = encodeFields(t, f)
			}
			got, err := ParsePartyKey(in)
			if err == nil {
				t.Fatalf("ParsePartyKey accepted %s", in)
			}
			if got != nil {
				t.Fatal("ParsePartyKey returned a key with its error")
			}
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("error %q does not wrap %q", err, w)
				}
			}
		})
	}

	t.Run("boundary elements accepted", func(t *testing.T) {
		for _, v := range []*big.Int{new(big.Int), pMinus1} {
			f := keyFields(t, key)
			f["row"] = rowWith(1, v)
			k, err := ParsePartyKey(encodeFields(t, f))
			if err != nil {
				t.Fatalf("element %x refused: %v", v, err)
			}
			if got := eltToBig(k.row[1]); got.Cmp(v) != 0 {
				t.Fatalf("element %x read as %x", v, got)
			}
		}
	})
}

var bigOne = big.NewInt(1)

func TestParseParams(t *testing.T) {
	p := Params{Suite: SuiteOS1, System: [16]byte{0: 0xde, 15: 0x01}, K: DefaultK}
	good, err := p.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"v":1,"suite":"` + SuiteOS1 + `","system":"de000000000000000000000000000001","k":1024}`; string(good) != want {
		t.Fatalf("params file %s, want %s", good, want)
	}
	got, err := ParseParams(good)
	if err != nil || !got.Equal(p) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	s := string(good)
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"v=2", strings.Replace(s, `"v":1`, `"v":2`, 1), ErrVersion},
		{"suite", strings.Replace(s, SuiteOS1, "os1-not-a-suite-name", 1), ErrSuite},
		{"uppercase system", strings.Replace(s, "de00", "DE00", 1), ErrParams},
		{"k=0", strings.Replace(s, `"k":1024`, `"k":0`, 1), ErrParams},
		{"k>MaxK", strings.Replace(s, `"k":1024`, fmt.Sprintf(`"k":%d`, MaxK+1), 1), ErrParams},
		{"identity field", strings.Replace(s, `}`, `,"identity":"merchant:x"}`, 1), strictjson.ErrMalformed},
		{"key in other case", strings.Replace(s, `"k":`, `"K":`, 1), strictjson.ErrMalformed},
		{"duplicate k", strings.Replace(s, `"k":1024`, `"k":1024,"k":2`, 1), strictjson.ErrMalformed},
	} {
		if _, err := ParseParams([]byte(tc.in)); !errors.Is(err, tc.want) {
			t.Errorf("%s: ParseParams = %v, want %v", tc.name, err, tc.want)
		}
	}
	if p2, err := ParseParams([]byte(strings.Replace(s, `"k":1024`, fmt.Sprintf(`"k":%d`, MaxK), 1))); err != nil || p2.K != MaxK {
		t.Errorf("k=MaxK refused: %v", err)
	}
}

const b64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// TestPartyKeyErrorsHoldNoSecret: a key file with one bad element must not
// echo any of the row into the error, which ends up in logs.
func TestPartyKeyErrorsHoldNoSecret(t *testing.T) {
	m := testMaster(t, 4, testRand("no secret"))
	key := mustIssue(t, m, "cardholder:alice@example.org")
	raw := make([]byte, 4*fp.Size)
	for j := range key.row {
		encodeElt(raw[j*fp.Size:], &key.row[j])
	}
	bad := append([]byte{}, raw...)
	copy(bad[2*fp.Size:], leBytes(bigP)) // element 2 = p
	f := keyFields(t, key)
	f["row"] = base64.RawURLEncoding.EncodeToString(bad)
	data := encodeFields(t, f)

	dir := t.TempDir()
	path := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err1 := ParsePartyKey(data)
	_, err2 := LoadPartyKey(path)
	// Also the other failure paths that see the row.
	f["k"] = 5
	_, err3 := ParsePartyKey(encodeFields(t, f))
	f["k"], f["row"] = 4, f["row"].(string)+"=="
	_, err4 := ParsePartyKey(encodeFields(t, f))

	secrets := []string{
		base64.RawURLEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(bad),
		hex.EncodeToString(raw), hex.EncodeToString(bad),
	}
	for i, err := range []error{err1, err2, err3, err4} {
		if err == nil {
			t.Fatalf("case %d: bad key accepted", i)
		}
		msg := err.Error()
		lower := strings.ToLower(msg)
		for _, s := range secrets {
			for w := 0; w+12 <= len(s); w++ {
				win := s[w : w+12]
				if strings.Contains(msg, win) || isHex(s) && strings.Contains(lower, win) {
					t.Fatalf("case %d: error %q holds part of the row (%q)", i, msg, win)
				}
			}
		}
	}
}

func isHex(s string) bool { _, err := hex.DecodeString(s); return err == nil }

func TestPartyKeyFilePermissions(t *testing.T) {
	m := testMaster(t, 2, testRand("perm"))
	key := mustIssue(t, m, "issuer:bank.example")
	dir := t.TempDir()
	path := filepath.Join(dir, "bank.key")

	if err := key.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	before, _ := os.ReadFile(path)
	other := mustIssue(t, m, "issuer:other.example")
	if err := other.WriteFile(path); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second WriteFile = %v, want os.ErrExist", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("second WriteFile altered the existing key file")
	}

	got, err := LoadPartyKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(key) {
		t.Fatal("loaded key differs from the written one")
	}
	if _, err := LoadPartyKeyFor(path, m.Params()); err != nil {
		t.Fatalf("LoadPartyKeyFor(own params): %v", err)
	}

	for _, tc := range []struct {
		name   string
		params Params
	}{
		{"other system", Params{Suite: SuiteOS1, System: [16]byte{0xff}, K: 2}},
		{"other k", Params{Suite: SuiteOS1, System: m.params.System, K: 3}},
	} {
		if _, err := LoadPartyKeyFor(path, tc.params); !errors.Is(err, ErrSystem) {
			t.Errorf("LoadPartyKeyFor(%s) = %v, want ErrSystem", tc.name, err)
		}
	}

	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o644, 0o606} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadPartyKey(path); !errors.Is(err, secfile.ErrPermissions) {
			t.Errorf("LoadPartyKey(mode %04o) = %v, want secfile.ErrPermissions", mode, err)
		}
		if _, err := LoadPartyKeyFor(path, m.Params()); !errors.Is(err, secfile.ErrPermissions) {
			t.Errorf("LoadPartyKeyFor(mode %04o) = %v, want secfile.ErrPermissions", mode, err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadPartyKey(path); err != nil {
		t.Errorf("LoadPartyKey(mode 0400) = %v", err)
	}
	if _, err := LoadPartyKey(filepath.Join(dir, "missing.key")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadPartyKey(missing) = %v", err)
	}
}

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
			for j := range first.row {
				needles[fmt.Sprintf("row element %d %s", j, enc.name)] = []byte(enc.f(first.row[j][:]))
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
		{"k changed to 0", func(f map[string]any) { f["k"] = 0 }, ErrParams},
		{"system changed", func(f map[string]any) { f["system"] = otherSystem }, ErrPassphrase},
		{"system uppercased", func(f map[string]any) { f["system"] = strings.ToUpper(f["system"].(string)) }, ErrParams},
		{"kdf time", func(f map[string]any) { f["argon2id"].(map[string]any)["t"] = 2 }, ErrPassphrase},
		{"kdf memory below floor", func(f map[string]any) { f["argon2id"].(map[string]any)["m"] = 1024 }, ErrParams},
		{"version", func(f map[string]any) { f["v"] = 2 }, ErrVersion},
		{"suite malformed", func(f map[string]any) { f["suite"] = "os2" }, ErrSuite},
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
		for name, p := range map[string]Params{
			"other k":      {Suite: SuiteOS1, System: params.System, K: 5},
			"other system": {Suite: SuiteOS1, System: [16]byte{0xab}, K: params.K},
		} {
			b, _ := p.MarshalJSON()
			writeMode(t, paramsPath, b, 0o644)
			if _, err := OpenCenter(dir, []byte(testPassphrase)); !errors.Is(err, ErrSystem) {
				t.Errorf("%s: OpenCenter = %v, want ErrSystem", name, err)
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
		c, err := Init(d, 4, []byte("12345678"), InitOptions{KDF: cheapKDF})
		if err != nil {
			t.Fatalf("Init with an 8-character passphrase: %v", err)
		}
		c.Close()
	})

	t.Run("bad k and bad kdf", func(t *testing.T) {
		for _, k := range []int{0, -1, MaxK + 1} {
			if _, err := Init(filepath.Join(t.TempDir(), "c"), k, []byte(testPassphrase), InitOptions{KDF: cheapKDF}); !errors.Is(err, ErrParams) {
				t.Errorf("Init(k=%d) = %v, want ErrParams", k, err)
			}
		}
		if _, err := Init(filepath.Join(t.TempDir(), "c"), 4, []byte(testPassphrase), InitOptions{KDF: KDF{Time: 1, Memory: 1024, Threads: 1}}); !errors.Is(err, ErrParams) {
			t.Errorf("Init(weak KDF) = %v, want ErrParams", err)
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
	existing := filepath.Join(out, KeyFileName(ids[3]))
	if existing != filepath.Join(out, "carrier.parcel.example.key") {
		t.Fatalf("KeyFileName(%q) = %q", ids[3], filepath.Base(existing))
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
			if !errors.Is(r.Err, ErrIdentity) {
				t.Errorf("%s: err = %v, want ErrIdentity", r.Identity, r.Err)
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
			if r.Path != filepath.Join(out, KeyFileName(r.Identity)) {
				t.Errorf("%s written to %s", r.Identity, r.Path)
			}
			st, err := os.Stat(r.Path)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %04o, want 0600", r.Path, st.Mode().Perm())
			}
			k, err := LoadPartyKey(r.Path)
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
