package os2

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cloudflare/circl/kem/xwing"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"orderseal/keygen"
)

// KEMKey is a receiving party's X-Wing secret of one epoch: the 32-byte
// seed X-Wing derives its key pair from. Not comparable with ==; Destroy it
// when the epoch's grace is over, and nobody opens that epoch's sections
// again.
type KEMKey struct {
	seed [KEMSecretSize]byte
	sk   *xwing.PrivateKey
	pk   []byte
	_    [0]func()
}

// NewKEMKey draws a fresh X-Wing key pair from rand.
func NewKEMKey(rand io.Reader) (*KEMKey, error) {
	var seed [KEMSecretSize]byte
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return nil, err
	}
	defer clear(seed[:])
	return KEMKeyFromSeed(seed[:])
}

// KEMKeyFromSeed rebuilds a key pair from its seed.
func KEMKeyFromSeed(seed []byte) (*KEMKey, error) {
	if len(seed) != KEMSecretSize {
		return nil, fmt.Errorf("OS2: KEM secret of %d bytes, want %d", len(seed), KEMSecretSize)
	}
	k := &KEMKey{}
	copy(k.seed[:], seed)
	sk, pk := xwing.DeriveKeyPair(k.seed[:])
	k.sk = sk
	k.pk = make([]byte, KEMPublicKey)
	pk.Pack(k.pk)
	return k, nil
}

// PublicKey is the key to certify in the directory.
func (k *KEMKey) PublicKey() []byte { return append([]byte(nil), k.pk...) }

// Seed is a copy of the secret seed, for the party's key file. The caller clears it.
func (k *KEMKey) Seed() []byte { return append([]byte(nil), k.seed[:]...) }

// Equal compares two KEM keys in constant time.
func (k *KEMKey) Equal(o *KEMKey) bool { return subtle.ConstantTimeCompare(k.seed[:], o.seed[:]) == 1 }

// Decapsulate implements suite.Decapsulator: X-Wing decapsulation of a
// section's ciphertext, refusing one of the wrong length.
func (k *KEMKey) Decapsulate(ct []byte) ([]byte, error) {
	if k.sk == nil {
		return nil, errors.New("OS2: KEM key destroyed")
	}
	if len(ct) != KEMCiphertext {
		return nil, ErrKEMLength
	}
	ss := make([]byte, xwing.SharedKeySize)
	k.sk.DecapsulateTo(ss, ct)
	return ss, nil
}

// Destroy zeroes the seed and forgets the expanded key.
func (k *KEMKey) Destroy() {
	clear(k.seed[:])
	k.sk = nil
}

// EncapHash is SHA-256(kem_ct), what the canonical header holds per section.
func EncapHash(ct []byte) [32]byte { return sha256.Sum256(ct) }

// SignEntry certifies publicKey as identity's KEM key for epoch until
// notAfter (truncated to whole seconds, UTC) with the key center's
// directory key, after checking the epoch's form under params.
func SignEntry(params keygen.Params, sk *mldsa65.PrivateKey, identity, epoch string, publicKey []byte, notAfter time.Time) (*keygen.DirectoryEntry, error) {
	if params.Epochs == nil {
		return nil, ErrNoEpochs
	}
	if err := keygen.ValidateIdentity(identity); err != nil {
		return nil, err
	}
	if _, _, err := params.Epochs.Span(epoch); err != nil {
		return nil, err
	}
	if len(publicKey) != KEMPublicKey {
		return nil, ErrKEMKey
	}
	if _, err := xwing.Scheme().UnmarshalBinaryPublicKey(publicKey); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKEMKey, err)
	}
	e := &keygen.DirectoryEntry{Identity: identity, Epoch: epoch, PublicKey: append([]byte(nil), publicKey...),
		NotAfter: notAfter.UTC().Truncate(time.Second)}
	e.Signature = make([]byte, mldsa65.SignatureSize)
	if err := mldsa65.SignTo(sk, e.SignedBytes(), nil, false, e.Signature); err != nil {
		return nil, err
	}
	return e, nil
}
