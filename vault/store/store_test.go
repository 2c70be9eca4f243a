package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orderseal/internal/secfile"
)

func TestTokens(t *testing.T) {
	seen := map[string]bool{}
	for _, typ := range []TokenType{TypeAddress, TypePhone, TypeNationalID, TypeEmail} {
		for i := 0; i < 250; i++ {
			tok, err := NewToken(typ)
			if err != nil {
				t.Fatal(err)
			}
			if len(tok) != TokenLen || !strings.HasPrefix(tok, "tok_") || !strings.HasSuffix(tok, "_"+string(typ)) {
				t.Fatalf("bad token %q", tok)
			}
			if seen[tok] {
				t.Fatalf("token repeated: %s", tok)
			}
			seen[tok] = true
			got, err := ParseTokenType(tok)
			if err != nil || got != typ {
				t.Fatalf("ParseTokenType(%s) = %q, %v", tok, got, err)
			}
		}
	}
	if _, err := NewToken("xyz"); !errors.Is(err, ErrTokenType) {
		t.Fatalf("unknown type: %v", err)
	}
	good, _ := NewToken(TypeAddress)
	bad := map[string]string{
		"empty":         "",
		"prefix":        "tak_" + good[4:],
		"upper":         strings.ToUpper(good[:30]) + good[30:],
		"type":          good[:len(good)-3] + "xyz",
		"short":         good[:len(good)-1],
		"separator":     good[:30] + "-" + good[31:],
		"alphabet":      "tok_" + strings.Repeat("1", 26) + "_adr",
		"non-canonical": "tok_" + strings.Repeat("a", 25) + "b_adr", // last char carries 3 bits, its low 2 must be 0
	}
	for name, tok := range bad {
		if _, err := ParseTokenType(tok); !errors.Is(err, ErrBadToken) {
			t.Errorf("%s: %q accepted: %v", name, tok, err)
		}
	}
}

func TestDataKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "data.key")
	k, err := CreateDataKey(p)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v", st.Mode(), err)
	}
	if _, err := CreateDataKey(p); !errors.Is(err, os.ErrExist) {
		t.Fatalf("CreateDataKey overwrote a key: %v", err)
	}
	k2, err := LoadDataKey(p)
	if err != nil || !k.Equal(k2) {
		t.Fatalf("reload: %v", err)
	}
	if s := fmt.Sprintf("%v %s", k, k); strings.Contains(s, strings.TrimSpace(readFile(t, p))) {
		t.Fatal("key printed")
	}
	other, _ := CreateDataKey(filepath.Join(dir, "other.key"))
	if k.Equal(other) {
		t.Fatal("two fresh keys are equal")
	}

	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		os.Chmod(p, mode)
		if _, err := LoadDataKey(p); !errors.Is(err, secfile.ErrPermissions) {
			t.Fatalf("mode %o: want ErrPermissions, got %v", mode, err)
		}
	}
	os.Chmod(p, 0o600)

	for name, content := range map[string]string{
		"short":    "AAAA\n",
		"garbage":  "not base64 at all!!\n",
		"padded":   strings.Repeat("A", 43) + "=\n",
		"too long": strings.Repeat("A", 60) + "\n",
	} {
		q := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(q, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadDataKey(q); !errors.Is(err, ErrBadDataKey) {
			t.Errorf("%s: want ErrBadDataKey, got %v", name, err)
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
