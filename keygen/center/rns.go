package center

import (
	"math/big"
	"math/bits"
	"sync"

	fp "github.com/cloudflare/circl/math/fp25519"

	"orderseal/keygen/internal/field"
)

// Batch issuance by residue arithmetic, on CPUs with AVX2 (rns_amd64.s).
//
// D·V is a product of integer matrices (entries in [0, p)); each entry of
// the integer product is below k·p² < 2^522 for k ≤ rnsMaxK. It is computed
// modulo rnsPrimes primes q_i just below 2^26, whose product Q exceeds
// 2^545, and put back together by the Chinese remainder theorem, then
// reduced mod p: the same field elements as Master.row, bit for bit.
//
// Modulo a 26-bit prime, a product of residues fits in 52 bits and k ≤ 2^12
// of them sum in a 64-bit lane without overflow, so the inner loop is the
// vector multiply-add of 32-bit numbers (VPMULUDQ, VPADDQ), four lanes at a
// time, with no carries and no reduction until the sum is complete. That
// is several times the throughput of the 256-bit scalar products of
// batch.go, which remains the path on other CPUs.
//
// All of it is constant-time in D: reductions are multiply-and-mask, never
// a division or a branch on a value.

const (
	rnsPrimes = 21      // moduli
	rnsMaxK   = 1 << 12 // k·(q−1)² < 2^64: a lane holds the whole sum
)

// rnsModulus is one prime with its precomputed constants.
type rnsModulus struct {
	q       uint64
	barrett uint64    // floor(2^64 / q)
	ceilInv uint64    // ceil(2^64 / q), for the CRT quotient
	crtInv  uint64    // (Q/q)^−1 mod q
	crtW    field.Fe  // (Q/q) mod p
	pow32   [8]uint64 // 2^(32j) mod q
}

// rnsBasis is the set of moduli and the CRT constants.
type rnsBasis struct {
	mod  [rnsPrimes]rnsModulus
	negQ field.Fe // −Q mod p
}

var (
	rnsOnce sync.Once
	rnsBase *rnsBasis
)

// rnsSetup finds the rnsPrimes largest primes below 2^26 (ProbablyPrime is
// exact below 2^64) and derives the constants, once.

// modulus is p = 2^255 − 19 as a big.Int, for the public CRT constants.
var modulus = func() *big.Int {
	p := new(big.Int).Lsh(big.NewInt(1), 255)
	return p.Sub(p, big.NewInt(19))
}()

func rnsSetup() *rnsBasis {
	rnsOnce.Do(func() {
		b := new(rnsBasis)
		qs := make([]*big.Int, 0, rnsPrimes)
		for c := int64(1<<26 - 1); len(qs) < rnsPrimes; c -= 2 {
			if n := big.NewInt(c); n.ProbablyPrime(1) {
				qs = append(qs, n)
			}
		}
		Q := big.NewInt(1)
		for _, q := range qs {
			Q.Mul(Q, q)
		}
		two64 := new(big.Int).Lsh(big.NewInt(1), 64)
		for i, q := range qs {
			m := &b.mod[i]
			m.q = q.Uint64()
			m.barrett = new(big.Int).Div(two64, q).Uint64()
			m.ceilInv = m.barrett + 1 // q is odd, so 2^64/q is not an integer
			Qi := new(big.Int).Div(Q, q)
			m.crtInv = new(big.Int).ModInverse(Qi, q).Uint64()
			m.crtW = bigFe(new(big.Int).Mod(Qi, modulus))
			for j := range m.pow32 {
				m.pow32[j] = new(big.Int).Exp(big.NewInt(2), big.NewInt(int64(32*j)), q).Uint64()
			}
		}
		b.negQ = bigFe(new(big.Int).Mod(new(big.Int).Neg(Q), modulus))
		rnsBase = b
	})
	return rnsBase
}

// bigFe converts 0 ≤ n < 2^256 to limbs (set-up only; not constant-time).
func bigFe(n *big.Int) field.Fe {
	var be [32]byte
	n.FillBytes(be[:])
	var e fp.Elt
	for i := range be {
		e[i] = be[31-i]
	}
	return field.Load(&e)
}

// reduce returns x mod q for any 64-bit x. The Barrett quotient
// hi(x·floor(2^64/q)) is at most one short, so one masked subtraction
// finishes it.
func (m *rnsModulus) reduce(x uint64) uint64 {
	qt, _ := bits.Mul64(x, m.barrett)
	r := x - qt*m.q // < 2q
	s := r - m.q
	return s + m.q&uint64(int64(s)>>63) // r − q, or r when that went negative
}

// residues returns e mod q_i for every prime, for an element e < 2^256:
// Σ half_j·(2^(32j) mod q) over its eight 32-bit halves, below 2^61 before
// the reduction.
func (b *rnsBasis) residues(e *fp.Elt) [rnsPrimes]uint64 {
	l := field.Load(e)
	h := [8]uint64{
		l[0] & 0xffffffff, l[0] >> 32, l[1] & 0xffffffff, l[1] >> 32,
		l[2] & 0xffffffff, l[2] >> 32, l[3] & 0xffffffff, l[3] >> 32,
	}
	var out [rnsPrimes]uint64
	for i := range b.mod {
		m := &b.mod[i]
		s := h[0]*m.pow32[0] + h[1]*m.pow32[1] + h[2]*m.pow32[2] + h[3]*m.pow32[3] +
			h[4]*m.pow32[4] + h[5]*m.pow32[5] + h[6]*m.pow32[6] + h[7]*m.pow32[7]
		out[i] = m.reduce(s)
	}
	return out
}

// crt returns (the integer whose residues are r) mod p, canonical, for an
// integer below Q·2^−16. r[i] may be any 64-bit value ≡ the residue mod q_i.
//
// With y_i = r_i·(Q/q_i)^−1 mod q_i, the integer is Σ y_i·(Q/q_i) − t·Q where
// t = ⌊Σ y_i/q_i⌋; Σ y_i·⌈2^64/q_i⌉ overestimates 2^64·Σ y_i/q_i by less than
// 2^31, and the fractional part of Σ y_i/q_i is the integer over Q, below
// 2^−16: so the high word of that sum is exactly t.
func (b *rnsBasis) crt(r *[rnsPrimes]uint64) field.Fe {
	// Σ y_i·W_i limb by limb: each column a 128-bit sum of products of a
	// limb and a number below 2^26, carried into the next column at the end.
	var lo, hi [4]uint64
	var tHi, tLo uint64
	add := func(y uint64, w *field.Fe) {
		for j := 0; j < 4; j++ {
			ph, pl := bits.Mul64(y, w[j])
			var c uint64
			lo[j], c = bits.Add64(lo[j], pl, 0)
			hi[j] += ph + c
		}
	}
	for i := range b.mod {
		m := &b.mod[i]
		y := m.reduce(m.reduce(r[i]) * m.crtInv)
		ph, pl := bits.Mul64(y, m.ceilInv)
		var c uint64
		tLo, c = bits.Add64(tLo, pl, 0)
		tHi += ph + c
		add(y, &m.crtW)
	}
	add(tHi, &b.negQ)
	// Column j is lo[j] + 2^64·hi[j] at 2^(64j), with hi[j] < 2^32.
	var w field.Wide
	var c uint64
	w[0] = lo[0]
	w[1], c = bits.Add64(lo[1], hi[0], 0)
	w[2], c = bits.Add64(lo[2], hi[1], c)
	w[3], c = bits.Add64(lo[3], hi[2], c)
	w[4], _ = bits.Add64(hi[3], 0, c)
	return w.Reduce()
}

// rnsPlan holds D modulo each prime: rows of k residues (uint32), padded
// with zero rows to a multiple of 4, the height of the kernel's block.
type rnsPlan struct {
	k, rows int
	basis   *rnsBasis
	a       [rnsPrimes][]uint32
	scratch sync.Pool // of *rnsScratch
}

// rnsGroup is how many identities share one pass over the residues: the
// kernel computes 8 columns at a time, and V's 32 columns of residues for
// k=1024 (128 KiB per prime) stay in the second-level cache.
const rnsGroup = 32

// rnsPlanBytes is the memory a plan for k would take.
func rnsPlanBytes(k int) int { return rnsPrimes * (k + 3) / 4 * 4 * k * 4 }

// buildRNSPlan reduces D modulo each prime. m.tri must be expanded.
func (m *Master) buildRNSPlan() *rnsPlan {
	k := m.params.K
	b := rnsSetup()
	p := &rnsPlan{k: k, rows: (k + 3) / 4 * 4, basis: b}
	for i := range p.a {
		p.a[i] = make([]uint32, p.rows*k)
	}
	idx := 0
	for r := 0; r < k; r++ {
		for c := r; c < k; c++ {
			res := b.residues(&m.tri[idx])
			for i, v := range res {
				p.a[i][r*k+c] = uint32(v)
				p.a[i][c*k+r] = uint32(v)
			}
			idx++
		}
	}
	return p
}

func (p *rnsPlan) destroy() {
	for i := range p.a {
		clear(p.a[i])
	}
}

// rnsScratch holds one group's residues of V (k × n per prime) and of the
// product (rows × n per prime).
type rnsScratch struct {
	v    [rnsPrimes][]uint32
	prod [rnsPrimes][]uint64
}

// rowsGroup computes the party-key rows of up to rnsGroup identity points.
func (p *rnsPlan) rowsGroup(xs []fp.Elt) [][]fp.Elt {
	k, b := p.k, p.basis
	n := (len(xs) + 7) / 8 * 8 // zero columns fill the kernel's width
	sc, _ := p.scratch.Get().(*rnsScratch)
	if sc == nil {
		sc = new(rnsScratch)
	}
	for i := range sc.v {
		if cap(sc.v[i]) < k*n {
			sc.v[i] = make([]uint32, k*n)
			sc.prod[i] = make([]uint64, p.rows*n)
		}
		sc.v[i] = sc.v[i][:k*n]
		sc.prod[i] = sc.prod[i][:p.rows*n]
		clear(sc.v[i])
	}
	// V: column c holds the residues of 1, x_c, x_c², … (canonical powers).
	for c := range xs {
		var pw fp.Elt
		fp.SetOne(&pw)
		for a := 0; a < k; a++ {
			q := pw
			fp.Modp(&q)
			res := b.residues(&q)
			for i, v := range res {
				sc.v[i][a*n+c] = uint32(v)
			}
			fp.Mul(&pw, &pw, &xs[c])
		}
	}
	// The products, prime by prime: each block of 4 rows of D meets every
	// block of 8 columns while it is in the first-level cache.
	var blk [32]uint64
	for i := range p.a {
		a, v, prod := p.a[i], sc.v[i], sc.prod[i]
		for r := 0; r < p.rows; r += 4 {
			for c := 0; c < n; c += 8 {
				rnsBlock(&blk, a[r*k:], k, v[c:], n, k)
				for j := 0; j < 4; j++ {
					copy(prod[(r+j)*n+c:(r+j)*n+c+8], blk[8*j:8*j+8])
				}
			}
		}
	}
	clear(blk[:])
	out := make([][]fp.Elt, len(xs))
	for c := range out {
		out[c] = make([]fp.Elt, k)
	}
	var res [rnsPrimes]uint64
	for r := 0; r < k; r++ { // row by row: the columns of a row share cache lines
		for c := range out {
			for i := range res {
				res[i] = sc.prod[i][r*n+c]
			}
			e := b.crt(&res)
			out[c][r] = e.Elt()
		}
	}
	clear(res[:])
	for i := range sc.prod {
		clear(sc.prod[i])
	}
	p.scratch.Put(sc)
	return out
}

// rnsBlock sets blk[8·j + l] = Σ_{t<kk} a[j·lda + t]·v[t·ldv + l] for j < 4,
// l < 8: a block of 4 rows of D (residues) times 8 columns of V.
func rnsBlock(blk *[32]uint64, a []uint32, lda int, v []uint32, ldv, kk int) {
	_ = a[3*lda+kk-1]
	_ = v[(kk-1)*ldv+7]
	if useAVX2 {
		rnsBlockAVX2(blk, &a[0], lda, &v[0], ldv, kk)
		return
	}
	rnsBlockGeneric(blk, a, lda, v, ldv, kk)
}

func rnsBlockGeneric(blk *[32]uint64, a []uint32, lda int, v []uint32, ldv, kk int) {
	for j := 0; j < 4; j++ {
		for l := 0; l < 8; l++ {
			var s uint64
			for t := 0; t < kk; t++ {
				s += uint64(a[j*lda+t]) * uint64(v[t*ldv+l])
			}
			blk[8*j+l] = s
		}
	}
}
