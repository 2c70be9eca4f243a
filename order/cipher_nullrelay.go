//go:build nullrelay

package order

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"os"

	"golang.org/x/crypto/chacha20poly1305"
)

// NullRelay reports whether this is a null relay build: built with
// -tags nullrelay, sections travel in the clear behind a zero tag, so a
// benchmark can run the same hops and durable writes without sealing, as the
// physical limit the real stack is measured against. Never a production
// build: a program linking it exits at start unless NullRelayEnv is set.
const NullRelay = true

// NullRelayEnv must be "benchmark-only" for a null relay build to run.
const NullRelayEnv = "ORDERSEAL_NULL_RELAY"

func init() {
	if os.Getenv(NullRelayEnv) != "benchmark-only" {
		fmt.Fprintf(os.Stderr, "this is a null relay build (-tags nullrelay): order sections are NOT encrypted; "+
			"it runs only for benchmarks, with %s=benchmark-only\n", NullRelayEnv)
		os.Exit(2)
	}
}

func newSectionCipher(key []byte) (cipher.AEAD, error) {
	if len(key) != chacha20poly1305.KeySize {
		return nil, errors.New("order: section key must be 32 bytes")
	}
	return nullAEAD{}, nil
}

// nullAEAD keeps XChaCha20-Poly1305's sizes: the plaintext, then 16 zero bytes.
type nullAEAD struct{}

func (nullAEAD) NonceSize() int { return chacha20poly1305.NonceSizeX }
func (nullAEAD) Overhead() int  { return chacha20poly1305.Overhead }

func (nullAEAD) Seal(dst, nonce, plaintext, _ []byte) []byte {
	dst = append(dst, plaintext...)
	return append(dst, make([]byte, chacha20poly1305.Overhead)...)
}

func (nullAEAD) Open(dst, nonce, ciphertext, _ []byte) ([]byte, error) {
	n := len(ciphertext) - chacha20poly1305.Overhead
	if n < 0 {
		return nil, errors.New("order: null relay: short section")
	}
	for _, b := range ciphertext[n:] {
		if b != 0 {
			return nil, errors.New("order: null relay: not a null section")
		}
	}
	return append(dst, ciphertext[:n]...), nil
}
