package keygen

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"io"

	"golang.org/x/crypto/hkdf"

	fp "github.com/cloudflare/circl/math/fp25519"

	"orderseal/internal/wire"
	"orderseal/keygen/internal/field"
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
	x, err := k.peerPoint(peer)
	if err != nil {
		return out, err
	}
	s := field.Horner(k.row, &x)
	field.Encode(out[:], &s)
	return out, nil
}

// peerPoint is x(peer), in the key's epoch under an epoch suite.
func (k *PartyKey) peerPoint(peer string) (fp.Elt, error) {
	if k.epoch != "" {
		return IdentityPointIn(k.params.System, peer, k.epoch)
	}
	return IdentityPoint(k.params.System, peer)
}

// DerivePairwise is how a suite turns its shared secret into K(a, b):
// HKDF-SHA256(salt = system, ikm, info = lp16(label) || lp16(min(a,b)) ||
// lp16(max(a,b))), 32 bytes, identities compared bytewise. Refuses a = b.
func DerivePairwise(system [16]byte, ikm []byte, label, a, b string) (Pairwise, error) {
	lo, hi, err := ordered(a, b)
	if err != nil {
		return Pairwise{}, err
	}
	return derive(system, ikm, Info(label, lo, hi))
}

// DerivePairwiseIn is DerivePairwise for a suite with epochs (DESIGN.md
// §2.1): info = lp16(label) || lp16(epoch) || lp16(min) || lp16(max).
func DerivePairwiseIn(system [16]byte, ikm []byte, label, epoch, a, b string) (Pairwise, error) {
	lo, hi, err := ordered(a, b)
	if err != nil {
		return Pairwise{}, err
	}
	if epoch == "" {
		return Pairwise{}, fmt.Errorf("%w: empty", ErrEpoch)
	}
	return derive(system, ikm, Info(label, epoch, lo, hi))
}

// ordered returns a and b bytewise in order, refusing a = b.
func ordered(a, b string) (lo, hi string, err error) {
	if a == b {
		return "", "", ErrSameIdentity
	}
	if b < a {
		return b, a, nil
	}
	return a, b, nil
}

func derive(system [16]byte, ikm, info []byte) (Pairwise, error) {
	var p Pairwise
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

// Mix derives a 32-byte key from K and a second secret:
// HKDF-SHA256(salt = K, ikm, info = Info(label, context...)), as suite
// OS2's section key mixes K with the KEM's shared secret. Labels are
// those Expand takes.
func (p *Pairwise) Mix(ikm []byte, label string, context ...string) [32]byte {
	if !knownLabel(label) {
		panic(fmt.Sprintf("keygen: unknown sub-key label %q", label))
	}
	var out [32]byte
	if _, err := io.ReadFull(hkdf.New(sha256.New, ikm, p.key[:], Info(label, context...)), out[:]); err != nil {
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
