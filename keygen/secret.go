//go:build !nullrelay

package keygen

// sharedSecret is the Blom secret s(self, peer) the pairwise key is derived from.
func (k *PartyKey) sharedSecret(peer string) ([32]byte, error) { return k.rawSecret(peer) }
