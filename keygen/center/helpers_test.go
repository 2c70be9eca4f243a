package center

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"regexp"
	"testing"

	fp "github.com/cloudflare/circl/math/fp25519"

	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/keygen/internal/field"
	"orderseal/suite/os1"
)

// Helpers of the key center's tests. The random labels are those the tests
// had in package keygen, where they lived before.

// testRand is the deterministic source of every random choice in these
// tests, so a failure reproduces; vary the label per test.
func testRand(label string) *rand.Rand {
	var seed [32]byte
	copy(seed[:], "orderseal keygen tests: "+label)
	return rand.New(rand.NewChaCha8(seed))
}

// testMaster builds a master with a deterministic system and seed.
func testMaster(t testing.TB, k int, r *rand.Rand) *Master {
	t.Helper()
	var p keygen.Params
	p.Suite, p.K = keygen.SuiteOS1, k
	var seed [32]byte
	for i := range p.System {
		p.System[i] = byte(r.Uint32())
	}
	for i := range seed {
		seed[i] = byte(r.Uint32())
	}
	m, err := MasterFromSeed(p, seed)
	if err != nil {
		t.Fatalf("MasterFromSeed(k=%d): %v", k, err)
	}
	return m
}

func randomID(r *rand.Rand, role string) string {
	switch role {
	case "cardholder":
		return fmt.Sprintf("cardholder:u%d", r.Uint64())
	default:
		return fmt.Sprintf("%s:m%d", role, r.Uint64())
	}
}

func mustIssue(t testing.TB, m *Master, id string) *keygen.PartyKey {
	t.Helper()
	k, err := m.Issue(id)
	if err != nil {
		t.Fatalf("Issue(%q): %v", id, err)
	}
	return k
}

func mustPairwise(t testing.TB, k *keygen.PartyKey, peer string) keygen.Pairwise {
	t.Helper()
	p, err := os1.Suite{}.Pairwise(k, peer)
	if err != nil {
		t.Fatalf("%s: Pairwise(%q): %v", k.Identity(), peer, err)
	}
	return p
}

// rowOf reads a party key's row back from its key file (DESIGN.md §4.1):
// the center hands keys out, it has no other view of them.
func rowOf(t testing.TB, k *keygen.PartyKey) []fp.Elt {
	t.Helper()
	data, err := k.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var w struct {
		Row string `json:"row"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		t.Fatal(err)
	}
	raw, err := wire.UnB64Len(w.Row, k.Params().K*fp.Size)
	if err != nil {
		t.Fatal(err)
	}
	row := make([]fp.Elt, k.Params().K)
	for i := range row {
		if row[i], err = field.Decode(raw[i*fp.Size : (i+1)*fp.Size]); err != nil {
			t.Fatal(err)
		}
	}
	return row
}

// --- GF(p) in math/big, independent of fp25519 -----------------------------

var (
	bigP = func() *big.Int {
		p := new(big.Int).Lsh(big.NewInt(1), 255)
		return p.Sub(p, big.NewInt(19))
	}()
	bigPm1 = new(big.Int).Sub(bigP, big.NewInt(1))
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

func ptr(e fp.Elt) *fp.Elt { return &e }

func eltHex(e fp.Elt) string {
	var b [fp.Size]byte
	field.Encode(b[:], &e)
	return hex.EncodeToString(b[:])
}
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

var (
	two256  = new(big.Int).Lsh(big.NewInt(1), 256)
	two255  = new(big.Int).Lsh(big.NewInt(1), 255)
	maxU256 = new(big.Int).Sub(two256, big.NewInt(1))
)

func modp(n *big.Int) *big.Int { return n.Mod(n, bigP) }

var fingerprintRE = regexp.MustCompile(`^[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{5}-[A-Z2-7]{5}$`)

// fastKDF lets this test's centers seal with FastKDF, as a test build of
// the binaries does (AllowFastKDF, KDFEnv=fast).
func fastKDF(t *testing.T) {
	t.Helper()
	t.Setenv(KDFEnv, "fast")
	AllowFastKDF = true
	t.Cleanup(func() { AllowFastKDF = false })
}
