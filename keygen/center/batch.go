package center

import (
	"fmt"
	"sync"

	fp "github.com/cloudflare/circl/math/fp25519"

	"orderseal/keygen"
	"orderseal/keygen/internal/field"
)

// Batch issuance: the rows of many identities at once, R = D·V with V's
// columns the vectors v(x) = (1, x, …, x^(k−1)) of a group of identities.
//
// Two classical tricks cut the multiplications below the k² per identity
// of Master.row, and the results are the same field elements, bit for bit
// (batch_test.go checks them against row and the known-answer vectors):
//
//   - Strassen (1969), applied L times to D·V: seven block products instead
//     of eight per level. The block sums on D's side depend only on the
//     master, so they are formed once, in the plan; those on V's side are
//     formed per group.
//   - Winograd's inner product (1968) at the leaves: Σ a_i·b_i over pairs,
//     (a_2j + b_2j+1)·(a_2j+1 + b_2j) minus a term of a alone (ξ, in the
//     plan) and one of b alone (η, per column): half the multiplications.
//
// Each leaf product is summed unreduced (keygen/internal/field) and
// reduced once per output element. All of it is constant-time in D: loops and indices
// depend on k, L and the group size only.

// planMaxBytes bounds the memory of a plan (its leaf matrices); a master
// whose plan would not fit issues identity by identity (Master.row).
// Tests lower it, and leafMin, to reach every shape with small k.
var planMaxBytes = 256 << 20

// leafMin is the smallest leaf the Strassen recursion splits down to: below
// it, the block sums cost more than the multiplications they save.
var leafMin = 128

// leafMax bounds a leaf's side: a leaf is at most planMaxBytes on its own.
const leafMax = 1 << 12

// maxLevels bounds the Strassen levels (the plan grows 7/4 per level).
const maxLevels = 3

// batchGroup is how many identities share one pass over the plan: enough
// columns per leaf that each leaf matrix, read from memory, serves several.
const batchGroup = 64

// plan is D prepared for batch issuance.
type plan struct {
	k     int // the master's k
	size  int // k padded with zeros to a multiple of 2^(level+1)
	level int // Strassen levels
	root  *node

	arenas sync.Pool // of *arena, one per goroutine issuing at a time
}

// node is one matrix of the Strassen recursion: a leaf holds it, an inner
// node the seven matrices of its block products.
type node struct {
	n     int
	child [7]*node
	a     []fp.Elt // leaf: n×n, row-major, canonical
	negXi []fp.Elt // leaf: −ξ_b = −Σ_j a[b][2j]·a[b][2j+1] mod p, per row
}

// planShape chooses the padded size and the number of Strassen levels for
// k: as many levels as keep leaves of at least leafMin rows within
// planMaxBytes. ok is false when even the unsplit matrix does not fit.
func planShape(k int) (size, level int, ok bool) {
	for l := maxLevels; l >= 0; l-- {
		step := 2 << l // so that leaves have an even size
		n := (k + step - 1) / step * step
		leaf := n >> l
		if l > 0 && leaf < leafMin {
			continue
		}
		if leaf > leafMax {
			continue
		}
		bytes := leaf * leaf * fp.Size
		for i := 0; i < l; i++ {
			bytes *= 7
		}
		if bytes <= planMaxBytes {
			return n, l, true
		}
	}
	return 0, 0, false
}

// buildPlan expands the triangle into the padded full matrix and prepares
// the Strassen tree. m.tri must be expanded.
func (m *Master) buildPlan() *plan {
	k := m.params.K
	size, level, ok := planShape(k)
	if !ok {
		return nil
	}
	full := make([]fp.Elt, size*size)
	idx := 0
	for a := 0; a < k; a++ {
		for b := a; b < k; b++ {
			full[a*size+b] = m.tri[idx]
			full[b*size+a] = m.tri[idx]
			idx++
		}
	}
	p := &plan{k: k, size: size, level: level}
	p.root = newNode(full, size, level)
	return p
}

// newNode prepares the n×n matrix a (which it may keep or clear).
func newNode(a []fp.Elt, n, level int) *node {
	nd := &node{n: n}
	if level == 0 {
		nd.a = a
		nd.negXi = make([]fp.Elt, n)
		zero := make([]fp.Elt, n)
		for b := 0; b < n; b++ {
			var w field.Wide
			field.WinogradAdd(&w, a[b*n:(b+1)*n], zero)
			xi := w.Reduce()
			neg := field.Sub(&field.Fe{}, &xi)
			nd.negXi[b] = neg.Elt()
		}
		return nd
	}
	h := n / 2
	// q(i, j)(r) is row r of quadrant (i, j).
	q := func(i, j int) func(r int) []fp.Elt {
		return func(r int) []fp.Elt {
			off := (i*h+r)*n + j*h
			return a[off : off+h]
		}
	}
	a11, a12, a21, a22 := q(0, 0), q(0, 1), q(1, 0), q(1, 1)
	// build returns the h×h matrix x + sign·y of two quadrants (y unused
	// when sign is 0).
	build := func(x, y func(r int) []fp.Elt, sign int) []fp.Elt {
		out := make([]fp.Elt, h*h)
		for r := 0; r < h; r++ {
			dst := out[r*h : (r+1)*h]
			switch sign {
			case 0:
				copy(dst, x(r))
			case 1:
				field.VecAdd(dst, x(r), y(r))
			default:
				field.VecSub(dst, x(r), y(r))
			}
		}
		return out
	}
	// The seven D-side factors of Strassen's products M1 … M7.
	nd.child[0] = newNode(build(a11, a22, 1), h, level-1)  // A11 + A22
	nd.child[1] = newNode(build(a21, a22, 1), h, level-1)  // A21 + A22
	nd.child[2] = newNode(build(a11, nil, 0), h, level-1)  // A11
	nd.child[3] = newNode(build(a22, nil, 0), h, level-1)  // A22
	nd.child[4] = newNode(build(a11, a12, 1), h, level-1)  // A11 + A12
	nd.child[5] = newNode(build(a21, a11, -1), h, level-1) // A21 − A11
	nd.child[6] = newNode(build(a12, a22, -1), h, level-1) // A12 − A22
	clear(a)
	return nd
}

func (nd *node) destroy() {
	if nd == nil {
		return
	}
	clear(nd.a)
	clear(nd.negXi)
	for _, c := range nd.child {
		c.destroy()
	}
}

// arena is scratch memory for one group's recursion, used as a stack:
// take hands out zeroed element slices, release returns to a mark. It is
// cleared before reuse (it holds products of D), and kept in the plan's
// pool so that groups do not each allocate and fault in tens of MiB.
type arena struct {
	buf []fp.Elt
	off int
}

func (a *arena) take(n int) []fp.Elt {
	if a.off+n > len(a.buf) {
		// rows sizes the arena beforehand (arenaSize); should that ever
		// fall short, start a new slab: what was handed out keeps the old
		// one alive.
		a.buf = make([]fp.Elt, 2*(a.off+n))
		a.off = 0
	}
	s := a.buf[a.off : a.off+n : a.off+n]
	a.off += n
	return s
}

// cols returns m columns of n elements each.
func (a *arena) cols(m, n int) [][]fp.Elt {
	out := make([][]fp.Elt, m)
	flat := a.take(m * n)
	for c := range out {
		out[c] = flat[c*n : (c+1)*n : (c+1)*n]
	}
	return out
}

// release returns to mark, clearing what was taken since.
func (a *arena) release(mark int) {
	if mark > a.off { // a new slab was started since mark: clear all of it
		mark = 0
	}
	clear(a.buf[mark:a.off])
	a.off = mark
}

// mul returns A·B for B given by columns, each of length n and stored
// pair-swapped (element 2j+1 first, then 2j), canonical. The result is by
// columns too, in natural order, canonical, taken from ar (it outlives the
// call; everything else the call takes is released). len(cols) must be a
// multiple of 2^level.
func (nd *node) mul(ar *arena, cols [][]fp.Elt) [][]fp.Elt {
	if nd.a != nil {
		return nd.leafMul(ar, cols)
	}
	n, h := nd.n, nd.n/2
	m2 := len(cols) / 2
	out := ar.cols(len(cols), n)
	mark := ar.off
	b11 := make([][]fp.Elt, m2)
	b12 := make([][]fp.Elt, m2)
	b21 := make([][]fp.Elt, m2)
	b22 := make([][]fp.Elt, m2)
	for c := 0; c < m2; c++ {
		b11[c], b21[c] = cols[c][:h], cols[c][h:n]
		b12[c], b22[c] = cols[m2+c][:h], cols[m2+c][h:n]
	}
	m1 := nd.child[0].mul(ar, colOp(ar, b11, b22, 1))
	m2s := nd.child[1].mul(ar, b11)
	m3 := nd.child[2].mul(ar, colOp(ar, b12, b22, -1))
	m4 := nd.child[3].mul(ar, colOp(ar, b21, b11, -1))
	m5 := nd.child[4].mul(ar, b22)
	m6 := nd.child[5].mul(ar, colOp(ar, b11, b12, 1))
	m7 := nd.child[6].mul(ar, colOp(ar, b21, b22, 1))
	for c := 0; c < m2; c++ {
		left, right := out[c], out[m2+c] // C11 over C21, C12 over C22
		c11, c21, c12, c22 := left[:h], left[h:], right[:h], right[h:]
		field.VecAdd(c11, m1[c], m4[c]) // C11 = M1 + M4 − M5 + M7
		field.VecSub(c11, c11, m5[c])
		field.VecAdd(c11, c11, m7[c])
		field.VecAdd(c21, m2s[c], m4[c]) // C21 = M2 + M4
		field.VecAdd(c12, m3[c], m5[c])  // C12 = M3 + M5
		field.VecSub(c22, m1[c], m2s[c]) // C22 = M1 − M2 + M3 + M6
		field.VecAdd(c22, c22, m3[c])
		field.VecAdd(c22, c22, m6[c])
	}
	ar.release(mark)
	return out
}

// peak is the most of an arena that mul takes at once for m columns: its
// result, and for an inner node the seven block sums and products held
// while the last child runs.
func (nd *node) peak(m int) int {
	if nd.a != nil {
		return m * nd.n
	}
	quarter := (m / 2) * (nd.n / 2)
	return m*nd.n + 11*quarter + nd.child[6].peak(m/2)
}

// colOp returns the columns x+y (sign 1) or x−y (sign −1), mod p.
func colOp(ar *arena, x, y [][]fp.Elt, sign int) [][]fp.Elt {
	out := ar.cols(len(x), len(x[0]))
	for c := range x {
		if sign > 0 {
			field.VecAdd(out[c], x[c], y[c])
		} else {
			field.VecSub(out[c], x[c], y[c])
		}
	}
	return out
}

// leafMul is the leaf product by Winograd's inner product: for row b and
// column c, Σ_j (a[b][2j] + col[2j])·(a[b][2j+1] + col[2j+1]) − ξ_b − η_c,
// where col is pair-swapped so that col[2j] = u[2j+1]: the sum counts
// a[b][2j]·u[2j] + a[b][2j+1]·u[2j+1] plus the two correction terms.
func (nd *node) leafMul(ar *arena, cols [][]fp.Elt) [][]fp.Elt {
	n := nd.n
	out := ar.cols(len(cols), n)
	zero := zeros[:n]
	negEta := make([]field.Fe, len(cols))
	for c, col := range cols {
		var w field.Wide
		field.WinogradAdd(&w, col, zero) // η_c = Σ_j u[2j]·u[2j+1]
		eta := w.Reduce()
		negEta[c] = field.Sub(&field.Fe{}, &eta)
	}
	for b := 0; b < n; b++ {
		row := nd.a[b*n : (b+1)*n]
		negXi := field.Load(&nd.negXi[b])
		for c, col := range cols {
			var w field.Wide
			w.Add(&negXi)
			w.Add(&negEta[c])
			field.WinogradAdd(&w, row, col)
			r := w.Reduce()
			out[c][b] = r.Elt()
		}
	}
	return out
}

// zeros is read-only: the second operand that makes winogradAdd compute
// Σ_j u[2j]·u[2j+1] alone. Leaves are never longer than leafMax.
var zeros = make([]fp.Elt, leafMax)

// rows computes the party-key rows of the identity points xs, each in
// its own memory.
func (p *plan) rows(xs []fp.Elt) [][]fp.Elt {
	m := (len(xs) + 1<<p.level - 1) >> p.level << p.level // zero columns pad the group
	ar, _ := p.arenas.Get().(*arena)
	if ar == nil {
		ar = new(arena)
	}
	if need := m*p.size + p.root.peak(m); len(ar.buf) < need {
		ar.buf = make([]fp.Elt, need)
	}
	cols := ar.cols(m, p.size)
	for c := range xs {
		powersSwapped(cols[c], p.k, &xs[c])
	}
	res := p.root.mul(ar, cols)
	out := make([][]fp.Elt, len(xs))
	for c := range out {
		out[c] = append([]fp.Elt(nil), res[c][:p.k]...)
	}
	ar.release(0)
	p.arenas.Put(ar)
	return out
}

// powersSwapped writes x^i (canonical) for i < k into col[i^1]: the vector
// v(x), zero-padded to len(col) (even), with each pair swapped.
func powersSwapped(col []fp.Elt, k int, x *fp.Elt) {
	var p fp.Elt
	fp.SetOne(&p)
	for i := 0; i < k; i++ {
		q := p
		fp.Modp(&q)
		col[i^1] = q
		fp.Mul(&p, &p, x)
	}
}

// IssueMany issues the party keys of ids, the same as Issue for each but
// sharing the work of a group of identities (batch.go). An invalid
// identity fails the whole call, naming it.
func (m *Master) IssueMany(ids []string) ([]*keygen.PartyKey, error) {
	xs := make([]fp.Elt, len(ids))
	for i, id := range ids {
		x, err := m.point(id)
		if err != nil {
			return nil, fmt.Errorf("identity %d: %w", i, err)
		}
		xs[i] = x
	}
	rows := m.rowsMany(xs)
	keys := make([]*keygen.PartyKey, len(ids))
	for i := range ids {
		var err error
		if keys[i], err = m.newKey(ids[i], rows[i]); err != nil {
			return nil, fmt.Errorf("identity %d: %w", i, err)
		}
	}
	return keys, nil
}

// rowsMany computes D·v(x) for every x: by residues on CPUs with AVX2
// (rns.go), else by the Strassen plan, else one identity at a time.
func (m *Master) rowsMany(xs []fp.Elt) [][]fp.Elt {
	m.expand()
	out := make([][]fp.Elt, 0, len(xs))
	if rp := m.residuePlan(); rp != nil {
		for len(xs) > 0 {
			n := min(len(xs), rnsGroup)
			out = append(out, rp.rowsGroup(xs[:n])...)
			xs = xs[n:]
		}
		return out
	}
	p := m.batchPlan()
	if p == nil {
		for i := range xs {
			out = append(out, m.row(&xs[i]))
		}
		return out
	}
	for len(xs) > 0 {
		n := min(len(xs), batchGroup)
		out = append(out, p.rows(xs[:n])...)
		xs = xs[n:]
	}
	return out
}

// prepareBatch builds, once, whatever rowsMany will use.
func (m *Master) prepareBatch() {
	m.expand()
	if m.residuePlan() == nil {
		m.batchPlan()
	}
}

// batchPlan builds the Strassen plan once; nil when it would not fit
// planMaxBytes.
func (m *Master) batchPlan() *plan {
	m.planOnce.Do(func() { m.plan = m.buildPlan() })
	return m.plan
}

// residuePlan builds the residues of D once; nil without AVX2, or when k
// or the plan's size is out of the method's range.
func (m *Master) residuePlan() *rnsPlan {
	k := m.params.K
	if !useAVX2 || k > rnsMaxK || rnsPlanBytes(k) > planMaxBytes {
		return nil
	}
	m.rnsOnce.Do(func() { m.rns = m.buildRNSPlan() })
	return m.rns
}
