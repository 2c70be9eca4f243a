package field

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	fp "github.com/cloudflare/circl/math/fp25519"
)

// Tests of fe.go and fe_amd64.s against math/big and fp25519. Every check
// that touches DotAdd or WinogradAdd runs once per kernel: the MULX/ADX
// one when the CPU has it, and the portable one.

// eachKernel runs f with each multiply-accumulate implementation this
// machine can run.
func eachKernel(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	kernels := []struct {
		name string
		adx  bool
	}{{"adx", true}, {"generic", false}}
	for _, k := range kernels {
		t.Run(k.name, func(t *testing.T) {
			if k.adx && !haveADX {
				t.Skip("CPU lacks BMI2/ADX (or build is purego/not amd64)")
			}
			saved := useADX
			useADX = k.adx
			defer func() { useADX = saved }()
			f(t)
		})
	}
}

var (
	two256  = new(big.Int).Lsh(big.NewInt(1), 256)
	two255  = new(big.Int).Lsh(big.NewInt(1), 255)
	bigPm1  = new(big.Int).Sub(bigP, big.NewInt(1))
	maxU256 = new(big.Int).Sub(two256, big.NewInt(1))
)

// limbBig reads any 32-byte little-endian value (not reduced).
func limbBig(e *fp.Elt) *big.Int {
	var be [32]byte
	for i := range be {
		be[i] = e[31-i]
	}
	return new(big.Int).SetBytes(be[:])
}

// eltOf writes n (0 ≤ n < 2^256) as 32 bytes little-endian, unreduced.
func eltOf(n *big.Int) fp.Elt {
	var be [32]byte
	n.FillBytes(be[:])
	var e fp.Elt
	for i := range be {
		e[i] = be[31-i]
	}
	return e
}

func wideBig(w *Wide) *big.Int {
	n := new(big.Int)
	for i := len(w) - 1; i >= 0; i-- {
		n.Lsh(n, 64)
		n.Or(n, new(big.Int).SetUint64(w[i]))
	}
	return n
}

// edgeValues are the values most likely to break carries and reductions.
func edgeValues() []*big.Int {
	return []*big.Int{
		big.NewInt(0), big.NewInt(1), big.NewInt(2), big.NewInt(19), big.NewInt(38),
		new(big.Int).Sub(bigP, big.NewInt(2)), bigPm1, bigP, new(big.Int).Add(bigP, big.NewInt(1)),
		new(big.Int).Sub(two255, big.NewInt(1)), two255, new(big.Int).Add(two255, big.NewInt(18)),
		new(big.Int).Sub(new(big.Int).Lsh(bigP, 1), big.NewInt(1)), new(big.Int).Lsh(bigP, 1),
		maxU256, new(big.Int).Lsh(big.NewInt(1), 64), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 192), big.NewInt(1)),
	}
}

// randBelow returns a random value below bound, sometimes with long runs
// of all-ones or all-zero limbs.
func randBelow(r *rand.Rand, bound *big.Int) *big.Int {
	var b [32]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	switch r.IntN(4) {
	case 0:
		for i := r.IntN(32); i < 32; i++ {
			b[i] = 0xff
		}
	case 1:
		for i := r.IntN(32); i < 32; i++ {
			b[i] = 0
		}
	}
	return new(big.Int).Mod(new(big.Int).SetBytes(b[:]), bound)
}

// samples returns the edge values below bound followed by n random ones.
func samples(r *rand.Rand, bound *big.Int, n int) []*big.Int {
	var out []*big.Int
	for _, v := range edgeValues() {
		if v.Cmp(bound) < 0 {
			out = append(out, v)
		}
	}
	for i := 0; i < n; i++ {
		out = append(out, randBelow(r, bound))
	}
	return out
}

func TestMulAddReduce(t *testing.T) {
	r := testRand("fe mulAdd")
	vals := samples(r, two256, 40)
	for _, a := range vals {
		for _, b := range vals {
			ea, eb := eltOf(a), eltOf(b)
			fa, fb := Load(&ea), Load(&eb)
			var w Wide
			w.MulAdd(&fa, &fb)
			prod := new(big.Int).Mul(a, b)
			if got := wideBig(&w); got.Cmp(prod) != 0 {
				t.Fatalf("mulAdd(%x, %x) = %x, want %x", a, b, got, prod)
			}
			red := w.Reduce()
			want := new(big.Int).Mod(prod, bigP)
			if got := limbBig(ptr(red.Elt())); got.Cmp(want) != 0 {
				t.Fatalf("reduce(%x·%x) = %x, want %x", a, b, got, want)
			}
			// And against fp25519, for the canonical result.
			var z fp.Elt
			fp.Mul(&z, &ea, &eb)
			fp.Modp(&z)
			if red.Elt() != z {
				t.Fatalf("reduce(%x·%x) differs from fp.Mul", a, b)
			}
		}
	}
}

func ptr(e fp.Elt) *fp.Elt { return &e }

// TestReduceWide: sums of many maximal products, and accumulators built
// limb by limb, up to the largest value reduce accepts.
func TestReduceWide(t *testing.T) {
	r := testRand("fe reduce")
	max := Fe{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
	var w Wide
	sum := new(big.Int)
	prod := new(big.Int).Mul(maxU256, maxU256)
	for i := 1; i <= 5000; i++ {
		w.MulAdd(&max, &max)
		sum.Add(sum, prod)
		if i%997 == 0 || i == 5000 {
			if got := wideBig(&w); got.Cmp(sum) != 0 {
				t.Fatalf("after %d products: %x, want %x", i, got, sum)
			}
			got := w.Reduce()
			if g := limbBig(ptr(got.Elt())); g.Cmp(new(big.Int).Mod(sum, bigP)) != 0 {
				t.Fatalf("reduce after %d products wrong", i)
			}
		}
	}
	limit := new(big.Int).Lsh(big.NewInt(1), 575)
	for i := 0; i < 2000; i++ {
		var w Wide
		for j := range w {
			switch r.IntN(3) {
			case 0:
				w[j] = ^uint64(0)
			case 1:
				w[j] = 0
			default:
				w[j] = r.Uint64()
			}
		}
		w[8] &^= 1 << 63 // reduce's bound: w < 2^575
		n := wideBig(&w)
		if n.Cmp(limit) >= 0 {
			t.Fatal("test accumulator out of range")
		}
		got := w.Reduce()
		if g := limbBig(ptr(got.Elt())); g.Cmp(new(big.Int).Mod(n, bigP)) != 0 {
			t.Fatalf("reduce(%x) = %x, want %x", n, g, new(big.Int).Mod(n, bigP))
		}
	}
}

func TestCanonical(t *testing.T) {
	r := testRand("fe canonical")
	for _, v := range samples(r, two256, 2000) {
		e := eltOf(v)
		f := Load(&e)
		got := canonical(f[0], f[1], f[2], f[3])
		if g := limbBig(ptr(got.Elt())); g.Cmp(new(big.Int).Mod(v, bigP)) != 0 {
			t.Fatalf("canonical(%x) = %x", v, g)
		}
	}
}

func TestFieldAddSub(t *testing.T) {
	r := testRand("fe add sub")
	vals := samples(r, bigP, 60)
	xs := make([]fp.Elt, 0, len(vals)*len(vals))
	ys := make([]fp.Elt, 0, len(vals)*len(vals))
	for _, a := range vals {
		for _, b := range vals {
			xs, ys = append(xs, eltOf(a)), append(ys, eltOf(b))
		}
	}
	sum := make([]fp.Elt, len(xs))
	diff := make([]fp.Elt, len(xs))
	VecAdd(sum, xs, ys)
	VecSub(diff, xs, ys)
	for i := range xs {
		a, b := limbBig(&xs[i]), limbBig(&ys[i])
		if got, want := limbBig(&sum[i]), modp(new(big.Int).Add(a, b)); got.Cmp(want) != 0 {
			t.Fatalf("vecAdd %x + %x = %x, want %x", a, b, got, want)
		}
		if got, want := limbBig(&diff[i]), modp(new(big.Int).Sub(a, b)); got.Cmp(want) != 0 {
			t.Fatalf("vecSub %x − %x = %x, want %x", a, b, got, want)
		}
		fa, fb := Load(&xs[i]), Load(&ys[i])
		d := Sub(&fa, &fb)
		if d.Elt() != diff[i] {
			t.Fatalf("feSub %x − %x differs from vecSub", a, b)
		}
	}
	// In place, as the Strassen combination uses them.
	in := append([]fp.Elt(nil), xs...)
	VecAdd(in, in, ys)
	VecSub(in, in, ys)
	for i := range in {
		if in[i] != xs[i] {
			t.Fatalf("in-place (x + y) − y ≠ x at %d", i)
		}
	}
}

// TestDotAdd: the kernels against math/big, for lengths around the
// two-accumulator unrolling and operands anywhere below 2^256.
func TestDotAdd(t *testing.T) {
	eachKernel(t, func(t *testing.T) {
		r := testRand("fe dotAdd")
		edges := samples(r, two256, 0)
		for _, n := range []int{0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 64, 255} {
			for trial := 0; trial < 6; trial++ {
				a, b := make([]fp.Elt, n), make([]fp.Elt, n)
				want := new(big.Int)
				for i := range a {
					var x, y *big.Int
					switch trial {
					case 0: // all maximal: the largest carries
						x, y = maxU256, maxU256
					case 1:
						x, y = edges[r.IntN(len(edges))], edges[r.IntN(len(edges))]
					default:
						x, y = randBelow(r, two256), randBelow(r, two256)
					}
					a[i], b[i] = eltOf(x), eltOf(y)
					want.Add(want, new(big.Int).Mul(x, y))
				}
				// Start from a non-zero accumulator: the kernels add to it.
				w := Wide{r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64() >> 40}
				want.Add(want, wideBig(&w))
				DotAdd(&w, a, b)
				if got := wideBig(&w); got.Cmp(want) != 0 {
					t.Fatalf("n=%d trial %d: dotAdd = %x, want %x", n, trial, got, want)
				}
			}
		}
	})
}

// TestWinogradAdd: Σ (d[2j]+v[2j])·(d[2j+1]+v[2j+1]) for operands below
// 2^255 (the kernel's precondition), and the identity it serves.
func TestWinogradAdd(t *testing.T) {
	eachKernel(t, func(t *testing.T) {
		r := testRand("fe winograd")
		edges := samples(r, two255, 0)
		for _, n := range []int{0, 2, 4, 6, 8, 10, 30, 32, 34, 128} {
			for trial := 0; trial < 6; trial++ {
				d, v := make([]fp.Elt, n), make([]fp.Elt, n)
				for i := range d {
					var x, y *big.Int
					switch trial {
					case 0:
						x, y = new(big.Int).Sub(two255, big.NewInt(1)), new(big.Int).Sub(two255, big.NewInt(1))
					case 1:
						x, y = edges[r.IntN(len(edges))], edges[r.IntN(len(edges))]
					default:
						x, y = randBelow(r, two255), randBelow(r, bigP)
					}
					d[i], v[i] = eltOf(x), eltOf(y)
				}
				want := new(big.Int)
				for j := 0; j+1 < n; j += 2 {
					s := new(big.Int).Add(limbBig(&d[j]), limbBig(&v[j]))
					u := new(big.Int).Add(limbBig(&d[j+1]), limbBig(&v[j+1]))
					want.Add(want, s.Mul(s, u))
				}
				var w Wide
				WinogradAdd(&w, d, v)
				if got := wideBig(&w); got.Cmp(want) != 0 {
					t.Fatalf("n=%d trial %d: winogradAdd = %x, want %x", n, trial, got, want)
				}
				if trial < 2 || n == 0 {
					continue
				}
				// With v = u pair-swapped: Σ d·u = W − Σ d[2j]d[2j+1] − Σ u[2j]u[2j+1] (mod p).
				u := make([]fp.Elt, n)
				for i := range u {
					u[i^1] = v[i]
				}
				dot, xi, eta := new(big.Int), new(big.Int), new(big.Int)
				for i := range d {
					dot.Add(dot, new(big.Int).Mul(limbBig(&d[i]), limbBig(&u[i])))
				}
				for j := 0; j < n; j += 2 {
					xi.Add(xi, new(big.Int).Mul(limbBig(&d[j]), limbBig(&d[j+1])))
					eta.Add(eta, new(big.Int).Mul(limbBig(&u[j]), limbBig(&u[j+1])))
				}
				lhs := modp(new(big.Int).Sub(new(big.Int).Sub(wideBig(&w), xi), eta))
				if lhs.Cmp(modp(dot)) != 0 {
					t.Fatalf("n=%d: Winograd's identity does not hold", n)
				}
			}
		}
	})
}

func TestKernelLengthChecks(t *testing.T) {
	for name, f := range map[string]func(){
		"dot unequal": func() { DotAdd(&Wide{}, make([]fp.Elt, 2), make([]fp.Elt, 3)) },
		//lint:ignore SA5012 an odd length is the point: the kernel must refuse it
		"winograd odd":     func() { WinogradAdd(&Wide{}, make([]fp.Elt, 3), make([]fp.Elt, 3)) },
		"winograd unequal": func() { WinogradAdd(&Wide{}, make([]fp.Elt, 2), make([]fp.Elt, 4)) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			f()
		})
	}
}

func BenchmarkKernels(b *testing.B) {
	r := testRand("fe bench")
	a, c := make([]fp.Elt, 1024), make([]fp.Elt, 1024)
	for i := range a {
		a[i], c[i] = eltOf(randBelow(r, bigP)), eltOf(randBelow(r, bigP))
	}
	for _, adx := range []bool{true, false} {
		if adx && !haveADX {
			continue
		}
		saved := useADX
		useADX = adx
		b.Run(fmt.Sprintf("dot1024/adx=%v", adx), func(b *testing.B) {
			var w Wide
			for b.Loop() {
				DotAdd(&w, a, c)
			}
		})
		b.Run(fmt.Sprintf("winograd1024/adx=%v", adx), func(b *testing.B) {
			var w Wide
			for b.Loop() {
				WinogradAdd(&w, a, c)
			}
		})
		useADX = saved
	}
}
