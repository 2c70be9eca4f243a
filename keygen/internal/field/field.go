package field

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"

	fp "github.com/cloudflare/circl/math/fp25519"
)

// ErrNonCanonical is returned for a field element encoding that is ≥ p.
var ErrNonCanonical = errors.New("non-canonical field element")

// Decode reads a 32-byte little-endian element and refuses values ≥ p,
// in constant time since rows are secret.
func Decode(b []byte) (fp.Elt, error) {
	var e fp.Elt
	if len(b) != fp.Size {
		return e, ErrNonCanonical
	}
	copy(e[:], b)
	if !IsCanonical(&e) {
		return fp.Elt{}, ErrNonCanonical
	}
	return e, nil
}

// IsCanonical reports whether e < p without branching on its value.
func IsCanonical(e *fp.Elt) bool {
	p := fp.P()
	var borrow uint64
	for i := 0; i < 4; i++ {
		a := binary.LittleEndian.Uint64(e[8*i:])
		b := binary.LittleEndian.Uint64(p[8*i:])
		_, borrow = sub64(a, b, borrow)
	}
	return borrow == 1 // e − p underflowed, so e < p
}

func sub64(x, y, borrow uint64) (diff, borrowOut uint64) {
	diff = x - y - borrow
	borrowOut = ((^x & y) | (^(x ^ y) & diff)) >> 63
	return
}

// Encode writes the canonical encoding of e.
func Encode(dst []byte, e *fp.Elt) {
	c := *e
	fp.Modp(&c)
	copy(dst, c[:])
}

// Equal compares two elements in constant time.
func Equal(a, b *fp.Elt) bool {
	x, y := *a, *b
	fp.Modp(&x)
	fp.Modp(&y)
	return subtle.ConstantTimeCompare(x[:], y[:]) == 1
}
