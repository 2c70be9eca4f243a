package keygen

import (
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"regexp"
	"sync"
	"testing"

	"github.com/cloudflare/circl/expander"
	fp "github.com/cloudflare/circl/math/fp25519"

	"orderseal/keygen/internal/field"
)

// Property tests of the Blom scheme (DESIGN.md §2): symmetry of K, the
// collusion bound (k rows determine D, k−1 rows do not), identity refusals,
// the per-peer cache and fingerprints.

// testRand is the deterministic source of every random choice in these
// tests, so a failure reproduces; vary the label per test.
func testRand(label string) *rand.Rand {
	var seed [32]byte
	copy(seed[:], "orderseal keygen tests: "+label)
	return rand.New(rand.NewChaCha8(seed))
}

func randomID(r *rand.Rand, role string) string {
	switch role {
	case "cardholder":
		return fmt.Sprintf("cardholder:u%d", r.Uint64())
	default:
		return fmt.Sprintf("%s:m%d", role, r.Uint64())
	}
}

func mustPairwise(t testing.TB, k *PartyKey, peer string) Pairwise {
	t.Helper()
	p, err := k.pairwise(peer)
	if err != nil {
		t.Fatalf("%s: Pairwise(%q): %v", k.Identity(), peer, err)
	}
	return p
}

// --- GF(p) in math/big, independent of fp25519 -----------------------------

var bigP = func() *big.Int {
	p := new(big.Int).Lsh(big.NewInt(1), 255)
	return p.Sub(p, big.NewInt(19))
}()

// eltToBig reads a field element (32 bytes little-endian, see field.Encode).
func eltToBig(e fp.Elt) *big.Int {
	var le [32]byte
	field.Encode(le[:], &e)
	var be [32]byte
	for i := range le {
		be[i] = le[31-i]
	}
	return new(big.Int).SetBytes(be[:])
}

// bigToElt writes n mod p as a canonical field element.
func bigToElt(n *big.Int) fp.Elt {
	m := new(big.Int).Mod(n, bigP)
	var be [32]byte
	m.FillBytes(be[:])
	var e fp.Elt
	for i := range be {
		e[i] = be[31-i]
	}
	return e
}

func modp(n *big.Int) *big.Int { return n.Mod(n, bigP) }

// vandermonde returns v(x) = (1, x, …, x^(k−1)) mod p.
func vandermonde(x *big.Int, k int) []*big.Int {
	v := make([]*big.Int, k)
	v[0] = big.NewInt(1)
	for i := 1; i < k; i++ {
		v[i] = modp(new(big.Int).Mul(v[i-1], x))
	}
	return v
}

func dot(a, b []*big.Int) *big.Int {
	s := new(big.Int)
	for i := range a {
		s.Add(s, new(big.Int).Mul(a[i], b[i]))
	}
	return modp(s)
}

func matVec(d [][]*big.Int, v []*big.Int) []*big.Int {
	out := make([]*big.Int, len(d))
	for i := range d {
		out[i] = dot(d[i], v)
	}
	return out
}

func bigRow(k *PartyKey) []*big.Int {
	out := make([]*big.Int, len(k.row))
	for i := range k.row {
		out[i] = eltToBig(k.row[i])
	}
	return out
}

// keyFromRow wraps a row computed outside the key center as a PartyKey, so
// the package's own Pairwise derives K from it.
func keyFromRow(params Params, id string, row []*big.Int) *PartyKey {
	r := make([]fp.Elt, len(row))
	for i := range row {
		r[i] = bigToElt(row[i])
	}
	return &PartyKey{params: params, identity: id, row: r}
}

func identityBig(t testing.TB, sys [16]byte, id string) *big.Int {
	t.Helper()
	x, err := IdentityPoint(sys, id)
	if err != nil {
		t.Fatalf("IdentityPoint(%q): %v", id, err)
	}
	return eltToBig(x)
}

// rref brings a (copied) matrix to reduced row echelon form over GF(p) and
// returns it with the pivot column of each pivot row.
func rref(a [][]*big.Int) ([][]*big.Int, []int) {
	m := make([][]*big.Int, len(a))
	for i := range a {
		m[i] = make([]*big.Int, len(a[i]))
		for j := range a[i] {
			m[i][j] = modp(new(big.Int).Set(a[i][j]))
		}
	}
	if len(m) == 0 {
		return m, nil
	}
	cols := len(m[0])
	var pivots []int
	r := 0
	for c := 0; c < cols && r < len(m); c++ {
		p := -1
		for i := r; i < len(m); i++ {
			if m[i][c].Sign() != 0 {
				p = i
				break
			}
		}
		if p < 0 {
			continue
		}
		m[r], m[p] = m[p], m[r]
		inv := new(big.Int).ModInverse(m[r][c], bigP)
		for j := range m[r] {
			modp(m[r][j].Mul(m[r][j], inv))
		}
		for i := range m {
			if i == r || m[i][c].Sign() == 0 {
				continue
			}
			f := new(big.Int).Set(m[i][c])
			for j := range m[i] {
				m[i][j].Sub(m[i][j], new(big.Int).Mul(f, m[r][j]))
				modp(m[i][j])
			}
		}
		pivots = append(pivots, c)
		r++
	}
	return m, pivots
}

// solve returns X with A·X = B for square invertible A (k×k) and B (k×n).
func solve(t testing.TB, a, b [][]*big.Int) [][]*big.Int {
	t.Helper()
	k := len(a)
	aug := make([][]*big.Int, k)
	for i := range a {
		aug[i] = append(append([]*big.Int{}, a[i]...), b[i]...)
	}
	m, pivots := rref(aug)
	if len(pivots) != k || pivots[k-1] != k-1 {
		t.Fatalf("system is singular: pivots %v", pivots)
	}
	x := make([][]*big.Int, k)
	for i := range m {
		x[i] = m[i][k:]
	}
	return x
}

// nullVector returns a nonzero w with A·w = 0 for a matrix of rank < cols.
func nullVector(t testing.TB, a [][]*big.Int, cols int) []*big.Int {
	t.Helper()
	m, pivots := rref(a)
	isPivot := make(map[int]int)
	for r, c := range pivots {
		isPivot[c] = r
	}
	free := -1
	for c := 0; c < cols; c++ {
		if _, ok := isPivot[c]; !ok {
			free = c
			break
		}
	}
	if free < 0 {
		t.Fatalf("matrix has full column rank %d: no null space", cols)
	}
	w := make([]*big.Int, cols)
	for c := range w {
		w[c] = new(big.Int)
	}
	w[free].SetInt64(1)
	for c, r := range isPivot {
		w[c] = modp(new(big.Int).Neg(m[r][free]))
	}
	return w
}

// plainHorner is the evaluation field.Horner replaced: one fp.Mul and one
// fp.Add per coefficient (internal/field/horner_test.go keeps the same
// reference for the evaluator alone).
func plainHorner(row []fp.Elt, x *fp.Elt) fp.Elt {
	s := row[len(row)-1]
	for a := len(row) - 2; a >= 0; a-- {
		fp.Mul(&s, &s, x)
		fp.Add(&s, &s, &row[a])
	}
	fp.Modp(&s)
	return s
}

// TestPairwiseAgreesWithPlainHorner: the raw secret through the package's
// own path, against the plain evaluation of the same row.
func TestPairwiseAgreesWithPlainHorner(t *testing.T) {
	r := testRand("horner pairwise")
	for _, k := range []int{1, 33, 200} {
		m := testMaster(t, k, r)
		a, b := randomID(r, "merchant"), randomID(r, "cardholder")
		ka := mustIssue(t, m, a)
		s, err := ka.BlomSecret(b)
		if err != nil {
			t.Fatal(err)
		}
		x, err := IdentityPoint(m.params.System, b)
		if err != nil {
			t.Fatal(err)
		}
		if want := plainHorner(ka.row, &x); s != [32]byte(want) {
			t.Fatalf("k=%d: rawSecret differs from plain Horner", k)
		}
	}
}

// --- symmetry -----------------------------------------------------------------

func TestPairwiseSymmetry(t *testing.T) {
	r := testRand("symmetry")
	for _, tc := range []struct {
		k, pairs, short int
	}{
		{k: 1, pairs: 40, short: 4},
		{k: 2, pairs: 40, short: 4},
		{k: 16, pairs: 20, short: 3},
		{k: 1024, pairs: 2, short: 1}, // ~30 ms per identity after the expansion
	} {
		t.Run(fmt.Sprintf("k=%d", tc.k), func(t *testing.T) {
			m := testMaster(t, tc.k, r)
			n := tc.pairs
			if testing.Short() {
				n = tc.short
			}
			for i := 0; i < n; i++ {
				a, b, c := randomID(r, "cardholder"), randomID(r, "merchant"), randomID(r, "merchant")
				ka, kb := mustIssue(t, m, a), mustIssue(t, m, b)
				ab, ba := mustPairwise(t, ka, b), mustPairwise(t, kb, a)
				if !ab.Equal(&ba) {
					t.Fatalf("K(%s,%s) from A's key != K(%s,%s) from B's key", a, b, b, a)
				}
				ac := mustPairwise(t, ka, c)
				if ab.Equal(&ac) {
					t.Fatalf("K(%s,%s) == K(%s,%s)", a, b, a, c)
				}
				// The raw secrets agree too, and equal vᵀ(A)·D·v(B) (small k).
				sab, err := ka.BlomSecret(b)
				if err != nil {
					t.Fatal(err)
				}
				sba, err := kb.BlomSecret(a)
				if err != nil {
					t.Fatal(err)
				}
				if sab != sba {
					t.Fatalf("s(A,B) != s(B,A) for %s, %s", a, b)
				}
				if tc.k <= 16 && i == 0 {
					d := bigMaster(m)
					xa, xb := identityBig(t, m.params.System, a), identityBig(t, m.params.System, b)
					want := dot(vandermonde(xa, tc.k), matVec(d, vandermonde(xb, tc.k)))
					if got := eltToBig(fp.Elt(sab)); got.Cmp(want) != 0 {
						t.Fatalf("s(A,B) = %x, vᵀ(A)·D·v(B) = %x", got, want)
					}
				}
			}
		})
	}
}

// bigMaster is D as big integers, from the package's own entry().
func bigMaster(m *refMaster) [][]*big.Int {
	k := m.params.K
	d := make([][]*big.Int, k)
	for a := range d {
		d[a] = make([]*big.Int, k)
		for b := range d[a] {
			d[a][b] = eltToBig(m.entry(a, b))
		}
	}
	return d
}

// --- collusion bound --------------------------------------------------------

func TestCollusionBound(t *testing.T) {
	r := testRand("collusion")
	for _, k := range []int{2, 3, 8} {
		t.Run(fmt.Sprintf("k=%d", k), func(t *testing.T) {
			m := testMaster(t, k, r)
			sys := m.params.System
			d := bigMaster(m)
			for a := range d {
				for b := range d {
					if d[a][b].Cmp(d[b][a]) != 0 {
						t.Fatalf("D[%d][%d] != D[%d][%d]", a, b, b, a)
					}
				}
			}
			// The coalition: k issued parties. The outsiders: two parties
			// the coalition never saw.
			ids := make([]string, k)
			xs := make([]*big.Int, k)
			rows := make([][]*big.Int, k)
			for i := range ids {
				ids[i] = randomID(r, "cardholder")
				rows[i] = bigRow(mustIssue(t, m, ids[i]))
				xs[i] = identityBig(t, sys, ids[i])
				// Issue computes exactly D·v(x).
				want := matVec(d, vandermonde(xs[i], k))
				for j := range want {
					if rows[i][j].Cmp(want[j]) != 0 {
						t.Fatalf("row of %s [%d] = %x, D·v(x) = %x", ids[i], j, rows[i][j], want[j])
					}
				}
			}
			outA, outB := randomID(r, "merchant"), randomID(r, "issuer")
			realKA := mustIssue(t, m, outA)
			realK := mustPairwise(t, realKA, outB)
			xA, xB := identityBig(t, sys, outA), identityBig(t, sys, outB)

			t.Run("k rows rebuild D", func(t *testing.T) {
				// Rows satisfy r_i = D·v(x_i); D symmetric, so v(x_i)ᵀ·D = r_iᵀ:
				// Vᵀ·D = R with Vᵀ the Vandermonde matrix of the points.
				vt := make([][]*big.Int, k)
				for i := range vt {
					vt[i] = vandermonde(xs[i], k)
				}
				got := solve(t, vt, rows)
				for a := 0; a < k; a++ {
					for b := 0; b < k; b++ {
						want := eltToBig(m.entry(a, b))
						if got[a][b].Cmp(want) != 0 {
							t.Fatalf("reconstructed D[%d][%d] = %x, master has %x", a, b, got[a][b], want)
						}
					}
				}
				// With D the coalition computes any outsider's row, hence K.
				forged := keyFromRow(m.params, outA, matVec(got, vandermonde(xA, k)))
				fk := mustPairwise(t, forged, outB)
				if !fk.Equal(&realK) {
					t.Fatalf("K(%s,%s) from the reconstructed D differs from the real K", outA, outB)
				}
			})

			t.Run("k-1 rows leave D undetermined", func(t *testing.T) {
				c := k - 1
				vt := make([][]*big.Int, c)
				for i := range vt {
					vt[i] = vandermonde(xs[i], k)
				}
				w := nullVector(t, vt, k)
				nonzero := false
				for _, e := range w {
					nonzero = nonzero || e.Sign() != 0
				}
				if !nonzero {
					t.Fatal("null vector is zero")
				}
				for i := 0; i < c; i++ {
					if s := dot(w, vt[i]); s.Sign() != 0 {
						t.Fatalf("wᵀ·v(x_%d) = %x, want 0", i, s)
					}
				}
				// D' = D + w·wᵀ is symmetric and agrees with D on the coalition.
				d2 := make([][]*big.Int, k)
				for a := range d2 {
					d2[a] = make([]*big.Int, k)
					for b := range d2[a] {
						d2[a][b] = modp(new(big.Int).Add(d[a][b], new(big.Int).Mul(w[a], w[b])))
					}
				}
				for i := 0; i < c; i++ {
					alt := matVec(d2, vt[i])
					for j := range alt {
						if alt[j].Cmp(rows[i][j]) != 0 {
							t.Fatalf("D'·v(x_%d)[%d] differs from the issued row", i, j)
						}
					}
				}
				// … yet it gives outsiders another secret and another K.
				vA, vB := vandermonde(xA, k), vandermonde(xB, k)
				sReal := dot(vA, matVec(d, vB))
				sAlt := dot(vA, matVec(d2, vB))
				if sReal.Cmp(sAlt) == 0 {
					t.Fatalf("vᵀ(A)·D'·v(B) == vᵀ(A)·D·v(B): the coalition's view pins down the outsiders' secret")
				}
				raw, err := realKA.BlomSecret(outB)
				if err != nil {
					t.Fatal(err)
				}
				if got := eltToBig(fp.Elt(raw)); got.Cmp(sReal) != 0 {
					t.Fatalf("real s(A,B) = %x, vᵀ(A)·D·v(B) = %x", got, sReal)
				}
				alt := keyFromRow(m.params, outA, matVec(d2, vA))
				ak := mustPairwise(t, alt, outB)
				if ak.Equal(&realK) {
					t.Fatal("the alternative master gives the outsiders the real K")
				}
			})
		})
	}
}

// --- refusals ---------------------------------------------------------------

func TestPairwiseRefusals(t *testing.T) {
	m := testMaster(t, 4, testRand("refusals"))
	key := mustIssue(t, m, "merchant:shop.example")
	c := NewCache(key, 4, key.pairwise)
	for _, tc := range []struct {
		peer string
		want error
	}{
		{"merchant:shop.example", ErrSameIdentity},
		{"merchant:Shop.example", ErrIdentity},
		{"merchant:", ErrIdentity},
		{"shop.example", ErrIdentity},
		{"bank:x", ErrIdentity},
		{"", ErrIdentity},
	} {
		if _, err := key.pairwise(tc.peer); !errors.Is(err, tc.want) {
			t.Errorf("Pairwise(%q) = %v, want %v", tc.peer, err, tc.want)
		}
		if _, err := c.Pairwise(tc.peer); !errors.Is(err, tc.want) {
			t.Errorf("Cache.Pairwise(%q) = %v, want %v", tc.peer, err, tc.want)
		}
	}
	if c.Len() != 0 {
		t.Errorf("cache holds %d entries after failures only", c.Len())
	}
}

// --- cache --------------------------------------------------------------------

func TestCache(t *testing.T) {
	r := testRand("cache")
	m := testMaster(t, 16, r)
	self := randomID(r, "merchant")
	key := mustIssue(t, m, self)
	peers := []string{randomID(r, "cardholder"), randomID(r, "issuer"), randomID(r, "carrier")}
	direct := make(map[string]Pairwise)
	for _, p := range peers {
		direct[p] = mustPairwise(t, key, p)
	}

	c := NewCache(key, 2, key.pairwise)
	if c.Identity() != self || !c.Params().Equal(m.Params()) || c.Key() != key {
		t.Fatal("cache does not report its own key")
	}
	for round := 0; round < 2; round++ {
		for _, p := range peers {
			got, err := c.Pairwise(p)
			if err != nil {
				t.Fatal(err)
			}
			want := direct[p]
			if !got.Equal(&want) {
				t.Fatalf("round %d: cached K for %s differs from direct derivation", round, p)
			}
			if c.Len() > 2 {
				t.Fatalf("cache of size 2 holds %d peers", c.Len())
			}
		}
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d after 3 peers, want 2", c.Len())
	}
	c.Purge()
	if c.Len() != 0 {
		t.Fatalf("Len = %d after Purge", c.Len())
	}

	t.Run("concurrent", func(t *testing.T) {
		c := NewCache(key, 2, key.pairwise)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 30; i++ {
					p := peers[(g+i)%len(peers)]
					got, err := c.Pairwise(p)
					if err != nil {
						errs <- err
						return
					}
					want := direct[p]
					if !got.Equal(&want) {
						errs <- fmt.Errorf("goroutine %d: wrong K for %s", g, p)
						return
					}
					if n := c.Len(); n > 2 {
						errs <- fmt.Errorf("cache of size 2 holds %d", n)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}

// --- fingerprint --------------------------------------------------------------

var fingerprintRE = regexp.MustCompile(`^[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{5}$`)

func TestFingerprint(t *testing.T) {
	r := testRand("fingerprint")
	m := testMaster(t, 8, r)
	a, b, c := randomID(r, "cardholder"), randomID(r, "merchant"), randomID(r, "carrier")
	ka, kb, kc := mustIssue(t, m, a), mustIssue(t, m, b), mustIssue(t, m, c)
	ab, ba := mustPairwise(t, ka, b), mustPairwise(t, kb, a)
	ac, bc := mustPairwise(t, ka, c), mustPairwise(t, kb, c)
	ca := mustPairwise(t, kc, a)

	fab, fba := ab.Fingerprint(), ba.Fingerprint()
	if fab != fba {
		t.Fatalf("fingerprints of one pair differ: %s vs %s", fab, fba)
	}
	if fac, fca := ac.Fingerprint(), ca.Fingerprint(); fac != fca {
		t.Fatalf("fingerprints of one pair differ: %s vs %s", fac, fca)
	}
	seen := map[string]string{}
	for name, p := range map[string]Pairwise{"AB": ab, "AC": ac, "BC": bc} {
		f := p.Fingerprint()
		if !fingerprintRE.MatchString(f) {
			t.Errorf("fingerprint %q is not XXXXX-XXXXX-XXXXX-XXXXX", f)
		}
		if other, dup := seen[f]; dup {
			t.Errorf("pairs %s and %s share fingerprint %s", name, other, f)
		}
		seen[f] = name
	}
}

// TestIdentityPointMatchesBig: x(id) reduced with the field arithmetic is
// the 48-byte big-endian integer mod p computed with math/big.
func TestIdentityPointMatchesBig(t *testing.T) {
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	for i := range 3000 {
		system := [16]byte{byte(i), byte(i >> 8), 7}
		id := fmt.Sprintf("cardholder:user%d@example.org", i)
		got, err := IdentityPoint(system, id)
		if err != nil {
			t.Fatal(err)
		}
		dst := []byte("orderseal-v1-id:" + hex.EncodeToString(system[:]))
		u := expander.NewExpanderMD(crypto.SHA256, dst).Expand([]byte(id), 48)
		n := new(big.Int).Mod(new(big.Int).SetBytes(u), p)
		var be [32]byte
		n.FillBytes(be[:])
		for j := range be {
			if got[j] != be[31-j] {
				t.Fatalf("%s: x = %x, math/big says %x", id, got, be)
			}
		}
	}
}

// TestCacheStats: Stats counts a lookup of a cached peer as a hit and one
// that derives (a new peer, or one evicted) as a miss.
func TestCacheStats(t *testing.T) {
	r := testRand("cache-stats")
	m := testMaster(t, 16, r)
	key := mustIssue(t, m, randomID(r, "merchant"))
	a, b, c := randomID(r, "cardholder"), randomID(r, "issuer"), randomID(r, "carrier")
	tests := []struct {
		name         string
		size         int
		lookups      []string
		hits, misses uint64
	}{
		{"none", 2, nil, 0, 0},
		{"one peer twice", 2, []string{a, a}, 1, 1},
		{"two peers, each again", 2, []string{a, b, a, b}, 2, 2},
		{"a third peer evicts the least recent", 2, []string{a, b, c, a}, 0, 4},
		{"the most recent stays", 2, []string{a, b, c, c, b}, 2, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := NewCache(key, tt.size, key.pairwise)
			for _, p := range tt.lookups {
				if _, err := cache.Pairwise(p); err != nil {
					t.Fatal(err)
				}
			}
			if h, m := cache.Stats(); h != tt.hits || m != tt.misses {
				t.Fatalf("Stats = %d hits %d misses, want %d %d", h, m, tt.hits, tt.misses)
			}
		})
	}
}
