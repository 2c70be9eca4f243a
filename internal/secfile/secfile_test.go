package secfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteNewAndRead(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k")
	if err := WriteNew(p, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %o", st.Mode().Perm())
	}
	if err := WriteNew(p, []byte("again")); !errors.Is(err, os.ErrExist) {
		t.Fatalf("overwrite allowed: %v", err)
	}
	if b, err := Read(p, 100); err != nil || string(b) != "secret" {
		t.Fatalf("read %q %v", b, err)
	}
	if _, err := Read(p, 3); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("want ErrTooLarge, got %v", err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o666} {
		os.Chmod(p, mode)
		if _, err := Read(p, 100); !errors.Is(err, ErrPermissions) {
			t.Fatalf("mode %o: want ErrPermissions, got %v", mode, err)
		}
	}
}

func TestReplace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "session.json")
	for _, data := range []string{"first", "second, longer", "3"} {
		if err := Replace(path, []byte(data)); err != nil {
			t.Fatal(err)
		}
		got, err := Read(path, 100)
		if err != nil || string(got) != data {
			t.Fatalf("Read = %q, %v; want %q", got, err, data)
		}
		st, err := os.Stat(path)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v, %v", st.Mode(), err)
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("left %d files behind", len(entries))
	}
	if err := Replace(filepath.Join(t.TempDir(), "missing", "x"), []byte("x")); err == nil {
		t.Fatal("wrote into a missing directory")
	}
}
