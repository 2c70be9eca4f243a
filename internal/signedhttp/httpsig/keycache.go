package httpsig

import (
	"sync"

	"orderseal/keygen"
)

// maxCachedKeys bounds the sub-keys a KeyCache keeps: more peers than a
// party talks to at once; past it one entry goes for each new one.
const maxCachedKeys = 4096

// KeyCache keeps the HTTP sub-keys (DeriveKeys) of the peers a party talks
// to, so a request costs no key derivation on either side: the pairwise key
// comes from the keyring's own cache, and its two sub-keys are expanded once
// per peer instead of once per request. Entries are zeroed when dropped.
// The zero value is ready; safe for concurrent use.
type KeyCache struct {
	mu sync.Mutex
	m  map[string]*Keys
}

// Keys returns the sub-keys of K(self, peer) from kr, the keyring scope
// names (an epoch, "" for a party's one keyring): the same scope and peer
// must always mean the same keyring.
func (c *KeyCache) Keys(kr keygen.Keyring, scope, peer string) (Keys, error) {
	key := scope + "\x00" + peer
	c.mu.Lock()
	k, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return *k, nil
	}
	pw, err := kr.Pairwise(peer)
	if err != nil {
		return Keys{}, err
	}
	fresh := DeriveKeys(&pw)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*Keys)
	}
	if old, ok := c.m[key]; ok { // derived meanwhile by another request
		return *old, nil
	}
	if len(c.m) >= maxCachedKeys {
		for k, v := range c.m { // any one
			v.Destroy()
			delete(c.m, k)
			break
		}
	}
	c.m[key] = &fresh
	return fresh, nil
}

// Destroy zeroes and drops every entry.
func (c *KeyCache) Destroy() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range c.m {
		v.Destroy()
		delete(c.m, k)
	}
}
