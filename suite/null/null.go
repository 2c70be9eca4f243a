// Package null is the null relay suite, for benchmarks only: every pair's
// Blom secret is taken as zero (K is HKDF of the two identities alone) and
// sections travel in the clear behind a zero tag of XChaCha20-Poly1305's
// sizes. A benchmark runs the same hops and durable writes under it, as the
// physical limit the real suite is measured against. Anyone can forge and
// read its bundles, so a process refuses it unless EnvVar is set.
package null

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"orderseal/keygen"
)

// Name is the suite's wire name.
const Name = "NULL-RELAY-BENCHMARK-ONLY"

// EnvVar must be EnvValue for a process to use the null suite.
const (
	EnvVar   = "ORDERSEAL_NULL_RELAY"
	EnvValue = "benchmark-only"
)

// Suite is the null relay suite.
type Suite struct{}

// Name implements suite.Suite.
func (Suite) Name() string { return Name }

// Available is nil only with EnvVar=EnvValue in the environment.
func (Suite) Available() error {
	if os.Getenv(EnvVar) != EnvValue {
		return fmt.Errorf("sections are not encrypted under it; it runs only for benchmarks, with %s=%s", EnvVar, EnvValue)
	}
	return nil
}

// CheckParams implements suite.Suite: null params have no epochs.
func (Suite) CheckParams(p keygen.Params) error {
	if p.Epochs != nil {
		return errors.New("null suite params carry no epochs")
	}
	return nil
}

// CheckKey implements suite.Suite: there is nothing to check.
func (Suite) CheckKey(*keygen.PartyKey, time.Time) error { return nil }

// errNoKEM is returned by the KEM methods: the null suite has none.
var errNoKEM = errors.New("the null suite has no KEM and no directory")

// EncapSize implements suite.Suite: no KEM.
func (Suite) EncapSize() int { return 0 }

// Encapsulate implements suite.Suite: it always fails.
func (Suite) Encapsulate([]byte, io.Reader) (ct, ss []byte, err error) { return nil, nil, errNoKEM }

// VerifyEntry implements suite.Suite: it always fails.
func (Suite) VerifyEntry(keygen.Params, *keygen.DirectoryEntry, time.Time) error { return errNoKEM }

// Pairwise skips Blom's derivation: K(self, peer) is derived from a zero
// secret, after the same identity checks OS1 makes.
func (Suite) Pairwise(self *keygen.PartyKey, peer string) (keygen.Pairwise, error) {
	if _, err := keygen.IdentityPoint(self.Params().System, peer); err != nil {
		return keygen.Pairwise{}, err
	}
	var zero [32]byte
	return keygen.DerivePairwise(self.Params().System, zero[:], keygen.LabelPairwise, self.Identity(), peer)
}

// SectionAEAD returns the null AEAD, whatever the key.
func (Suite) SectionAEAD(k *keygen.Pairwise, ss []byte, role, orderID string) (cipher.AEAD, error) {
	if ss != nil {
		return nil, errNoKEM
	}
	return nullAEAD{}, nil
}

// NonceSize implements suite.Suite.
func (Suite) NonceSize() int { return chacha20poly1305.NonceSizeX }

// Overhead implements suite.Suite.
func (Suite) Overhead() int { return chacha20poly1305.Overhead }

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
		return nil, errors.New("null suite: short section")
	}
	for _, b := range ciphertext[n:] {
		if b != 0 {
			return nil, errors.New("null suite: not a null section")
		}
	}
	return append(dst, ciphertext[:n]...), nil
}
