//go:build !nullrelay

package order

import (
	"crypto/cipher"

	"golang.org/x/crypto/chacha20poly1305"
)

// NullRelay reports whether this is a null relay build (see cipher_nullrelay.go).
const NullRelay = false

// newSectionCipher is XChaCha20-Poly1305 under a section key (DESIGN.md §4.1).
func newSectionCipher(key []byte) (cipher.AEAD, error) { return chacha20poly1305.NewX(key) }
