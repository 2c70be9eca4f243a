package keygen

import (
	"bytes"
	"crypto/sha256"
	"io"
	"testing"

	"golang.org/x/crypto/hkdf"
)

// TestHKDFMatchesXCrypto: Pairwise's own HKDF-SHA256 against x/crypto/hkdf,
// for salts up to the 64-byte limit and infos of any length.
func TestHKDFMatchesXCrypto(t *testing.T) {
	r := testRand("hkdf")
	for i := 0; i < 2000; i++ {
		salt := make([]byte, r.IntN(65))
		ikm := make([]byte, 32)
		info := make([]byte, r.IntN(600))
		for _, b := range [][]byte{salt, ikm, info} {
			for j := range b {
				b[j] = byte(r.Uint32())
			}
		}
		var want [32]byte
		if _, err := io.ReadFull(hkdf.New(sha256.New, ikm, salt, info), want[:]); err != nil {
			t.Fatal(err)
		}
		if got := hkdfSHA256(salt, ikm, info); !bytes.Equal(got[:], want[:]) {
			t.Fatalf("salt %x ikm %x info %x: %x, want %x", salt, ikm, info, got, want)
		}
	}
}
