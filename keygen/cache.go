package keygen

import (
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Cache holds the pairwise keys of one party with its recent peers, so a
// daemon derives each K once rather than per request. Safe for concurrent use.
type Cache struct {
	key    *PartyKey
	derive func(peer string) (Pairwise, error)
	lru    *lru.Cache[string, Pairwise]

	hits, misses atomic.Uint64
}

// NewCache bounds the cache to size peers (least recently used evicted
// first); derive computes K(key, peer) on a miss, under key's suite
// (suite.NewKeys is the usual way to build one).
func NewCache(key *PartyKey, size int, derive func(peer string) (Pairwise, error)) *Cache {
	if size < 1 {
		size = 1
	}
	c, err := lru.New[string, Pairwise](size)
	if err != nil {
		panic(err) // only for size ≤ 0, excluded above
	}
	return &Cache{key: key, derive: derive, lru: c}
}

// Key returns the party key the cache derives from.
func (c *Cache) Key() *PartyKey { return c.key }

// Identity is the cached party's identity.
func (c *Cache) Identity() string { return c.key.identity }

// Epoch is the cached party key's epoch ("" under a suite without epochs).
func (c *Cache) Epoch() string { return c.key.epoch }

// Params are the cached party's key center parameters.
func (c *Cache) Params() Params { return c.key.params }

// Pairwise returns K(self, peer), deriving it on a miss.
func (c *Cache) Pairwise(peer string) (Pairwise, error) {
	if p, ok := c.lru.Get(peer); ok {
		c.hits.Add(1)
		return p, nil
	}
	c.misses.Add(1)
	p, err := c.derive(peer)
	if err != nil {
		return p, err
	}
	c.lru.Add(peer, p)
	return p, nil
}

// Stats reports how many lookups found their key cached (hits) and how
// many derived it (misses), since the cache was made.
func (c *Cache) Stats() (hits, misses uint64) { return c.hits.Load(), c.misses.Load() }

// Len reports how many peers are cached.
func (c *Cache) Len() int { return c.lru.Len() }

// Purge drops every cached key.
func (c *Cache) Purge() { c.lru.Purge() }
