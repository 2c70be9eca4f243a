package httpsig

import (
	"fmt"
	"sync/atomic"
	"testing"

	"orderseal/keygen"
)

// countingKeyring derives a distinct pairwise key per peer and counts the
// derivations.
type countingKeyring struct{ n atomic.Int32 }

func (k *countingKeyring) Identity() string      { return "merchant:shop.example" }
func (k *countingKeyring) Params() keygen.Params { return keygen.Params{} }
func (k *countingKeyring) Epoch() string         { return "" }
func (k *countingKeyring) Pairwise(peer string) (keygen.Pairwise, error) {
	k.n.Add(1)
	return keygen.DerivePairwise([16]byte{1}, []byte("ikm"), "orderseal-test", k.Identity(), peer)
}

// TestKeyCache: the cached sub-keys are DeriveKeys' own, derived once per
// scope and peer, and the cache stays bounded.
func TestKeyCache(t *testing.T) {
	kr := &countingKeyring{}
	var c KeyCache
	for range 3 {
		for _, scope := range []string{"", "epoch:2026"} {
			got, err := c.Keys(kr, scope, "issuer:bank.example")
			if err != nil {
				t.Fatal(err)
			}
			pw, _ := kr.Pairwise("issuer:bank.example")
			kr.n.Add(-1)
			want := DeriveKeys(&pw)
			if got.KeyID() != want.KeyID() || got.Sign([]byte("m")) != want.Sign([]byte("m")) {
				t.Fatal("cached sub-keys differ from DeriveKeys'")
			}
		}
	}
	if n := kr.n.Load(); n != 2 {
		t.Fatalf("%d derivations for 2 scopes × 1 peer asked 3 times each", n)
	}
	for i := range maxCachedKeys + 10 {
		if _, err := c.Keys(kr, "", fmt.Sprintf("cardholder:p%d@example.org", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.m); n > maxCachedKeys {
		t.Fatalf("%d entries kept, bound %d", n, maxCachedKeys)
	}
	c.Destroy()
	if len(c.m) != 0 {
		t.Fatal("Destroy left entries")
	}
}
