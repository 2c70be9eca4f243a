package collude

import (
	"errors"
	"fmt"
	"io"

	"github.com/cloudflare/circl/ecc/bls12381"

	"orderseal/suite/os2"
)

// The coalition against suite OS2 (DESIGN.md §2.1).
//
// The Blom layer of an OS2 epoch falls exactly as OS1's: k rows of one
// epoch, read from the members' key files at their points
// x(id, epoch) (keygen.IdentityPointIn), rebuild that epoch's matrix, and
// Row gives the genuine Blom row of any identity in the epoch. Rows of
// different epochs are rows of different matrices and do not combine.
//
// The SOK layer does not fall. The strongest coalition of any size holds
// the public P = s·g2, its members' d1 = s·H1(i) and d2 = s·H2(i), and can
// hash any identity to H1(X), H2(X). From these it computes
//
//   - the SOK value of every pair with a member: e(d1(i), H2(X)) or
//     e(H1(X), d2(i));
//   - e(H1(X), P) = e(H1(X), g2)^s, and every product of these values;
//   - s·(Σ c_i·H1(i)) for any coefficients it likes — but H1(victim) is
//     not such a combination unless someone knows a discrete-logarithm
//     relation between hash-to-curve outputs;
//
// and not g = e(H1(lo), H2(hi))^s for a pair of non-members: that is the
// bilinear Diffie–Hellman problem (given g2, s·g2 and points of unknown
// logarithm, with H1 and H2 random oracles, SOK's security proof reduces
// it to BDH). So it cannot make d1 = s·H1(victim) or d2 = s·H2(victim)
// either — from d2 it would compute g. An OS2 key it forges has the right
// row and an identity-based key of its choosing (a SOK), which the public
// check e(d1, g2) = e(H1(id), P) refuses (os2.ErrSOKKey), and whose
// pairwise keys differ from the genuine ones in the SOK value, so that
// sections do not authenticate even with every other secret in hand.

// ErrSOK is returned by Forge under an epoch suite: the coalition rebuilds
// the Blom row, but cannot compute the identity-based key (BDH); choose
// one with ForgeWith.
var ErrSOK = errors.New("collude: the coalition cannot compute an identity-based key d1 = s·H1(id), d2 = s·H2(id) without the key center's s")

// SOK is an attacker's choice of identity-based key for a forged key of id:
// d1 || d2, compressed (os2.G1Size + os2.G2Size bytes), from what the
// coalition c holds. The choices below are what it can compute; a test may
// pass the genuine one (an oracle the coalition lacks) to show the Blom row
// is right.
type SOK func(c *Coalition, id string) ([]byte, error)

// MemberSOK is member i's own identity-based key, relabelled as id's: a
// genuine key, of the wrong identity.
func MemberSOK(i int) SOK {
	return func(c *Coalition, id string) ([]byte, error) {
		if i < 0 || i >= len(c.soks) {
			return nil, fmt.Errorf("collude: no member %d of %d", i, len(c.soks))
		}
		return append([]byte(nil), c.soks[i]...), nil
	}
}

// SumSOK is Σ_i d1(i) || Σ_i d2(i) over every member: the sum of all the
// coalition holds, s·Σ H1(i) and s·Σ H2(i), which is not s·H1(id).
func SumSOK() SOK {
	return func(c *Coalition, id string) ([]byte, error) {
		var s1 bls12381.G1
		var s2 bls12381.G2
		s1.SetIdentity()
		s2.SetIdentity()
		for i, b := range c.soks {
			d1, err := os2.DecodeG1(b[:os2.G1Size])
			if err != nil {
				return nil, fmt.Errorf("member %d d1: %w", i, err)
			}
			d2, err := os2.DecodeG2(b[os2.G1Size:])
			if err != nil {
				return nil, fmt.Errorf("member %d d2: %w", i, err)
			}
			s1.Add(&s1, d1)
			s2.Add(&s2, d2)
		}
		return encodeSOK(&s1, &s2)
	}
}

// HashSOK is H1(id) || H2(id) themselves: the key a master scalar of 1
// would issue.
func HashSOK() SOK { return ScaledSOK(nil) }

// ScaledSOK is r·H1(id) || r·H2(id): the key of id a key center of the
// attacker's own, with master scalar r (nil: 1) and public value r·g2,
// would issue. It is consistent in itself (e(d1, H2(id)) = e(H1(id), d2))
// and is not id's key of this system unless r = s.
func ScaledSOK(r *bls12381.Scalar) SOK {
	return func(c *Coalition, id string) ([]byte, error) {
		h1, h2 := os2.H1(c.params.System, id, c.epoch), os2.H2(c.params.System, id, c.epoch)
		if r == nil {
			return encodeSOK(h1, h2)
		}
		var d1 bls12381.G1
		var d2 bls12381.G2
		d1.ScalarMult(r, h1)
		d2.ScalarMult(r, h2)
		return encodeSOK(&d1, &d2)
	}
}

// RandomSOK is a·g1 || b·g2 for scalars a, b drawn from rand: valid points
// of unknown relation to anything.
func RandomSOK(rand io.Reader) SOK {
	return func(c *Coalition, id string) ([]byte, error) {
		var a, b bls12381.Scalar
		if err := a.Random(rand); err != nil {
			return nil, err
		}
		if err := b.Random(rand); err != nil {
			return nil, err
		}
		var d1 bls12381.G1
		var d2 bls12381.G2
		d1.ScalarMult(&a, bls12381.G1Generator())
		d2.ScalarMult(&b, bls12381.G2Generator())
		return encodeSOK(&d1, &d2)
	}
}

// encodeSOK is d1 || d2 compressed, refusing the identity (which a key may
// not hold, and which only a negligibly unlikely choice gives).
func encodeSOK(d1 *bls12381.G1, d2 *bls12381.G2) ([]byte, error) {
	if d1.IsIdentity() || d2.IsIdentity() {
		return nil, fmt.Errorf("collude: the chosen identity-based key is the identity: %w", os2.ErrPoint)
	}
	return append(d1.BytesCompressed(), d2.BytesCompressed()...), nil
}
