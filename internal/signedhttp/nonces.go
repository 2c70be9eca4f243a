package signedhttp

import (
	"orderseal/internal/signedhttp/nonce"
)

// NonceStore remembers the nonces of admitted requests until they expire,
// at most a quota per caller; see package nonce. A store in the daemon's
// database (noncesql) makes replay protection survive restarts and hold
// across every node of a role.
type NonceStore = nonce.Store

// DefaultMaxNonces is the per-caller quota NewMemoryNonces is usually given.
const DefaultMaxNonces = nonce.PersonQuota

// NewMemoryNonces returns an in-memory NonceStore holding at most perCaller
// live nonces for each caller: a caller at its quota is refused (429) until
// its own nonces expire, and no other caller is affected.
func NewMemoryNonces(perCaller int) NonceStore {
	return nonce.NewMemory(nonce.Fixed(max(1, perCaller)))
}
