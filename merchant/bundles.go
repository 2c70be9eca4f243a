package merchant

import (
	"bytes"
	"sync"

	"orderseal/order"
)

// bundleCacheSize bounds the parsed bundles kept: about the orders in
// flight (received, not yet shipped) of a busy node, a few KiB each.
const bundleCacheSize = 4096

// bundleCache keeps the parsed bundles of the orders in flight, so the
// relay's jobs of one order (authorize, grant, book) do not parse the
// stored bundle again each (ParseBundle decodes and checks every section).
// An entry is used only for the very bytes it was parsed from: the store's
// bundle changes once the issuer has answered (retain), and the next job
// then parses the new one. Bundles handed out are shared and never
// modified. Safe for concurrent use.
type bundleCache struct {
	mu sync.Mutex
	m  map[string]parsedBundle
}

type parsedBundle struct {
	raw []byte
	b   *order.Bundle
}

// parse returns the bundle raw holds, the order id's cached one when it
// was parsed from the same bytes.
func (c *bundleCache) parse(id string, raw []byte) (*order.Bundle, error) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if ok && bytes.Equal(e.raw, raw) {
		return e.b, nil
	}
	b, err := order.ParseBundle(raw)
	if err != nil {
		return nil, err
	}
	c.put(id, raw, b)
	return b, nil
}

// put keeps b, parsed from raw, as id's bundle.
func (c *bundleCache) put(id string, raw []byte, b *order.Bundle) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]parsedBundle)
	}
	if _, ok := c.m[id]; !ok && len(c.m) >= bundleCacheSize {
		for k := range c.m { // any one: an order long done is as good as any
			delete(c.m, k)
			break
		}
	}
	c.m[id] = parsedBundle{raw: bytes.Clone(raw), b: b}
}
