// Package os1 is suite OS1-BLOM25519-HKDFSHA256-XCHACHA20POLY1305
// (DESIGN.md §2, §4.1; PROTOCOL.md): K(A,B) is HKDF-SHA256 of Blom's shared
// secret over GF(2^255−19), and each section is sealed with
// XChaCha20-Poly1305 under a key expanded from K. Any k colluding key
// holders can rebuild the key center's matrix: see DESIGN.md §2.1.
package os1

import (
	"crypto/cipher"
	"errors"
	"io"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"orderseal/keygen"
)

// Name is the suite's wire name.
const Name = keygen.SuiteOS1

// Suite is OS1. Its zero value is ready to use.
type Suite struct{}

// Name implements suite.Suite.
func (Suite) Name() string { return Name }

// Available implements suite.Suite: OS1 is always available.
func (Suite) Available() error { return nil }

// CheckParams implements suite.Suite: OS1 params have no epochs.
func (Suite) CheckParams(p keygen.Params) error {
	if p.Epochs != nil {
		return errors.New("OS1 params carry no epochs")
	}
	return nil
}

// CheckKey implements suite.Suite: an OS1 key is its row, checked at parse.
func (Suite) CheckKey(*keygen.PartyKey, time.Time) error { return nil }

// Pairwise is K(self, peer) = HKDF-SHA256(salt = system, ikm = s(self, peer),
// info = lp16("orderseal-v1-pairwise") || lp16(min) || lp16(max)).
func (Suite) Pairwise(self *keygen.PartyKey, peer string) (keygen.Pairwise, error) {
	s, err := self.BlomSecret(peer)
	if err != nil {
		return keygen.Pairwise{}, err
	}
	defer clear(s[:])
	return keygen.DerivePairwise(self.Params().System, s[:], keygen.LabelPairwise, self.Identity(), peer)
}

// SectionAEAD is XChaCha20-Poly1305 under HKDF-Expand(K, lp16("orderseal-v1-section") ||
// lp16(role) || lp16(order_id)).
func (Suite) SectionAEAD(k *keygen.Pairwise, ss []byte, role, orderID string) (cipher.AEAD, error) {
	if ss != nil {
		return nil, ErrNoKEM
	}
	sk := k.Expand(keygen.LabelSection, role, orderID)
	defer clear(sk[:])
	return chacha20poly1305.NewX(sk[:])
}

// ErrNoKEM is returned by the KEM methods: OS1 sections have no KEM.
var ErrNoKEM = errors.New("suite OS1 has no KEM and no directory")

// EncapSize implements suite.Suite: OS1 has no KEM.
func (Suite) EncapSize() int { return 0 }

// Encapsulate implements suite.Suite: it always fails.
func (Suite) Encapsulate([]byte, io.Reader) (ct, ss []byte, err error) { return nil, nil, ErrNoKEM }

// VerifyEntry implements suite.Suite: it always fails.
func (Suite) VerifyEntry(keygen.Params, *keygen.DirectoryEntry, time.Time) error { return ErrNoKEM }

// NonceSize implements suite.Suite.
func (Suite) NonceSize() int { return chacha20poly1305.NonceSizeX }

// Overhead implements suite.Suite.
func (Suite) Overhead() int { return chacha20poly1305.Overhead }
