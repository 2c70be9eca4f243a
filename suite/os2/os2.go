// Package os2 is suite OS2-BLOM25519+SOKBLS12381+XWING-HKDFSHA256-XCHACHA20POLY1305
// (DESIGN.md §2.1; PROTOCOL.md "Suite OS2"). Three independent secrets
// key each section, and breaking it needs all three:
//
//   - Blom over GF(2^255−19), one matrix per epoch: information-theoretic
//     below k colluders within one epoch;
//   - Sakai–Ohgishi–Kasahara identity-based key agreement on BLS12-381
//     (circl ecc/bls12381): no coalition of parties, of any size, computes
//     another pair's value; only the key center (or a quantum computer) can;
//   - X-Wing (ML-KEM-768 + X25519, circl kem/xwing) to the recipient's
//     directory-signed key of the epoch: post-quantum, and once the party
//     destroys that epoch's secret, no one — the key center included —
//     opens its sections again.
//
// The pairwise key K(A,B) = HKDF-SHA256(salt = system, ikm = enc(s_blom) ||
// enc(g), info = lp16("orderseal-v2-pairwise") || lp16(epoch) || lp16(lo) ||
// lp16(hi)) with g = e(H1(lo), H2(hi))^s; a section key is HKDF-SHA256(salt
// = K, ikm = X-Wing shared secret, info = lp16("orderseal-v2-section") ||
// lp16(role) || lp16(order_id)). The directory of KEM keys is signed with
// ML-DSA-65 (circl sign/mldsa/mldsa65). Only the composition is written here.
package os2

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cloudflare/circl/ecc/bls12381"
	"github.com/cloudflare/circl/kem"
	"github.com/cloudflare/circl/kem/xwing"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"golang.org/x/crypto/chacha20poly1305"

	"orderseal/internal/wire"
	"orderseal/keygen"
)

// Name is the suite's wire name.
const Name = "OS2-BLOM25519+SOKBLS12381+XWING-HKDFSHA256-XCHACHA20POLY1305"

// The hash-to-curve domain separation tags; each is followed by the
// system's lowercase hex (RFC 9380, BLS12381G1_XMD:SHA-256_SSWU_RO_ and
// BLS12381G2_XMD:SHA-256_SSWU_RO_ as circl's G1.Hash and G2.Hash compute).
const (
	DSTG1 = "orderseal-v2-sok-g1:"
	DSTG2 = "orderseal-v2-sok-g2:"
)

// Sizes of the encodings this suite fixes.
const (
	G1Size         = bls12381.G1SizeCompressed // 48
	G2Size         = bls12381.G2SizeCompressed // 96
	GTSize         = 576                       // circl Gt.MarshalBinary
	KEMCiphertext  = xwing.CiphertextSize      // 1120
	KEMPublicKey   = xwing.PublicKeySize       // 1216
	KEMSecretSize  = xwing.PrivateKeySize      // 32: the X-Wing seed
	DirectorySigSz = mldsa65.SignatureSize     // 3309
)

// Errors, each its own so that callers and logs can tell them apart.
var (
	ErrPoint     = errors.New("OS2: a group element is not canonical or not in its subgroup")
	ErrSOKKey    = errors.New("OS2: the identity-based key does not match the key center's public value")
	ErrNoEpochs  = errors.New("OS2: params carry no epochs")
	ErrKEMLength = errors.New("OS2: KEM ciphertext of the wrong length")
	ErrKEMKey    = errors.New("OS2: malformed KEM public key")
	ErrEntrySig  = errors.New("OS2: directory entry signature does not verify")
	ErrEntryOver = errors.New("OS2: directory entry is past its not_after")
	ErrEpochMix  = errors.New("OS2: keys of different epochs")
)

// Suite is OS2. Its zero value is ready to use.
type Suite struct{}

// Name implements suite.Suite.
func (Suite) Name() string { return Name }

// Available implements suite.Suite: OS2 is always available.
func (Suite) Available() error { return nil }

// msg is the hashed form of an identity in an epoch: lp16(id) || lp16(epoch).
func msg(id, epoch string) []byte {
	return wire.LP16(wire.LP16(make([]byte, 0, 4+len(id)+len(epoch)), []byte(id)), []byte(epoch))
}

// H1 is id's point in G1 for epoch: G1.Hash(lp16(id) || lp16(epoch), DSTG1 || hex(system)).
func H1(system [16]byte, id, epoch string) *bls12381.G1 {
	var p bls12381.G1
	p.Hash(msg(id, epoch), []byte(DSTG1+hex.EncodeToString(system[:])))
	return &p
}

// H2 is id's point in G2 for epoch: G2.Hash(lp16(id) || lp16(epoch), DSTG2 || hex(system)).
func H2(system [16]byte, id, epoch string) *bls12381.G2 {
	var p bls12381.G2
	p.Hash(msg(id, epoch), []byte(DSTG2+hex.EncodeToString(system[:])))
	return &p
}

// peerH2 is H2(system, id, epoch), kept by its input: hashing to G2 costs
// about as much as the pairing it feeds, and a lo party meets the same few
// hi peers (the daemons) again and again — a sealer of many orders, or
// the browser's checkout, derives toward them for every new key it holds.
// The points are public.
func peerH2(system [16]byte, id, epoch string) *bls12381.G2 {
	p, _ := identityPointsG2.get(string(system[:])+string(msg(id, epoch)), func() (*bls12381.G2, error) {
		return H2(system, id, epoch), nil
	})
	return p
}

// DecodeG1 reads a compressed G1 point, refusing a non-canonical encoding,
// a point off the curve or outside the subgroup, and the identity.
func DecodeG1(b []byte) (*bls12381.G1, error) {
	var p bls12381.G1
	if len(b) != G1Size || p.SetBytes(b) != nil || p.IsIdentity() || !bytes.Equal(p.BytesCompressed(), b) {
		return nil, ErrPoint
	}
	return &p, nil
}

// DecodeG2 is DecodeG1 for G2.
func DecodeG2(b []byte) (*bls12381.G2, error) {
	var p bls12381.G2
	if len(b) != G2Size || p.SetBytes(b) != nil || p.IsIdentity() || !bytes.Equal(p.BytesCompressed(), b) {
		return nil, ErrPoint
	}
	return &p, nil
}

// CheckParams implements suite.Suite: OS2 params have epochs whose SOK
// public value P is a canonical G2 point and whose directory key is an
// ML-DSA-65 public key.
func (Suite) CheckParams(p keygen.Params) error {
	if p.Epochs == nil {
		return ErrNoEpochs
	}
	if _, err := DecodeG2(p.Epochs.SOKPublic[:]); err != nil {
		return fmt.Errorf("sok_public: %w", err)
	}
	if _, err := directoryKey(p); err != nil {
		return err
	}
	return nil
}

func directoryKey(p keygen.Params) (*mldsa65.PublicKey, error) {
	if p.Epochs == nil {
		return nil, ErrNoEpochs
	}
	return directoryKeys.get(p.Epochs.DirectoryKey, func() (*mldsa65.PublicKey, error) {
		var pk mldsa65.PublicKey
		if err := pk.UnmarshalBinary(p.Epochs.DirectoryKey[:]); err != nil {
			return nil, fmt.Errorf("directory_key: %w", err)
		}
		return &pk, nil
	})
}

// CheckKey implements suite.Suite: the key's epoch is not over at now (its
// end plus grace), and its identity-based key is the key center's:
// e(d1, g2) = e(H1(id), P) and e(d1, H2(id)) = e(H1(id), d2).
func (s Suite) CheckKey(key *keygen.PartyKey, now time.Time) error {
	p := key.Params()
	if p.Epochs == nil {
		return ErrNoEpochs
	}
	if err := p.Epochs.Usable(key.Epoch(), now); err != nil {
		return err
	}
	P, err := DecodeG2(p.Epochs.SOKPublic[:])
	if err != nil {
		return err
	}
	d1, d2, err := sokKey(key)
	if err != nil {
		return err
	}
	h1 := H1(p.System, key.Identity(), key.Epoch())
	h2 := H2(p.System, key.Identity(), key.Epoch())
	// Both equations share their G1 sides, so they are checked as one:
	// e(d1, g2 + r·H2) · e(H1, P + r·d2)^−1 = 1 for a fresh random r of
	// 128 bits. If either equation fails, this one holds for at most one r
	// in 2^128 (the pairing group has prime order), and the key's maker
	// cannot know r. Two Miller loops and one final exponentiation instead
	// of four and two.
	r, err := checkScalar()
	if err != nil {
		return err
	}
	var left, right bls12381.G2
	left.ScalarMult(r, h2)
	left.Add(&left, bls12381.G2Generator())
	right.ScalarMult(r, d2)
	right.Add(&right, P)
	if !bls12381.ProdPairFrac([]*bls12381.G1{d1, h1}, []*bls12381.G2{&left, &right}, []int{1, -1}).IsIdentity() {
		return ErrSOKKey
	}
	return nil
}

// checkScalar is a random nonzero scalar below 2^128 for CheckKey's
// combined equation.
func checkScalar() (*bls12381.Scalar, error) {
	var b [16]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("os2: randomness for the key check: %w", err)
		}
		if b != [16]byte{} {
			break
		}
	}
	r := new(bls12381.Scalar)
	r.SetBytes(b[:])
	return r, nil
}

// SOK is g = e(H1(lo), H2(hi))^s for self and peer in self's epoch, lo and
// hi the two identities in byte order: e(d1(self), H2(peer)) when self is
// lo, e(H1(peer), d2(self)) when it is hi.
func SOK(self *keygen.PartyKey, peer string) (*bls12381.Gt, error) {
	if peer == self.Identity() {
		return nil, keygen.ErrSameIdentity
	}
	if err := keygen.ValidateIdentity(peer); err != nil {
		return nil, err
	}
	d1, d2, err := sokKey(self)
	if err != nil {
		return nil, err
	}
	sys, epoch := self.Params().System, self.Epoch()
	if self.Identity() < peer {
		return bls12381.Pair(d1, peerH2(sys, peer, epoch)), nil
	}
	return bls12381.Pair(H1(sys, peer, epoch), d2), nil
}

// Pairwise implements suite.Suite: K(self, peer) in self's epoch.
func (Suite) Pairwise(self *keygen.PartyKey, peer string) (keygen.Pairwise, error) {
	p := self.Params()
	if p.Epochs == nil || self.Epoch() == "" {
		return keygen.Pairwise{}, ErrNoEpochs
	}
	blom, err := self.BlomSecret(peer)
	if err != nil {
		return keygen.Pairwise{}, err
	}
	defer clear(blom[:])
	g, err := SOK(self, peer)
	if err != nil {
		return keygen.Pairwise{}, err
	}
	gt, err := g.MarshalBinary()
	if err != nil {
		return keygen.Pairwise{}, err
	}
	ikm := append(blom[:], gt...)
	defer clear(ikm)
	defer clear(gt)
	return keygen.DerivePairwiseIn(p.System, ikm, keygen.LabelPairwiseOS2, self.Epoch(), self.Identity(), peer)
}

// EncapSize implements suite.Suite: an X-Wing ciphertext.
func (Suite) EncapSize() int { return KEMCiphertext }

// Encapsulate implements suite.Suite: X-Wing to publicKey, with the
// encapsulation seed drawn from rand.
func (Suite) Encapsulate(publicKey []byte, rand io.Reader) (ct, ss []byte, err error) {
	if len(publicKey) != KEMPublicKey {
		return nil, nil, ErrKEMKey
	}
	pk, err := kemKeys.get([KEMPublicKey]byte(publicKey), func() (kem.PublicKey, error) {
		return xwing.Scheme().UnmarshalBinaryPublicKey(publicKey)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrKEMKey, err)
	}
	var seed [xwing.EncapsulationSeedSize]byte
	defer clear(seed[:])
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return nil, nil, err
	}
	return xwing.Scheme().EncapsulateDeterministically(pk, seed[:])
}

// VerifyEntry implements suite.Suite.
func (Suite) VerifyEntry(p keygen.Params, e *keygen.DirectoryEntry, now time.Time) error {
	pk, err := directoryKey(p)
	if err != nil {
		return err
	}
	if _, _, err := p.Epochs.Span(e.Epoch); err != nil {
		return err
	}
	if len(e.PublicKey) != KEMPublicKey {
		return ErrKEMKey
	}
	if !mldsa65.Verify(pk, e.SignedBytes(), nil, e.Signature) {
		return ErrEntrySig
	}
	if now.After(e.NotAfter) {
		return ErrEntryOver
	}
	return nil
}

// SectionAEAD implements suite.Suite: XChaCha20-Poly1305 under
// HKDF-SHA256(salt = K, ikm = ss, info = lp16("orderseal-v2-section") ||
// lp16(role) || lp16(order_id)).
func (Suite) SectionAEAD(k *keygen.Pairwise, ss []byte, role, orderID string) (cipher.AEAD, error) {
	if len(ss) != xwing.SharedKeySize {
		return nil, fmt.Errorf("OS2: KEM shared secret of %d bytes", len(ss))
	}
	sk := k.Mix(ss, keygen.LabelSectionOS2, role, orderID)
	defer clear(sk[:])
	return chacha20poly1305.NewX(sk[:])
}

// NonceSize implements suite.Suite.
func (Suite) NonceSize() int { return chacha20poly1305.NonceSizeX }

// Overhead implements suite.Suite.
func (Suite) Overhead() int { return chacha20poly1305.Overhead }
