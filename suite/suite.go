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
	"io"
	"time"

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
	// CheckParams checks what params of this suite hold beyond their syntax
	// (keygen's part): under OS2, that the published points and keys decode.
	CheckParams(p keygen.Params) error
	// CheckKey checks a party key of this suite at now, beyond its syntax:
	// under OS2, its identity-based key against the params and its epoch.
	CheckKey(key *keygen.PartyKey, now time.Time) error
	// Pairwise derives K(self, peer) from self's party key (in its epoch,
	// for a suite with epochs).
	Pairwise(self *keygen.PartyKey, peer string) (keygen.Pairwise, error)
	// EncapSize is the exact size of a section's KEM ciphertext under a
	// suite that seals each section to the recipient's directory-signed
	// epoch key (OS2); 0 for a suite without a KEM, whose Encapsulate and
	// VerifyEntry always fail.
	EncapSize() int
	// Encapsulate draws a shared secret for the holder of publicKey.
	Encapsulate(publicKey []byte, rand io.Reader) (ct, ss []byte, err error)
	// VerifyEntry checks a directory entry under p's directory key at now:
	// its signature, its epoch's form and that it is not past not_after.
	VerifyEntry(p keygen.Params, e *keygen.DirectoryEntry, now time.Time) error
	// SectionAEAD keys the AEAD that seals role's section of order orderID
	// under k = K(cardholder, party) and, for a suite with a KEM, the
	// section's KEM shared secret ss (nil otherwise).
	SectionAEAD(k *keygen.Pairwise, ss []byte, role, orderID string) (cipher.AEAD, error)
	// NonceSize and Overhead are the section AEAD's nonce and tag sizes.
	NonceSize() int
	Overhead() int
}

// Decapsulator is a receiving party's KEM secret of one epoch.
type Decapsulator interface {
	Decapsulate(ct []byte) (ss []byte, err error)
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

// Check is what a program does with a party key it loads: its suite is one
// this process may use, and the suite accepts the params and the key at now.
func Check(key *keygen.PartyKey, now time.Time) error {
	s, err := For(key)
	if err != nil {
		return err
	}
	if err := s.CheckParams(key.Params()); err != nil {
		return err
	}
	return s.CheckKey(key, now)
}

// LoadKey loads a key file of role want (keygen.LoadRoleKey; "" for any
// role) and checks it (Check) at now; a key that fails is destroyed.
func LoadKey(path string, want keygen.Role, now time.Time) (*keygen.PartyKey, error) {
	var k *keygen.PartyKey
	var err error
	if want == "" {
		k, err = keygen.LoadPartyKey(path)
	} else {
		k, err = keygen.LoadRoleKey(path, want)
	}
	if err != nil {
		return nil, err
	}
	if err := Check(k, now); err != nil {
		k.Destroy()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// EpochKeys are a receiving party's keys of one epoch: the pairwise cache
// of its party key and, under a suite with a KEM, its KEM secret of that
// epoch. What order.Open takes for such a suite.
type EpochKeys struct {
	*keygen.Cache
	kem Decapsulator
}

// WithKEM pairs a party key's cache with the KEM secret of its epoch.
func WithKEM(c *keygen.Cache, kem Decapsulator) *EpochKeys { return &EpochKeys{Cache: c, kem: kem} }

// ErrNoKEM is returned by a keyring that holds no KEM secret.
var ErrNoKEM = errors.New("no KEM secret for this epoch (pruned, or never made)")

// Decapsulate opens a section's KEM ciphertext with the epoch's secret.
func (k *EpochKeys) Decapsulate(ct []byte) ([]byte, error) {
	if k.kem == nil {
		return nil, ErrNoKEM
	}
	return k.kem.Decapsulate(ct)
}

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
