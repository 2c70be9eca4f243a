//go:build nullrelay

package keygen

// sharedSecret in a null relay build (see order.NullRelay) skips Blom's
// derivation: every pair shares the all-zero secret, so the pairwise key
// is HKDF of the two identities alone. For benchmarks only.
func (k *PartyKey) sharedSecret(peer string) ([32]byte, error) {
	var s [32]byte
	if peer == k.identity {
		return s, ErrSameIdentity
	}
	if _, err := IdentityPoint(k.params.System, peer); err != nil {
		return s, err
	}
	return s, nil
}
