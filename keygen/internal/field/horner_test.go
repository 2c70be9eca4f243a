package field

import (
	"fmt"
	"math/big"
	"testing"

	fp "github.com/cloudflare/circl/math/fp25519"
)

// plainHorner is the evaluation Horner replaced: one fp.Mul and one fp.Add
// per coefficient, each waiting for the one before. It stays here as the
// reference the fast evaluator must agree with.
func plainHorner(row []fp.Elt, x *fp.Elt) fp.Elt {
	s := row[len(row)-1]
	for a := len(row) - 2; a >= 0; a-- {
		fp.Mul(&s, &s, x)
		fp.Add(&s, &s, &row[a])
	}
	fp.Modp(&s)
	return s
}

// checkHorner compares Horner with plainHorner (and, for short rows, with
// math/big), under each kernel.
func checkHorner(t *testing.T, row []fp.Elt, x *fp.Elt) {
	t.Helper()
	want := plainHorner(row, x)
	if len(row) <= 64 {
		s, xb := new(big.Int), limbBig(x)
		for a := len(row) - 1; a >= 0; a-- {
			s.Mul(s, xb)
			s.Add(s, limbBig(&row[a]))
			s.Mod(s, bigP)
		}
		if got := limbBig(&want); got.Cmp(s) != 0 {
			t.Fatalf("k=%d: plain Horner = %x, math/big = %x", len(row), got, s)
		}
	}
	for _, adx := range []bool{true, false} {
		if adx && !haveADX {
			continue
		}
		saved := useADX
		useADX = adx
		got := Horner(row, x)
		useADX = saved
		if got != want {
			t.Fatalf("k=%d adx=%v: horner = %x, plain Horner = %x", len(row), adx, limbBig(&got), limbBig(&want))
		}
	}
}

func TestHornerMatchesPlain(t *testing.T) {
	r := testRand("horner")
	pm1, one := eltOf(bigPm1), eltOf(big.NewInt(1))
	rows := []struct {
		name string
		elt  func(a int) fp.Elt
	}{
		{"random", func(int) fp.Elt { return eltOf(randBelow(r, bigP)) }},
		{"zeros", func(int) fp.Elt { return fp.Elt{} }},
		{"ones", func(int) fp.Elt { return one }},
		{"p-1", func(int) fp.Elt { return pm1 }},
		{"0,1,p-1", func(a int) fp.Elt { return [3]fp.Elt{{}, one, pm1}[a%3] }},
		// Not canonical (up to 2^256−1): no key file holds these, but the
		// evaluator takes any 256-bit input.
		{"unreduced", func(int) fp.Elt { return eltOf(randBelow(r, two256)) }},
	}
	xs := []struct {
		name string
		x    fp.Elt
	}{
		{"random", eltOf(randBelow(r, bigP))},
		{"1", one},
		{"p-1", pm1},
		{"0", fp.Elt{}},
		{"2", eltOf(big.NewInt(2))},
		{"2^256-1", eltOf(maxU256)},
	}
	for _, k := range []int{1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1024} {
		for _, rk := range rows {
			for _, xk := range xs {
				t.Run(fmt.Sprintf("k=%d/row=%s/x=%s", k, rk.name, xk.name), func(t *testing.T) {
					row := make([]fp.Elt, k)
					for a := range row {
						row[a] = rk.elt(a)
					}
					x := xk.x
					checkHorner(t, row, &x)
				})
			}
		}
	}
}

// FuzzHorner: any row (32-byte chunks, the last zero-padded; at most 2048
// coefficients) at any 256-bit x. Seeds: testdata/fuzz/FuzzHorner/.
func FuzzHorner(f *testing.F) {
	f.Add([]byte{}, []byte{})
	f.Add(make([]byte, 64), []byte{1})
	f.Fuzz(func(t *testing.T, rowBytes, xBytes []byte) {
		k := max(1, (len(rowBytes)+fp.Size-1)/fp.Size)
		if k > 2048 {
			k = 2048
		}
		row := make([]fp.Elt, k)
		for a := range row {
			lo := a * fp.Size
			if lo < len(rowBytes) {
				copy(row[a][:], rowBytes[lo:min(lo+fp.Size, len(rowBytes))])
			}
		}
		var x fp.Elt
		copy(x[:], xBytes)
		checkHorner(t, row, &x)
	})
}

func BenchmarkHorner(b *testing.B) {
	r := testRand("horner bench")
	row := make([]fp.Elt, 1024) // keygen.DefaultK
	for a := range row {
		row[a] = eltOf(randBelow(r, bigP))
	}
	x := eltOf(randBelow(r, bigP))
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			Horner(row, &x)
		}
	})
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			plainHorner(row, &x)
		}
	})
}
