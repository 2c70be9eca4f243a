package field

import fp "github.com/cloudflare/circl/math/fp25519"

// HornerBlock is how many coefficients share one reduction in Horner.
const HornerBlock = 32

// Horner evaluates Σ row[a]·x^a mod p, canonical. It is Horner's rule in
// y = x^B (B = HornerBlock): from the top, s ← s·y + Σ_{t<B} row[base+t]·x^t,
// where the B products of a step are summed unreduced (fe.go) and reduced
// once. Those products do not depend on s, so the CPU overlaps them with
// the one that does, where plain Horner waits for each multiplication
// before it starts the next.
//
// Constant-time in row and x: only len(row) shapes the loops.
func Horner(row []fp.Elt, x *fp.Elt) fp.Elt {
	const B = HornerBlock
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
	var acc Wide
	DotAdd(&acc, row[top+1:], pw[1:k-top])
	r := Load(&row[top])
	acc.Add(&r)
	s := acc.Reduce()
	var sElt [1]fp.Elt
	for base := top - B; base >= 0; base -= B {
		acc = Wide{}
		DotAdd(&acc, row[base+1:base+B], pw[1:B])
		r := Load(&row[base])
		acc.Add(&r)
		sElt[0] = s.Elt()
		DotAdd(&acc, sElt[:], pw[B:])
		s = acc.Reduce()
	}
	clear(pw[:])
	clear(sElt[:])
	out := s.Elt()
	s = Fe{}
	return out
}
