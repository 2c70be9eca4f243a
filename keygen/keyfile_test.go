package keygen

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	fp "github.com/cloudflare/circl/math/fp25519"

	"orderseal/keygen/internal/field"

	"orderseal/internal/secfile"
	"orderseal/internal/strictjson"
)

// Key files (DESIGN.md §2 "Key files", §4.1 "Party key file"). The master
// file and batch issuance are keygen/center's (center/keyfile_test.go).

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
			field.Encode(raw[j*fp.Size:], &key.row[j])
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
		field.Encode(raw[j*fp.Size:], &key.row[j])
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
