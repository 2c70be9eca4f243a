package datakey

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orderseal/internal/secfile"
)

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "root.key")
	k, err := Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	if _, err := Create(p); !errors.Is(err, os.ErrExist) {
		t.Fatalf("Create overwrote a key: %v", err)
	}
	k2, err := Load(p)
	if err != nil || !k.Equal(k2) {
		t.Fatalf("reload: %v", err)
	}
	text, _ := os.ReadFile(p)
	if s := fmt.Sprintf("%v %s %#v %+v", k, k, k, k); strings.Contains(s, strings.TrimSpace(string(text))) {
		t.Fatal("key printed")
	}
	a, b := k.Expand("label-a"), k.Expand("label-b")
	if len(a) != Size || string(a) == string(b) || string(a) != string(k2.Expand("label-a")) {
		t.Fatal("Expand: labels must separate and be deterministic")
	}
	other, _ := Create(filepath.Join(dir, "other.key"))
	if k.Equal(other) || k.Equal(nil) {
		t.Fatal("distinct keys compare equal")
	}
	os.Chmod(p, 0o640)
	if _, err := Load(p); !errors.Is(err, secfile.ErrPermissions) {
		t.Fatalf("0640: %v", err)
	}
	for name, content := range map[string]string{
		"short": "AAAA\n", "garbage": "!!\n", "padded": strings.Repeat("A", 43) + "=\n", "long": strings.Repeat("A", 60),
	} {
		q := filepath.Join(dir, name)
		os.WriteFile(q, []byte(content), 0o600)
		if _, err := Load(q); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	k.Destroy()
	if k.Equal(k2) {
		t.Fatal("Destroy left the key")
	}
}
