package center

import (
	"crypto/rand"
	"crypto/sha3"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cloudflare/circl/ecc/bls12381"
	fp "github.com/cloudflare/circl/math/fp25519"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/suite/os2"
)

// The master of an epoch suite (OS2, DESIGN.md §2.1) is one 32-byte root
// seed; every secret of the center is expanded from it with its own label,
// so that splitting the root among officers splits all of them:
//
//	Blom seed of epoch E = SHAKE256(lp16("orderseal-v2-master-blom") || root || lp16(E))[:32]
//	SOK scalar s        = SHAKE256(lp16("orderseal-v2-master-sok") || root)[:64] mod r
//	ML-DSA-65 seed      = SHAKE256(lp16("orderseal-v2-master-mldsa") || root)[:32]
//
// The Blom matrix of epoch E is then expanded from its seed exactly as
// OS1's (Master.expand), so colluders must gather k rows of one epoch.
const (
	labelRootBlom  = "orderseal-v2-master-blom"
	labelRootSOK   = "orderseal-v2-master-sok"
	labelRootMLDSA = "orderseal-v2-master-mldsa"
)

// ErrNoEpoch is returned when an epoch suite's master issues without an epoch.
var ErrNoEpoch = errors.New("an epoch suite's keys are issued for an epoch (ForEpoch)")

// epochSecrets are the secrets an epoch suite's master holds beside its root.
type epochSecrets struct {
	sok *bls12381.Scalar
	dsa *mldsa65.PrivateKey
}

func expandRoot(root []byte, label string, extra []byte, n int) []byte {
	x := sha3.NewSHAKE256()
	x.Write(wire.LP16(nil, []byte(label)))
	x.Write(root)
	x.Write(extra)
	out := make([]byte, n)
	x.Read(out)
	return out
}

// NewEpochMaster creates fresh parameters and a root seed for an epoch
// suite: k coefficients per row, epochs of period with grace.
func NewEpochMaster(suiteName string, k int, period string, grace time.Duration, r io.Reader) (*Master, error) {
	if r == nil {
		r = rand.Reader
	}
	var system [16]byte
	var root [32]byte
	if _, err := io.ReadFull(r, system[:]); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(r, root[:]); err != nil {
		return nil, err
	}
	defer clear(root[:])
	return EpochMasterFromSeed(keygen.Params{Suite: suiteName, System: system, K: k,
		Epochs: &keygen.Epochs{Period: period, Grace: grace}}, root)
}

// EpochMasterFromSeed rebuilds an epoch suite's master from its root seed
// (known-answer tests, recovery from officers' shares). The params' SOK
// public value and directory key are computed from the root, whatever
// params holds there.
func EpochMasterFromSeed(params keygen.Params, root [32]byte) (*Master, error) {
	if params.Epochs == nil {
		return nil, fmt.Errorf("%w: an epoch suite's params carry epochs", keygen.ErrParams)
	}
	sokBytes := expandRoot(root[:], labelRootSOK, nil, 64)
	defer clear(sokBytes)
	var s bls12381.Scalar
	s.SetBytes(sokBytes)
	if s.IsZero() == 1 {
		return nil, errors.New("root seed gives a zero SOK scalar")
	}
	dsaSeed := [mldsa65.SeedSize]byte(expandRoot(root[:], labelRootMLDSA, nil, mldsa65.SeedSize))
	defer clear(dsaSeed[:])
	pk, sk := mldsa65.NewKeyFromSeed(&dsaSeed)

	e := *params.Epochs
	var P bls12381.G2
	P.ScalarMult(&s, bls12381.G2Generator())
	copy(e.SOKPublic[:], P.BytesCompressed())
	pkb, err := pk.MarshalBinary()
	if err != nil {
		return nil, err
	}
	copy(e.DirectoryKey[:], pkb)
	params.Epochs = &e
	if err := params.Check(); err != nil {
		return nil, err
	}
	return &Master{params: params, seed: root, secrets: &epochSecrets{sok: &s, dsa: sk}}, nil
}

// ForEpoch is the master of one epoch: its own Blom matrix (expanded from
// the epoch's seed) and the center's SOK scalar. It is a new Master; the
// caller destroys it.
func (m *Master) ForEpoch(epoch string) (*Master, error) {
	if m.secrets == nil {
		return nil, fmt.Errorf("%w: suite %s has no epochs", keygen.ErrParams, m.params.Suite)
	}
	if m.epoch != "" {
		return nil, fmt.Errorf("already the master of epoch %s", m.epoch)
	}
	if _, _, err := m.params.Epochs.Span(epoch); err != nil {
		return nil, err
	}
	seed := expandRoot(m.seed[:], labelRootBlom, wire.LP16(nil, []byte(epoch)), 32)
	defer clear(seed)
	return &Master{params: m.params, seed: [32]byte(seed), epoch: epoch, secrets: m.secrets}, nil
}

// Epoch is the epoch the master issues for ("" for OS1 and for an epoch
// suite's root master).
func (m *Master) Epoch() string { return m.epoch }

// point is x(id) as the master's keys hash it: in its epoch, if it has one.
func (m *Master) point(id string) (fp.Elt, error) {
	if m.secrets != nil {
		if m.epoch == "" {
			return fp.Elt{}, ErrNoEpoch
		}
		return keygen.IdentityPointIn(m.params.System, id, m.epoch)
	}
	return keygen.IdentityPoint(m.params.System, id)
}

// newKey wraps a row the center computed as the party key of id (which
// keeps a copy), adding the identity-based key d1 = s·H1(id), d2 = s·H2(id)
// under an epoch suite, and clears the center's row.
func (m *Master) newKey(id string, row []fp.Elt) (*keygen.PartyKey, error) {
	defer clear(row)
	if m.secrets == nil {
		return keygen.NewPartyKey(m.params, id, row)
	}
	sok := m.sokKey(id)
	defer clear(sok)
	return keygen.NewEpochPartyKey(m.params, id, m.epoch, row, sok)
}

// sokKey is d1 || d2 for id in the master's epoch, compressed.
func (m *Master) sokKey(id string) []byte {
	var d1 bls12381.G1
	var d2 bls12381.G2
	d1.ScalarMult(m.secrets.sok, os2.H1(m.params.System, id, m.epoch))
	d2.ScalarMult(m.secrets.sok, os2.H2(m.params.System, id, m.epoch))
	return append(d1.BytesCompressed(), d2.BytesCompressed()...)
}

// SignEntry certifies a receiving party's KEM public key for epoch until
// notAfter: the directory entry of DESIGN.md §2.1.
func (m *Master) SignEntry(identity, epoch string, publicKey []byte, notAfter time.Time) (*keygen.DirectoryEntry, error) {
	if m.secrets == nil {
		return nil, fmt.Errorf("%w: suite %s has no directory", keygen.ErrParams, m.params.Suite)
	}
	return os2.SignEntry(m.params, m.secrets.dsa, identity, epoch, publicKey, notAfter)
}
