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
// An entry is used only for the very bytes it was parsed from (parse), or
// for the version of the stored bundle it is (current): the store's bundle
// changes once, when the issuer has answered (retain), and the next job
// then parses the new one. Bundles handed out are shared and never
// modified. Safe for concurrent use.
type bundleCache struct {
	mu sync.Mutex
	m  map[string]parsedBundle
}

type parsedBundle struct {
	raw []byte
	b   *order.Bundle
	// retained: b is the bundle the store keeps once the issuer has
	// answered (store.Order.IssuerSectionHash set), not the one received.
	retained bool
	// dest is the destination country intake read from the merchant
	// section (Server.destination), kept for the booking so that it does
	// not open the section again; known tells an empty one from none kept.
	dest  string
	known bool
}

// current returns id's cached bundle when it is the version the store
// holds (retained: its IssuerSectionHash is set).
func (c *bundleCache) current(id string, retained bool) (*order.Bundle, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || e.retained != retained {
		return nil, false
	}
	return e.b, true
}

// parse returns the bundle raw holds (retained: the store's kept one), the
// order id's cached one when it was parsed from the same bytes.
func (c *bundleCache) parse(id string, raw []byte, retained bool) (*order.Bundle, error) {
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
	c.put(id, raw, b, retained)
	return b, nil
}

// put keeps b, parsed from raw, as id's bundle (retained: the store's kept one).
func (c *bundleCache) put(id string, raw []byte, b *order.Bundle, retained bool) {
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
	e := parsedBundle{raw: bytes.Clone(raw), b: b, retained: retained}
	if old, ok := c.m[id]; ok {
		e.dest, e.known = old.dest, old.known // the kept bundle's section is the same
	}
	c.m[id] = e
}

// setDest keeps the destination country of id's cached bundle.
func (c *bundleCache) setDest(id, dest string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[id]; ok {
		e.dest, e.known = dest, true
		c.m[id] = e
	}
}

// dest returns the destination country kept for id's bundle, if any.
func (c *bundleCache) dest(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	return e.dest, ok && e.known
}
