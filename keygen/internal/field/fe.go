// Package field is the GF(2^255−19) arithmetic shared by keygen (a party
// evaluating its row, DESIGN.md §2) and keygen/center (the key center
// computing rows): multiply-accumulate with lazy reduction, with MULX/ADX
// kernels on amd64 (fe_amd64.s) and portable code elsewhere or under the
// purego tag, and the canonical 32-byte encoding of elements.
package field

import (
	"encoding/binary"
	"math/bits"

	fp "github.com/cloudflare/circl/math/fp25519"
)

// Multiply-accumulate arithmetic in GF(2^255−19) with lazy reduction, for
// the two hot loops of keygen: evaluating a row at a peer's point (Horner,
// horner.go) and D·v(x) at the key center (keygen/center's batch.go). A
// 256×256-bit product is kept unreduced (512 bits) and summed into a
// 576-bit accumulator; the sum is reduced once, instead of once per product as
// fp.Mul does.
//
// Everything here is constant-time in the values: no branch and no memory
// index depends on a limb, only on lengths. fe_test.go checks it against
// fp25519 and math/big.

// Fe is a field element as four 64-bit limbs, least significant first.
// Any value < 2^256 is allowed as a multiplication operand; functions that
// say "canonical" return values < p.
type Fe [4]uint64

// Wide is an unreduced sum of 512-bit products: nine limbs, least
// significant first. The ninth limb absorbs carries, so up to 2^63 products
// of operands < 2^256 can be summed before reducing.
type Wide [9]uint64

// p = 2^255 − 19 as limbs.
const (
	p0 = 0xffffffffffffffed
	p1 = 0xffffffffffffffff
	p2 = 0xffffffffffffffff
	p3 = 0x7fffffffffffffff
)

// Load reads the limbs of e (any value < 2^256).
func Load(e *fp.Elt) Fe {
	return Fe{
		binary.LittleEndian.Uint64(e[0:8]),
		binary.LittleEndian.Uint64(e[8:16]),
		binary.LittleEndian.Uint64(e[16:24]),
		binary.LittleEndian.Uint64(e[24:32]),
	}
}

// Elt writes z as 32 bytes little-endian.
func (z *Fe) Elt() fp.Elt {
	var e fp.Elt
	binary.LittleEndian.PutUint64(e[0:8], z[0])
	binary.LittleEndian.PutUint64(e[8:16], z[1])
	binary.LittleEndian.PutUint64(e[16:24], z[2])
	binary.LittleEndian.PutUint64(e[24:32], z[3])
	return e
}

// mul512 returns a·b as eight limbs (schoolbook, one row per limb of a).
func mul512(a, b *Fe) [8]uint64 {
	a0, a1, a2, a3 := a[0], a[1], a[2], a[3]
	b0, b1, b2, b3 := b[0], b[1], b[2], b[3]

	h0, l0 := bits.Mul64(a0, b0)
	h1, l1 := bits.Mul64(a0, b1)
	h2, l2 := bits.Mul64(a0, b2)
	h3, l3 := bits.Mul64(a0, b3)
	z0 := l0
	z1, c := bits.Add64(l1, h0, 0)
	z2, c := bits.Add64(l2, h1, c)
	z3, c := bits.Add64(l3, h2, c)
	z4 := h3 + c // a0·b < 2^320: no carry out

	h0, l0 = bits.Mul64(a1, b0)
	h1, l1 = bits.Mul64(a1, b1)
	h2, l2 = bits.Mul64(a1, b2)
	h3, l3 = bits.Mul64(a1, b3)
	t1, c := bits.Add64(l1, h0, 0)
	t2, c := bits.Add64(l2, h1, c)
	t3, c := bits.Add64(l3, h2, c)
	t4 := h3 + c
	z1, c = bits.Add64(z1, l0, 0)
	z2, c = bits.Add64(z2, t1, c)
	z3, c = bits.Add64(z3, t2, c)
	z4, c = bits.Add64(z4, t3, c)
	z5 := t4 + c // (a0 + a1·2^64)·b < 2^384

	h0, l0 = bits.Mul64(a2, b0)
	h1, l1 = bits.Mul64(a2, b1)
	h2, l2 = bits.Mul64(a2, b2)
	h3, l3 = bits.Mul64(a2, b3)
	t1, c = bits.Add64(l1, h0, 0)
	t2, c = bits.Add64(l2, h1, c)
	t3, c = bits.Add64(l3, h2, c)
	t4 = h3 + c
	z2, c = bits.Add64(z2, l0, 0)
	z3, c = bits.Add64(z3, t1, c)
	z4, c = bits.Add64(z4, t2, c)
	z5, c = bits.Add64(z5, t3, c)
	z6 := t4 + c

	h0, l0 = bits.Mul64(a3, b0)
	h1, l1 = bits.Mul64(a3, b1)
	h2, l2 = bits.Mul64(a3, b2)
	h3, l3 = bits.Mul64(a3, b3)
	t1, c = bits.Add64(l1, h0, 0)
	t2, c = bits.Add64(l2, h1, c)
	t3, c = bits.Add64(l3, h2, c)
	t4 = h3 + c
	z3, c = bits.Add64(z3, l0, 0)
	z4, c = bits.Add64(z4, t1, c)
	z5, c = bits.Add64(z5, t2, c)
	z6, c = bits.Add64(z6, t3, c)
	z7 := t4 + c

	return [8]uint64{z0, z1, z2, z3, z4, z5, z6, z7}
}

// MulAdd adds a·b to w.
func (w *Wide) MulAdd(a, b *Fe) {
	z := mul512(a, b)
	var c uint64
	w[0], c = bits.Add64(w[0], z[0], 0)
	w[1], c = bits.Add64(w[1], z[1], c)
	w[2], c = bits.Add64(w[2], z[2], c)
	w[3], c = bits.Add64(w[3], z[3], c)
	w[4], c = bits.Add64(w[4], z[4], c)
	w[5], c = bits.Add64(w[5], z[5], c)
	w[6], c = bits.Add64(w[6], z[6], c)
	w[7], c = bits.Add64(w[7], z[7], c)
	w[8] += c
}

// Add adds a to w.
func (w *Wide) Add(a *Fe) {
	var c uint64
	w[0], c = bits.Add64(w[0], a[0], 0)
	w[1], c = bits.Add64(w[1], a[1], c)
	w[2], c = bits.Add64(w[2], a[2], c)
	w[3], c = bits.Add64(w[3], a[3], c)
	w[4], c = bits.Add64(w[4], 0, c)
	w[5], c = bits.Add64(w[5], 0, c)
	w[6], c = bits.Add64(w[6], 0, c)
	w[7], c = bits.Add64(w[7], 0, c)
	w[8] += c
}

// Reduce returns w mod p, canonical. It needs w < 2^575 (w[8] < 2^63),
// which MulAdd's bound guarantees.
func (w *Wide) Reduce() Fe {
	// w = L + 2^256·H with H = w[4..8]; 2^256 ≡ 38, so w ≡ L + 38·H < 2^327.
	h0, l0 := bits.Mul64(w[4], 38)
	h1, l1 := bits.Mul64(w[5], 38)
	h2, l2 := bits.Mul64(w[6], 38)
	h3, l3 := bits.Mul64(w[7], 38)
	h4, l4 := bits.Mul64(w[8], 38)
	t0, c := bits.Add64(w[0], l0, 0)
	t1, c := bits.Add64(w[1], l1, c)
	t2, c := bits.Add64(w[2], l2, c)
	t3, c := bits.Add64(w[3], l3, c)
	t4, c := bits.Add64(l4, h3, c)
	t5 := h4 + c
	t1, c = bits.Add64(t1, h0, 0)
	t2, c = bits.Add64(t2, h1, c)
	t3, c = bits.Add64(t3, h2, c)
	t4, c = bits.Add64(t4, 0, c)
	t5 += c // < 2^7

	// t = T + 2^256·(t4 + 2^64·t5) ≡ T + 38·t4 + 2^64·38·t5.
	hh, ll := bits.Mul64(t4, 38)
	hh += 38 * t5
	t0, c = bits.Add64(t0, ll, 0)
	t1, c = bits.Add64(t1, hh, c)
	t2, c = bits.Add64(t2, 0, c)
	t3, c = bits.Add64(t3, 0, c)
	// A carry out means the value is 2^256 + (something < 2^78): fold it as
	// 38; that cannot carry again.
	t0, c = bits.Add64(t0, 38*c, 0)
	t1, c = bits.Add64(t1, 0, c)
	t2, c = bits.Add64(t2, 0, c)
	t3 += c

	return canonical(t0, t1, t2, t3)
}

// canonical reduces a value < 2^256 to [0, p).
func canonical(t0, t1, t2, t3 uint64) Fe {
	// Fold bit 255 (2^255 ≡ 19): now t < 2^255 + 19 < 2p.
	top := t3 >> 63
	t3 &^= 1 << 63
	var c uint64
	t0, c = bits.Add64(t0, 19*top, 0)
	t1, c = bits.Add64(t1, 0, c)
	t2, c = bits.Add64(t2, 0, c)
	t3 += c
	// Subtract p unless that borrows.
	s0, b := bits.Sub64(t0, p0, 0)
	s1, b := bits.Sub64(t1, p1, b)
	s2, b := bits.Sub64(t2, p2, b)
	s3, b := bits.Sub64(t3, p3, b)
	keep := -b // all ones when t < p
	return Fe{
		s0 ^ (keep & (s0 ^ t0)),
		s1 ^ (keep & (s1 ^ t1)),
		s2 ^ (keep & (s2 ^ t2)),
		s3 ^ (keep & (s3 ^ t3)),
	}
}

// Sub returns a−b mod p, canonical, for canonical a and b.
func Sub(a, b *Fe) Fe {
	t0, br := bits.Sub64(a[0], b[0], 0)
	t1, br := bits.Sub64(a[1], b[1], br)
	t2, br := bits.Sub64(a[2], b[2], br)
	t3, br := bits.Sub64(a[3], b[3], br)
	m := -br // add p back when a < b
	var c uint64
	t0, c = bits.Add64(t0, p0&m, 0)
	t1, c = bits.Add64(t1, p1&m, c)
	t2, c = bits.Add64(t2, p2&m, c)
	t3, _ = bits.Add64(t3, p3&m, c)
	return Fe{t0, t1, t2, t3}
}

// DotAdd adds Σ a[i]·b[i] to w.
func DotAdd(w *Wide, a, b []fp.Elt) {
	if len(a) != len(b) {
		panic("keygen: dotAdd of unequal lengths")
	}
	if len(a) == 0 {
		return
	}
	if useADX {
		dotAddADX(w, &a[0], &b[0], len(a))
		return
	}
	dotAddGeneric(w, a, b)
}

func dotAddGeneric(w *Wide, a, b []fp.Elt) {
	for i := range a {
		x, y := Load(&a[i]), Load(&b[i])
		w.MulAdd(&x, &y)
	}
}

// WinogradAdd adds Σ_j (d[2j]+v[2j])·(d[2j+1]+v[2j+1]) to w, for even
// len(d) = len(v) and elements < 2^255 (canonical ones are), so that each
// sum fits in 256 bits. This is the inner product of Winograd (1968): with
// v holding a vector u pair-swapped (v[2j] = u[2j+1], v[2j+1] = u[2j]), it
// equals Σ d[i]·u[i] + Σ_j d[2j]·d[2j+1] + Σ_j u[2j]·u[2j+1]: half the
// multiplications of the plain inner product, once the two correction
// terms are known (the first depends only on d, the second only on u).
func WinogradAdd(w *Wide, d, v []fp.Elt) {
	if len(d) != len(v) || len(d)%2 != 0 {
		panic("keygen: winogradAdd needs equal, even lengths")
	}
	if len(d) == 0 {
		return
	}
	if useADX {
		winogradAddADX(w, &d[0], &v[0], len(d)/2)
		return
	}
	winogradAddGeneric(w, d, v)
}

func winogradAddGeneric(w *Wide, d, v []fp.Elt) {
	for j := 0; j+1 < len(d); j += 2 {
		s := addNoCarry(&d[j], &v[j])
		t := addNoCarry(&d[j+1], &v[j+1])
		w.MulAdd(&s, &t)
	}
}

// addNoCarry returns a+b as limbs; the caller guarantees it is < 2^256.
func addNoCarry(a, b *fp.Elt) Fe {
	x, y := Load(a), Load(b)
	s0, c := bits.Add64(x[0], y[0], 0)
	s1, c := bits.Add64(x[1], y[1], c)
	s2, c := bits.Add64(x[2], y[2], c)
	s3, _ := bits.Add64(x[3], y[3], c)
	return Fe{s0, s1, s2, s3}
}

// VecAdd sets dst[i] = x[i] + y[i] mod p, for canonical x and y; the
// result is canonical. dst may alias x or y.
func VecAdd(dst, x, y []fp.Elt) {
	y = y[:len(x)]
	dst = dst[:len(x)]
	for i := range x {
		a, b := &x[i], &y[i]
		s0, c := bits.Add64(binary.LittleEndian.Uint64(a[0:8]), binary.LittleEndian.Uint64(b[0:8]), 0)
		s1, c := bits.Add64(binary.LittleEndian.Uint64(a[8:16]), binary.LittleEndian.Uint64(b[8:16]), c)
		s2, c := bits.Add64(binary.LittleEndian.Uint64(a[16:24]), binary.LittleEndian.Uint64(b[16:24]), c)
		s3, _ := bits.Add64(binary.LittleEndian.Uint64(a[24:32]), binary.LittleEndian.Uint64(b[24:32]), c)
		// s < 2p: subtract p unless that borrows.
		t0, br := bits.Sub64(s0, p0, 0)
		t1, br := bits.Sub64(s1, p1, br)
		t2, br := bits.Sub64(s2, p2, br)
		t3, br := bits.Sub64(s3, p3, br)
		keep := -br
		d := &dst[i]
		binary.LittleEndian.PutUint64(d[0:8], t0^(keep&(t0^s0)))
		binary.LittleEndian.PutUint64(d[8:16], t1^(keep&(t1^s1)))
		binary.LittleEndian.PutUint64(d[16:24], t2^(keep&(t2^s2)))
		binary.LittleEndian.PutUint64(d[24:32], t3^(keep&(t3^s3)))
	}
}

// VecSub sets dst[i] = x[i] − y[i] mod p, for canonical x and y; the
// result is canonical. dst may alias x or y.
func VecSub(dst, x, y []fp.Elt) {
	y = y[:len(x)]
	dst = dst[:len(x)]
	for i := range x {
		a, b := &x[i], &y[i]
		t0, br := bits.Sub64(binary.LittleEndian.Uint64(a[0:8]), binary.LittleEndian.Uint64(b[0:8]), 0)
		t1, br := bits.Sub64(binary.LittleEndian.Uint64(a[8:16]), binary.LittleEndian.Uint64(b[8:16]), br)
		t2, br := bits.Sub64(binary.LittleEndian.Uint64(a[16:24]), binary.LittleEndian.Uint64(b[16:24]), br)
		t3, br := bits.Sub64(binary.LittleEndian.Uint64(a[24:32]), binary.LittleEndian.Uint64(b[24:32]), br)
		m := -br // add p back when x < y
		var c uint64
		t0, c = bits.Add64(t0, p0&m, 0)
		t1, c = bits.Add64(t1, p1&m, c)
		t2, c = bits.Add64(t2, p2&m, c)
		t3, _ = bits.Add64(t3, p3&m, c)
		d := &dst[i]
		binary.LittleEndian.PutUint64(d[0:8], t0)
		binary.LittleEndian.PutUint64(d[8:16], t1)
		binary.LittleEndian.PutUint64(d[16:24], t2)
		binary.LittleEndian.PutUint64(d[24:32], t3)
	}
}
