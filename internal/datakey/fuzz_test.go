package datakey_test

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orderseal/internal/datakey"
	"orderseal/tstest/webtest"
)

// FuzzLoad: no key file makes Load panic; a file is refused with
// ErrMalformed unless it holds exactly 32 bytes of base64url, and a key it
// loads is the one its canonical text loads to. Seeds: testdata/fuzz/FuzzLoad.
func FuzzLoad(f *testing.F) {
	canonical := base64.RawURLEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	for name, s := range map[string]string{
		"canonical":      canonical + "\n",
		"no-newline":     canonical,
		"crlf-and-space": "  " + canonical + "\r\n",
		"padded":         canonical + "=\n",
		"std-alphabet":   base64.RawStdEncoding.EncodeToString([]byte("\xff\xfe0123456789abcdef0123456789ab")) + "\n",
		"short":          canonical[:40] + "\n",
		"two-keys":       canonical + "\n" + canonical + "\n",
	} {
		webtest.WriteCorpus(f, name, []byte(s))
	}
	dir := f.TempDir()
	path := filepath.Join(dir, "root.key")
	again := filepath.Join(dir, "again.key")
	load := func(p string, data []byte) (*datakey.Key, error) {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return nil, err
		}
		return datakey.Load(p)
	}
	// The text is parsed in memory (the fuzzed part); a key file holding
	// what parses must load to the same key.
	exercise := func(t testing.TB, data []byte) error {
		t.Helper()
		k, err := datakey.Parse("root.key", data)
		if err != nil {
			if !errors.Is(err, datakey.ErrMalformed) {
				t.Fatalf("refused with %v, want ErrMalformed", err)
			}
			return err
		}
		if kf, err := load(path, data); err != nil || !k.Equal(kf) {
			t.Fatalf("the key file holding %q loads otherwise (%v)", data, err)
		}
		raw, derr := base64.RawURLEncoding.Strict().DecodeString(strings.TrimSpace(string(data)))
		if derr != nil || len(raw) != datakey.Size {
			t.Fatalf("loaded a key from %q", data)
		}
		k2, err := load(again, []byte(base64.RawURLEncoding.EncodeToString(raw)+"\n"))
		if err != nil || !k.Equal(k2) {
			t.Fatalf("the canonical text loads to another key (%v)", err)
		}
		return nil
	}
	webtest.MustAccept(f, webtest.Corpus(f), func(data []byte) int { return webtest.StatusOf(exercise(f, data)) })
	f.Fuzz(func(t *testing.T, data []byte) { exercise(t, data) })
}
