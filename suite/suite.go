// Package suite is the seam between orderseal's protocol and its crypto
// (DESIGN.md §2, §2.1, §4.1; PROTOCOL.md): a Suite names one set of
// algorithms — how two parties derive their pairwise key K from their party
// keys, and how a section is sealed under it — and the registry finds a
// suite by the name a bundle, a params file or a key file carries. Each
// suite is one package (os1, null); registry.go lists them, in the manner
// of circl's kem/schemes.
package suite

import (
	"crypto/cipher"
	"errors"
	"fmt"

	"orderseal/keygen"
)

// Errors. Callers test with errors.Is.
var (
	// ErrUnknown is returned for a suite name no registered suite has.
	ErrUnknown = errors.New("unsupported suite")
	// ErrUnavailable is returned for a registered suite this process may
	// not use (the null suite outside a benchmark).
	ErrUnavailable = errors.New("suite not available in this process")
)

// Suite is one named set of algorithms.
type Suite interface {
	// Name is the suite's wire name, as in bundles, params and key files.
	Name() string
	// Available is nil when this process may use the suite.
	Available() error
	// Pairwise derives K(self, peer) from self's party key.
	Pairwise(self *keygen.PartyKey, peer string) (keygen.Pairwise, error)
	// SectionAEAD keys the AEAD that seals role's section of order orderID
	// under k = K(cardholder, party).
	SectionAEAD(k *keygen.Pairwise, role, orderID string) (cipher.AEAD, error)
	// NonceSize and Overhead are the section AEAD's nonce and tag sizes.
	NonceSize() int
	Overhead() int
}

// ByName returns the registered suite called name, if this process may use it.
func ByName(name string) (Suite, error) {
	for _, s := range registered {
		if s.Name() == name {
			if err := s.Available(); err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrUnavailable, name, err)
			}
			return s, nil
		}
	}
	return nil, fmt.Errorf("%w: %.64q", ErrUnknown, name)
}

// Names lists every registered suite's name, the default first.
func Names() []string {
	out := make([]string, len(registered))
	for i, s := range registered {
		out[i] = s.Name()
	}
	return out
}

// Default is the suite a key center issues keys for unless told otherwise.
func Default() Suite { return registered[0] }

// For returns the suite of a party key.
func For(key *keygen.PartyKey) (Suite, error) { return ByName(key.Params().Suite) }

// NewKeys binds a party key to its suite, with a cache of the pairwise keys
// of its size most recent peers: what a daemon or a client seals, opens and
// signs with. A key of a suite this process cannot use yields a cache whose
// every derivation fails with that reason; Check it at load to fail early.
func NewKeys(key *keygen.PartyKey, size int) *keygen.Cache {
	s, err := For(key)
	derive := func(peer string) (keygen.Pairwise, error) { return keygen.Pairwise{}, err }
	if err == nil {
		derive = func(peer string) (keygen.Pairwise, error) { return s.Pairwise(key, peer) }
	}
	return keygen.NewCache(key, size, derive)
}

// Pairwise derives K(self, peer) under self's suite, uncached.
func Pairwise(self *keygen.PartyKey, peer string) (keygen.Pairwise, error) {
	s, err := For(self)
	if err != nil {
		return keygen.Pairwise{}, err
	}
	return s.Pairwise(self, peer)
}
