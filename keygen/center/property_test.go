package center

import (
	"fmt"
	"math/big"
	"testing"

	"orderseal/keygen"
)

// The master's side of the Blom properties (keygen/property_test.go has
// the parties' side): D is symmetric and Issue computes exactly D·v(x).

// TestIssueMatchesBig: rows are D·v(x), computed again with math/big from
// the master's own entries, and the keys of two parties agree.
func TestIssueMatchesBig(t *testing.T) {
	r := testRand("issue matches big")
	for _, k := range []int{1, 2, 3, 16} {
		t.Run(fmt.Sprintf("k=%d", k), func(t *testing.T) {
			m := testMaster(t, k, r)
			d := make([][]*big.Int, k)
			for a := range d {
				d[a] = make([]*big.Int, k)
				for b := range d[a] {
					d[a][b] = limbBig(ptr(m.entry(a, b)))
					if e := m.entry(b, a); limbBig(&e).Cmp(d[a][b]) != 0 {
						t.Fatalf("D[%d][%d] != D[%d][%d]", a, b, b, a)
					}
				}
			}
			for i := 0; i < 3; i++ {
				id := randomID(r, "cardholder")
				xe, err := keygen.IdentityPoint(m.params.System, id)
				if err != nil {
					t.Fatal(err)
				}
				x := limbBig(&xe)
				v := make([]*big.Int, k)
				v[0] = big.NewInt(1)
				for j := 1; j < k; j++ {
					v[j] = modp(new(big.Int).Mul(v[j-1], x))
				}
				row := rowOf(t, mustIssue(t, m, id))
				for a := range row {
					want := new(big.Int)
					for b := range v {
						want.Add(want, new(big.Int).Mul(d[a][b], v[b]))
					}
					modp(want)
					if got := limbBig(&row[a]); got.Cmp(want) != 0 {
						t.Fatalf("row of %s [%d] = %x, D·v(x) = %x", id, a, got, want)
					}
				}
			}
			a, b := randomID(r, "cardholder"), randomID(r, "merchant")
			ab, ba := mustPairwise(t, mustIssue(t, m, a), b), mustPairwise(t, mustIssue(t, m, b), a)
			if !ab.Equal(&ba) {
				t.Fatalf("K(%s,%s) from A's key != K(%s,%s) from B's key", a, b, b, a)
			}
		})
	}
}

// TestIssueConcurrent: a fresh master may be used from several goroutines.
func TestIssueConcurrent(t *testing.T) {
	m, err := MasterFromSeed(keygen.Params{Suite: keygen.SuiteOS1, System: [16]byte{7}, K: 16}, [32]byte{7})
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]*keygen.PartyKey, 4)
	done := make(chan int)
	for i := range keys {
		go func() {
			k, err := m.Issue(fmt.Sprintf("cardholder:c%d", i))
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
			done <- i
		}()
	}
	for range keys {
		<-done
	}
	a := mustPairwise(t, keys[0], keys[1].Identity())
	b := mustPairwise(t, keys[1], keys[0].Identity())
	if !a.Equal(&b) {
		t.Fatal("keys issued concurrently do not agree")
	}
}
