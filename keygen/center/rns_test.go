package center

import (
	"math/big"
	"testing"
)

// Tests of the residue arithmetic of rns.go against math/big.

func TestRNSBasis(t *testing.T) {
	b := rnsSetup()
	Q := big.NewInt(1)
	prev := uint64(1 << 26)
	for i := range b.mod {
		m := &b.mod[i]
		q := new(big.Int).SetUint64(m.q)
		if m.q >= prev || !q.ProbablyPrime(20) {
			t.Fatalf("modulus %d = %d: not a prime below the one before", i, m.q)
		}
		prev = m.q
		Q.Mul(Q, q)
	}
	if Q.BitLen() <= 545 {
		t.Fatalf("Q has %d bits, want more than 545", Q.BitLen())
	}
	// The largest entry of D·V over the integers must leave t exact.
	maxR := new(big.Int).Mul(big.NewInt(rnsMaxK), new(big.Int).Mul(bigPm1, bigPm1))
	if new(big.Int).Lsh(maxR, 16).Cmp(Q) >= 0 {
		t.Fatal("k·(p−1)²·2^16 ≥ Q")
	}
	if new(big.Int).Mul(big.NewInt(rnsMaxK), new(big.Int).SetUint64((prev-1)*(prev-1))).BitLen() > 64 {
		t.Fatal("a lane could overflow")
	}
	two64 := new(big.Int).Lsh(big.NewInt(1), 64)
	for i := range b.mod {
		m := &b.mod[i]
		q := new(big.Int).SetUint64(m.q)
		if new(big.Int).Div(two64, q).Uint64() != m.barrett || m.ceilInv != m.barrett+1 {
			t.Fatalf("modulus %d: Barrett constants", i)
		}
		Qi := new(big.Int).Div(Q, q)
		if new(big.Int).Mod(new(big.Int).Mul(Qi, new(big.Int).SetUint64(m.crtInv)), q).Cmp(big.NewInt(1)) != 0 {
			t.Fatalf("modulus %d: (Q/q)^−1 wrong", i)
		}
		w := m.crtW.Elt()
		if limbBig(&w).Cmp(new(big.Int).Mod(Qi, bigP)) != 0 {
			t.Fatalf("modulus %d: (Q/q) mod p wrong", i)
		}
	}
	nq := b.negQ.Elt()
	if limbBig(&nq).Cmp(modp(new(big.Int).Neg(Q))) != 0 {
		t.Fatal("−Q mod p wrong")
	}
}

func TestRNSReduce(t *testing.T) {
	r := testRand("rns reduce")
	b := rnsSetup()
	for i := range b.mod {
		m := &b.mod[i]
		xs := []uint64{0, 1, m.q - 1, m.q, m.q + 1, 2*m.q - 1, 2 * m.q, ^uint64(0), ^uint64(0) - m.q, m.barrett * m.q, (m.q - 1) * (m.q - 1)}
		for j := 0; j < 2000; j++ {
			xs = append(xs, r.Uint64(), r.Uint64()>>r.IntN(64))
		}
		for _, x := range xs {
			if got, want := m.reduce(x), x%m.q; got != want {
				t.Fatalf("q=%d: reduce(%d) = %d, want %d", m.q, x, got, want)
			}
		}
	}
}

func TestRNSResidues(t *testing.T) {
	r := testRand("rns residues")
	b := rnsSetup()
	for _, v := range samples(r, two256, 300) {
		e := eltOf(v)
		res := b.residues(&e)
		for i := range b.mod {
			if want := new(big.Int).Mod(v, new(big.Int).SetUint64(b.mod[i].q)).Uint64(); res[i] != want {
				t.Fatalf("%x mod %d = %d, want %d", v, b.mod[i].q, res[i], want)
			}
		}
	}
}

// TestRNSCRT: integers up to the largest entry of D·V, from residues given
// as any 64-bit representatives, back to themselves mod p.
func TestRNSCRT(t *testing.T) {
	r := testRand("rns crt")
	b := rnsSetup()
	maxR := new(big.Int).Mul(big.NewInt(rnsMaxK), new(big.Int).Mul(bigPm1, bigPm1))
	vals := []*big.Int{big.NewInt(0), big.NewInt(1), bigPm1, bigP, new(big.Int).Mul(bigP, big.NewInt(12345)), maxR,
		new(big.Int).Sub(maxR, big.NewInt(1)), new(big.Int).Lsh(big.NewInt(1), 521)}
	for i := 0; i < 3000; i++ {
		var buf [66]byte
		for j := range buf {
			buf[j] = byte(r.Uint32())
		}
		vals = append(vals, new(big.Int).Mod(new(big.Int).SetBytes(buf[:r.IntN(67)]), maxR))
	}
	for _, v := range vals {
		var res [rnsPrimes]uint64
		for i := range b.mod {
			q := b.mod[i].q
			res[i] = new(big.Int).Mod(v, new(big.Int).SetUint64(q)).Uint64()
			res[i] += q * (r.Uint64() % (^uint64(0) / q)) // another representative
		}
		got := b.crt(&res)
		if g := limbBig(ptr(got.Elt())); g.Cmp(new(big.Int).Mod(v, bigP)) != 0 {
			t.Fatalf("crt of %x = %x, want %x", v, g, new(big.Int).Mod(v, bigP))
		}
	}
}

// TestRNSBlock: the AVX2 kernel against the portable one and a direct sum,
// including sums at the 64-bit bound (every residue q−1, kk = rnsMaxK).
func TestRNSBlock(t *testing.T) {
	r := testRand("rns block")
	b := rnsSetup()
	q := b.mod[0].q // the largest modulus, for sums at the bound
	for _, tc := range []struct{ kk, lda, ldv int }{{0, 3, 8}, {1, 1, 8}, {2, 5, 16}, {7, 7, 8}, {64, 70, 24}, {1024, 1024, 32}, {rnsMaxK, rnsMaxK, 8}} {
		for _, extreme := range []bool{false, true} {
			a := make([]uint32, 3*tc.lda+tc.kk+1)
			v := make([]uint32, max(1, tc.kk)*tc.ldv+8)
			for i := range a {
				if extreme {
					a[i] = uint32(q - 1)
				} else {
					a[i] = uint32(r.Uint64() % q)
				}
			}
			for i := range v {
				if extreme {
					v[i] = uint32(q - 1)
				} else {
					v[i] = uint32(r.Uint64() % q)
				}
			}
			var want [32]uint64
			for j := 0; j < 4; j++ {
				for l := 0; l < 8; l++ {
					s := new(big.Int)
					for tt := 0; tt < tc.kk; tt++ {
						s.Add(s, new(big.Int).Mul(big.NewInt(int64(a[j*tc.lda+tt])), big.NewInt(int64(v[tt*tc.ldv+l]))))
					}
					if s.BitLen() > 64 {
						t.Fatalf("test sum exceeds 64 bits")
					}
					want[8*j+l] = s.Uint64()
				}
			}
			for _, avx := range []bool{true, false} {
				if avx && !haveAVX2 {
					continue
				}
				saved := useAVX2
				useAVX2 = avx
				got := [32]uint64{1, 2, 3} // overwritten, not added to
				if tc.kk == 0 {
					if avx {
						rnsBlockAVX2(&got, &a[0], tc.lda, &v[0], tc.ldv, 0)
					} else {
						rnsBlockGeneric(&got, a, tc.lda, v, tc.ldv, 0)
					}
				} else {
					rnsBlock(&got, a, tc.lda, v, tc.ldv, tc.kk)
				}
				useAVX2 = saved
				if got != want {
					t.Fatalf("kk=%d extreme=%v avx=%v: block differs", tc.kk, extreme, avx)
				}
			}
		}
	}
}
