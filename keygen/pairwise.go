package keygen

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"io"

	fp "github.com/cloudflare/circl/math/fp25519"
	"golang.org/x/crypto/hkdf"

	"orderseal/internal/wire"
)

// Pairwise is K(A,B), the 32-byte key two parties share. It is only ever
// used through Expand, one label per purpose. Not comparable with ==.
type Pairwise struct {
	key [32]byte
	_   [0]func()
}

// BlomSecret is Blom's raw shared secret s(self, peer) = Σ r_a · x(peer)^a
// (DESIGN.md §2), canonical little-endian: the input a suite derives K from.
// s(A, B) = s(B, A). The caller clears it.
func (k *PartyKey) BlomSecret(peer string) ([32]byte, error) {
	var out [32]byte
	if peer == k.identity {
		return out, ErrSameIdentity
	}
	x, err := IdentityPoint(k.params.System, peer)
	if err != nil {
		return out, err
	}
	s := horner(k.row, &x)
	encodeElt(out[:], &s)
	return out, nil
}

// hornerBlock is how many coefficients share one reduction in horner.
const hornerBlock = 32

// horner evaluates Σ row[a]·x^a mod p, canonical. It is Horner's rule in
// y = x^B (B = hornerBlock): from the top, s ← s·y + Σ_{t<B} row[base+t]·x^t,
// where the B products of a step are summed unreduced (fe.go) and reduced
// once. Those products do not depend on s, so the CPU overlaps them with
// the one that does, where plain Horner waits for each multiplication
// before it starts the next.
//
// Constant-time in row and x: only len(row) shapes the loops.
func horner(row []fp.Elt, x *fp.Elt) fp.Elt {
	const B = hornerBlock
	var pw [B + 1]fp.Elt // x^0 … x^B (< 2^256, not necessarily canonical)
	fp.SetOne(&pw[0])
	pw[1] = *x
	fp.Sqr(&pw[2], x)
	for t := 3; t <= B; t += 2 { // two independent chains, odd and even
		fp.Mul(&pw[t], &pw[t-2], &pw[2])
		if t+1 <= B {
			fp.Mul(&pw[t+1], &pw[t-1], &pw[2])
		}
	}
	k := len(row)
	top := (k - 1) / B * B // row[top:] is the highest block, maybe short
	var acc wide
	dotAdd(&acc, row[top+1:], pw[1:k-top])
	r := loadFe(&row[top])
	acc.add(&r)
	s := acc.reduce()
	var sElt [1]fp.Elt
	for base := top - B; base >= 0; base -= B {
		acc = wide{}
		dotAdd(&acc, row[base+1:base+B], pw[1:B])
		r := loadFe(&row[base])
		acc.add(&r)
		sElt[0] = s.elt()
		dotAdd(&acc, sElt[:], pw[B:])
		s = acc.reduce()
	}
	clear(pw[:])
	clear(sElt[:])
	out := s.elt()
	s = fe{}
	return out
}

// DerivePairwise is how a suite turns its shared secret into K(a, b):
// HKDF-SHA256(salt = system, ikm, info = lp16(label) || lp16(min(a,b)) ||
// lp16(max(a,b))), 32 bytes, identities compared bytewise. Refuses a = b.
func DerivePairwise(system [16]byte, ikm []byte, label, a, b string) (Pairwise, error) {
	var p Pairwise
	if a == b {
		return p, ErrSameIdentity
	}
	lo, hi := a, b
	if hi < lo {
		lo, hi = hi, lo
	}
	info := Info(label, lo, hi)
	if _, err := io.ReadFull(hkdf.New(sha256.New, ikm, system[:], info), p.key[:]); err != nil {
		return p, err
	}
	return p, nil
}

// Info is the HKDF info of every orderseal key derivation: lp16(label) ||
// lp16(context[0]) || …, so no label or context can run into the next
// (labels.go lists every label).
func Info(label string, context ...string) []byte {
	n := 2 + len(label)
	for _, c := range context {
		n += 2 + len(c)
	}
	info := wire.LP16(make([]byte, 0, n), []byte(label))
	for _, c := range context {
		info = wire.LP16(info, []byte(c))
	}
	return info
}

// Equal compares in constant time.
func (p *Pairwise) Equal(q *Pairwise) bool {
	return subtle.ConstantTimeCompare(p.key[:], q.key[:]) == 1
}

// Expand derives a 32-byte sub-key: HKDF-Expand(K, Info(label, context...)).
// Labels are the constants of labels.go, one per purpose; any other label is
// a programming error.
func (p *Pairwise) Expand(label string, context ...string) [32]byte {
	if !knownLabel(label) {
		panic(fmt.Sprintf("keygen: unknown sub-key label %q", label))
	}
	info := Info(label, context...)
	var out [32]byte
	if _, err := io.ReadFull(hkdf.Expand(sha256.New, p.key[:], info), out[:]); err != nil {
		panic(err) // 32 bytes is always within HKDF-SHA256's output limit
	}
	return out
}

// Fingerprint is a short code two parties compare out of band to confirm
// they derived the same K; it is a one-way sub-key, so it reveals nothing of K.
func (p *Pairwise) Fingerprint() string {
	sub := p.Expand(LabelFingerprint)
	s := base32.StdEncoding.EncodeToString(sub[:15])[:20]
	return s[0:5] + "-" + s[5:10] + "-" + s[10:15] + "-" + s[15:20]
}
