package keygen

import (
	"crypto/sha3"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	fp "github.com/cloudflare/circl/math/fp25519"

	"orderseal/keygen/internal/field"
)

// refMaster stands in for the key center (keygen/center), which this
// package may not import: the matrix D of DESIGN.md §2 expanded from a seed
// as the center does, and rows r = D·v(x) computed with plain fp25519
// arithmetic. The known-answer vectors check it (kat_test.go), so the keys
// it issues are the keys the center would issue.
type refMaster struct {
	params Params
	tri    []fp.Elt // upper triangle of D, row-major
}

// testMaster builds a reference master with a deterministic system and seed.
func testMaster(t testing.TB, k int, r *rand.Rand) *refMaster {
	t.Helper()
	var p Params
	p.Suite, p.K = SuiteOS1, k
	var seed [32]byte
	for i := range p.System {
		p.System[i] = byte(r.Uint32())
	}
	for i := range seed {
		seed[i] = byte(r.Uint32())
	}
	return refMasterFromSeed(t, p, seed)
}

// refMasterFromSeed expands D: row a of the triangle comes from
// SHAKE256("orderseal-v1-master" || seed || be32(k) || be32(a)), each
// element 32 bytes little-endian with bit 255 cleared, redrawn while ≥ p.
func refMasterFromSeed(t testing.TB, p Params, seed [32]byte) *refMaster {
	t.Helper()
	if err := p.Check(); err != nil {
		t.Fatalf("reference master (k=%d): %v", p.K, err)
	}
	k := p.K
	m := &refMaster{params: p, tri: make([]fp.Elt, 0, k*(k+1)/2)}
	for a := 0; a < k; a++ {
		hdr := append([]byte("orderseal-v1-master"), seed[:]...)
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(k))
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(a))
		x := sha3.NewSHAKE256()
		x.Write(hdr)
		for b := a; b < k; b++ {
			var e fp.Elt
			for {
				x.Read(e[:])
				e[31] &= 0x7f
				if field.IsCanonical(&e) {
					break
				}
			}
			m.tri = append(m.tri, e)
		}
	}
	return m
}

func (m *refMaster) Params() Params { return m.params }

// entry returns D[a][b].
func (m *refMaster) entry(a, b int) fp.Elt {
	if a > b {
		a, b = b, a
	}
	k := m.params.K
	return m.tri[a*k-a*(a-1)/2+(b-a)]
}

// Issue computes the party key for id: r_a = Σ_b D[a][b]·x^b.
func (m *refMaster) Issue(id string) (*PartyKey, error) {
	x, err := IdentityPoint(m.params.System, id)
	if err != nil {
		return nil, err
	}
	k := m.params.K
	v := make([]fp.Elt, k)
	fp.SetOne(&v[0])
	for i := 1; i < k; i++ {
		fp.Mul(&v[i], &v[i-1], &x)
	}
	row := make([]fp.Elt, k)
	for a := range row {
		var t fp.Elt
		for b := range v {
			d := m.entry(a, b)
			fp.Mul(&t, &d, &v[b])
			fp.Add(&row[a], &row[a], &t)
		}
		fp.Modp(&row[a])
	}
	return NewPartyKey(m.params, id, row)
}

func mustIssue(t testing.TB, m *refMaster, id string) *PartyKey {
	t.Helper()
	k, err := m.Issue(id)
	if err != nil {
		t.Fatalf("Issue(%q): %v", id, err)
	}
	return k
}
