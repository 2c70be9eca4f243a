// Package collude is the coalition attack on Blom's key predistribution
// (DESIGN.md §2, §2.1, issue 15), written as test support so that tests
// can show the bound of k is real: any k enrolled parties, of any roles,
// rebuild the key center's matrix D from the rows they hold and forge the
// party key of every identity; k − 1 learn nothing about any other pair.
//
// The attacker uses only what enrolled parties hold: their rows, their
// identities and the public parameters. Nothing here reads a master.
//
// It is for tests only, and never to be imported from production code
// (tstest/deptest fails the build of the tests if a non-test package
// depends on it).
//
// The algebra works on shares — an identity point and its row, as
// []fp.Elt — so that it also fits one epoch's rows of a suite whose
// identity points are computed otherwise; Collude and ShareOf adapt
// *keygen.PartyKey (points by keygen.IdentityPoint, or under an epoch
// suite by keygen.IdentityPointIn in the key's epoch).
//
// Against OS2 (os2.go) the same program rebuilds one epoch's Blom matrix
// and forges every Blom row of that epoch, but cannot make the
// identity-based SOK half of a key (ErrSOK): ForgeWith takes the
// attacker's best choice of it (SOK), which the suite refuses.
package collude

import (
	"crypto/rand"
	"errors"
	"fmt"
	"runtime"
	"sync"

	fp "github.com/cloudflare/circl/math/fp25519"
)

// Errors. Callers test with errors.Is.
var (
	// ErrUnderdetermined is returned when the shares name fewer than k
	// distinct identity points: the matrix is not determined by them.
	ErrUnderdetermined = errors.New("collude: fewer than k distinct rows: the matrix is underdetermined")
	// ErrInconsistent is returned when the shares are not rows of one
	// symmetric matrix at their points: rows of another key center or
	// system, altered rows, or points computed otherwise.
	ErrInconsistent = errors.New("collude: the rows are not those of one symmetric matrix")
)

// Share is what one colluder brings: its identity point x and its row
// r = D·v(x), v(x) = (1, x, …, x^(k−1)).
type Share struct {
	Point fp.Elt
	Row   []fp.Elt
}

// Matrix is a rebuilt Blom matrix D, k×k and symmetric.
type Matrix struct {
	k int
	d []fp.Elt // row-major, canonical
}

// K is the matrix's size.
func (m *Matrix) K() int { return m.k }

// At is D[a][b].
func (m *Matrix) At(a, b int) fp.Elt { return m.d[a*m.k+b] }

// RowAt is the row of the identity with point x: D·v(x), canonical.
func (m *Matrix) RowAt(x *fp.Elt) []fp.Elt {
	k := m.k
	v := powers(x, k)
	r := make([]fp.Elt, k)
	var t fp.Elt
	for a := range k {
		da := m.d[a*k : (a+1)*k]
		for b := range k {
			fp.Mul(&t, &da[b], &v[b])
			fp.Add(&r[a], &r[a], &t)
		}
		fp.Modp(&r[a])
	}
	return r
}

// Destroy zeroes the matrix.
func (m *Matrix) Destroy() { clear(m.d) }

// Rebuild recovers D from shares of a matrix of size k: D[a][b] =
// Σ_i r_i[a]·L_i[b], with L_i the Lagrange basis polynomials of k distinct
// points, which is D = R·V⁻¹ for V the Vandermonde matrix of the points.
// Shares beyond the first k distinct points must agree with the result.
// Fewer than k distinct points give ErrUnderdetermined; rows that are not
// those of one symmetric matrix, ErrInconsistent.
func Rebuild(k int, shares []Share) (*Matrix, error) {
	if k < 1 {
		return nil, fmt.Errorf("collude: k = %d", k)
	}
	var basis, extra []Share
	seen := make(map[fp.Elt]int, k)
	for i, s := range shares {
		if len(s.Row) != k {
			return nil, fmt.Errorf("collude: share %d has a row of %d elements, want k = %d", i, len(s.Row), k)
		}
		x := canonical(s.Point)
		if j, ok := seen[x]; ok {
			if !equalRows(shares[j].Row, s.Row) {
				return nil, fmt.Errorf("%w: shares %d and %d have one point and two rows", ErrInconsistent, j, i)
			}
			continue
		}
		seen[x] = i
		s.Point = x
		if len(basis) < k {
			basis = append(basis, s)
		} else {
			extra = append(extra, s)
		}
	}
	if len(basis) < k {
		return nil, fmt.Errorf("%w: %d distinct of k = %d", ErrUnderdetermined, len(basis), k)
	}
	xs := make([]fp.Elt, k)
	for i := range basis {
		xs[i] = basis[i].Point
	}
	l, err := lagrange(xs)
	if err != nil {
		return nil, err
	}
	defer clear(l)
	m := &Matrix{k: k, d: upperProduct(basis, l, k)}
	if !symmetric(basis, l, k) {
		m.Destroy()
		return nil, fmt.Errorf("%w: R·V⁻¹ is not symmetric", ErrInconsistent)
	}
	for i := range extra {
		if !equalRows(m.RowAt(&extra[i].Point), extra[i].Row) {
			m.Destroy()
			return nil, fmt.Errorf("%w: a share beyond the first k disagrees with the matrix they give", ErrInconsistent)
		}
	}
	return m, nil
}

// upperProduct fills D[a][b] = Σ_i r_i[a]·L_i[b] for a ≤ b, mirrors it
// below the diagonal and reduces it: half of the k³ products, spread over
// the CPUs, rows dealt round-robin so that every worker gets long and
// short ones.
func upperProduct(basis []Share, l []fp.Elt, k int) []fp.Elt {
	d := make([]fp.Elt, k*k)
	workers := min(runtime.GOMAXPROCS(0), k)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var t fp.Elt
			for a := w; a < k; a += workers {
				acc := d[a*k : (a+1)*k]
				for i := range basis {
					c := &basis[i].Row[a]
					li := l[i*k : (i+1)*k]
					for b := a; b < k; b++ {
						fp.Mul(&t, c, &li[b])
						fp.Add(&acc[b], &acc[b], &t)
					}
				}
				for b := a; b < k; b++ {
					fp.Modp(&acc[b])
				}
			}
		})
	}
	wg.Wait()
	for a := range k {
		for b := a + 1; b < k; b++ {
			d[b*k+a] = d[a*k+b]
		}
	}
	return d
}

// symmetric checks R·L = (R·L)ᵀ by Freivalds' test at a random vector u:
// (R·L)·u = (R·L)ᵀ·u fails for a non-symmetric product but with
// probability 1/p, and costs k² instead of the k³ of the full product.
func symmetric(basis []Share, l []fp.Elt, k int) bool {
	u := make([]fp.Elt, k)
	var buf [fp.Size]byte
	for i := range u {
		if _, err := rand.Read(buf[:]); err != nil {
			panic(err) // crypto/rand does not fail
		}
		u[i] = fp.Elt(buf)
		fp.Modp(&u[i])
	}
	// left[a] = Σ_i r_i[a]·(L_i·u); right[b] = Σ_i L_i[b]·(r_i·u).
	left, right := make([]fp.Elt, k), make([]fp.Elt, k)
	var w, z, t fp.Elt
	for i := range basis {
		li := l[i*k : (i+1)*k]
		w, z = dot(li, u), dot(basis[i].Row, u)
		for a := range k {
			fp.Mul(&t, &basis[i].Row[a], &w)
			fp.Add(&left[a], &left[a], &t)
			fp.Mul(&t, &li[a], &z)
			fp.Add(&right[a], &right[a], &t)
		}
	}
	return equalRows(left, right)
}

// lagrange returns the coefficients of the Lagrange basis polynomials of
// the distinct points xs, row-major: L_i[b] is the coefficient of x^b in
// L_i(x) = Π_{j≠i} (x − x_j)/(x_i − x_j). O(k²): every L_i is the
// product M(x) = Π_j (x − x_j) divided by (x − x_i), scaled.
func lagrange(xs []fp.Elt) ([]fp.Elt, error) {
	n := len(xs)
	// m holds M's coefficients, m[n] = 1.
	m := make([]fp.Elt, n+1)
	fp.SetOne(&m[0])
	var t fp.Elt
	for j := range n {
		// m ← m·(x − x_j), from the top coefficient down.
		for a := j + 1; a >= 1; a-- {
			fp.Mul(&t, &m[a], &xs[j])
			fp.Sub(&m[a], &m[a-1], &t)
		}
		fp.Mul(&t, &m[0], &xs[j])
		fp.Neg(&m[0], &t)
	}
	l := make([]fp.Elt, n*n)
	var den, inv fp.Elt
	for i := range n {
		q := l[i*n : (i+1)*n]
		// q = M/(x − x_i) by synthetic division; M(x_i) = 0 leaves no remainder.
		q[n-1] = m[n]
		for a := n - 1; a >= 1; a-- {
			fp.Mul(&t, &q[a], &xs[i])
			fp.Add(&q[a-1], &m[a], &t)
		}
		den = horner(q, &xs[i]) // Π_{j≠i} (x_i − x_j)
		if fp.IsZero(&den) {
			return nil, fmt.Errorf("%w: two points are equal", ErrUnderdetermined)
		}
		fp.Inv(&inv, &den)
		for a := range q {
			fp.Mul(&q[a], &q[a], &inv)
			fp.Modp(&q[a])
		}
	}
	return l, nil
}

// Interpolate returns the coefficients c_0 … c_(n−1) of the one polynomial
// of degree < n through the n points (xs[i], ys[i]); the xs must be
// distinct (else ErrUnderdetermined).
func Interpolate(xs, ys []fp.Elt) ([]fp.Elt, error) {
	if len(xs) != len(ys) || len(xs) == 0 {
		return nil, fmt.Errorf("collude: %d points and %d values", len(xs), len(ys))
	}
	n := len(xs)
	cx := make([]fp.Elt, n)
	seen := make(map[fp.Elt]bool, n)
	for i := range xs {
		cx[i] = canonical(xs[i])
		if seen[cx[i]] {
			return nil, fmt.Errorf("%w: two points are equal", ErrUnderdetermined)
		}
		seen[cx[i]] = true
	}
	l, err := lagrange(cx)
	if err != nil {
		return nil, err
	}
	c := make([]fp.Elt, n)
	var t fp.Elt
	for i := range n {
		for b := range n {
			fp.Mul(&t, &ys[i], &l[i*n+b])
			fp.Add(&c[b], &c[b], &t)
		}
	}
	for b := range c {
		fp.Modp(&c[b])
	}
	return c, nil
}

// Complete is what a coalition one short of k can do at best: it returns
// the row at x of a symmetric matrix that agrees with all k − 1 shares —
// the one whose last row element is t. Every t gives such a matrix
// (Rebuild accepts the shares with this row added), and the true one is
// among them, so the k − 1 learn nothing of the row at x: each value of
// every pairwise secret of x with a non-member is equally possible.
//
// The row r at x must satisfy v(x_i)·r = s(x_i, x) = r_i·v(x) for each
// share, k − 1 equations in k unknowns: with r_(k−1) = t the others are
// the polynomial of degree < k − 1 through (x_i, r_i·v(x) − t·x_i^(k−1)).
func Complete(k int, shares []Share, x, t *fp.Elt) ([]fp.Elt, error) {
	if k < 2 || len(shares) != k-1 {
		return nil, fmt.Errorf("collude: Complete takes k − 1 = %d shares, not %d", k-1, len(shares))
	}
	vx := powers(x, k)
	xs := make([]fp.Elt, k-1)
	ys := make([]fp.Elt, k-1)
	var top fp.Elt
	for i, s := range shares {
		if len(s.Row) != k {
			return nil, fmt.Errorf("collude: share %d has a row of %d elements, want k = %d", i, len(s.Row), k)
		}
		xs[i] = s.Point
		vi := powers(&s.Point, k)
		fp.Mul(&top, t, &vi[k-1])
		ys[i] = dot(s.Row, vx)
		fp.Sub(&ys[i], &ys[i], &top)
	}
	c, err := Interpolate(xs, ys)
	if err != nil {
		return nil, err
	}
	r := append(c, canonical(*t))
	return r, nil
}

// powers is v(x) = (1, x, …, x^(k−1)).
func powers(x *fp.Elt, k int) []fp.Elt {
	v := make([]fp.Elt, k)
	fp.SetOne(&v[0])
	for i := 1; i < k; i++ {
		fp.Mul(&v[i], &v[i-1], x)
	}
	return v
}

// dot is Σ a_i·b_i, canonical.
func dot(a, b []fp.Elt) fp.Elt {
	var s, t fp.Elt
	for i := range a {
		fp.Mul(&t, &a[i], &b[i])
		fp.Add(&s, &s, &t)
	}
	fp.Modp(&s)
	return s
}

// horner is Σ c_a·x^a, canonical.
func horner(c []fp.Elt, x *fp.Elt) fp.Elt {
	var s fp.Elt
	for a := len(c) - 1; a >= 0; a-- {
		fp.Mul(&s, &s, x)
		fp.Add(&s, &s, &c[a])
	}
	fp.Modp(&s)
	return s
}

func canonical(e fp.Elt) fp.Elt {
	fp.Modp(&e)
	return e
}

func equalRows(a, b []fp.Elt) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if canonical(a[i]) != canonical(b[i]) {
			return false
		}
	}
	return true
}
