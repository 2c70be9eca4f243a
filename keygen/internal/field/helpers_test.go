package field

import (
	"math/big"
	"math/rand/v2"
)

// testRand is the deterministic source of every random choice in these
// tests, so a failure reproduces; vary the label per test. The seeds are
// those of keygen's tests, where these tests lived before.
func testRand(label string) *rand.Rand {
	var seed [32]byte
	copy(seed[:], "orderseal keygen tests: "+label)
	return rand.New(rand.NewChaCha8(seed))
}

// bigP is p = 2^255 − 19.
var bigP = func() *big.Int {
	p := new(big.Int).Lsh(big.NewInt(1), 255)
	return p.Sub(p, big.NewInt(19))
}()

func modp(n *big.Int) *big.Int { return n.Mod(n, bigP) }
