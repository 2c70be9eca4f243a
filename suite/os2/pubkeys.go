package os2

import (
	"sync"

	"github.com/cloudflare/circl/ecc/bls12381"
	"github.com/cloudflare/circl/kem"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"orderseal/keygen"
)

// Parsing a public key expands its matrix from a seed: for the directory
// key that costs more than verifying a signature under it, and for an
// X-Wing key a fifth of an encapsulation. A sealer verifies the same
// entries and seals to the same keys order after order, so the parsed
// forms are kept by encoding. They are public, so sharing them between
// callers leaks nothing; a failed parse is never kept.
var (
	directoryKeys = parsedKeys[[keygen.DirectoryKeySize]byte, *mldsa65.PublicKey]{max: 8}
	kemKeys       = parsedKeys[[KEMPublicKey]byte, kem.PublicKey]{max: 256}
	// identityPointsG2 holds peers' H2 points by system || msg(id, epoch),
	// never mutated once made (see peerH2).
	identityPointsG2 = parsedKeys[string, *bls12381.G2]{max: 256}
)

// parsedKeys holds up to max public keys parsed from their encodings,
// dropping an arbitrary one when full.
type parsedKeys[E comparable, K any] struct {
	max int
	mu  sync.Mutex
	m   map[E]K
}

// get returns enc's parsed key, calling parse on a miss.
func (c *parsedKeys[E, K]) get(enc E, parse func() (K, error)) (K, error) {
	c.mu.Lock()
	k, ok := c.m[enc]
	c.mu.Unlock()
	if ok {
		return k, nil
	}
	k, err := parse()
	if err != nil {
		return k, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[E]K, c.max)
	}
	if len(c.m) >= c.max {
		for e := range c.m {
			delete(c.m, e)
			break
		}
	}
	c.m[enc] = k
	return k, nil
}
