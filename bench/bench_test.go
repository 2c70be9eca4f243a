// Package bench holds orderseal's benchmarks. Every figure that matters is
// reported as a ratio against a baseline measured in the same benchmark, so
// it holds on a shared, noisy machine: run `make bench`.
package bench

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"orderseal/keygen"
	"orderseal/keygen/center"
	"orderseal/order"
	"orderseal/suite"
	"orderseal/tstest/keys"
)

// x25519 is the baseline: one X25519 shared secret, as crypto/ecdh computes it.
func x25519(b *testing.B) func() {
	a, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	peer, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	pub := peer.PublicKey()
	return func() {
		if _, err := a.ECDH(pub); err != nil {
			b.Fatal(err)
		}
	}
}

// paired runs op and base alternately in blocks, so drift in machine speed
// hits both, and reports op's ns/op plus the ratio of the two per-op costs.
// A base block runs only while base has had no more time than op, so a
// baseline 20× slower than op does not make the run 20× longer.
func paired(b *testing.B, op, base func(), baseName string) {
	const block = 16
	var tOp, tBase time.Duration
	nBase := 0
	b.ResetTimer()
	for done := 0; done < b.N; done += block {
		n := min(block, b.N-done)
		t0 := time.Now()
		for i := 0; i < n; i++ {
			op()
		}
		t1 := time.Now()
		tOp += t1.Sub(t0)
		if nBase > 0 && tBase > tOp {
			continue
		}
		b.StopTimer()
		for i := 0; i < n; i++ {
			base()
		}
		tBase += time.Since(t1)
		nBase += n
		b.StartTimer()
	}
	perBase := float64(tBase.Nanoseconds()) / float64(nBase)
	b.ReportMetric(perBase, baseName+"-ns/op")
	b.ReportMetric(float64(tOp.Nanoseconds())/float64(b.N)/perBase, "ratio-vs-"+baseName)
}

// partyKey is id's key from a test key center of k (tstest/keys): the
// benchmarks measure the k a deployment would use.
func partyKey(b *testing.B, k int, id string) *keygen.PartyKey {
	b.Helper()
	return keys.Center(b, [32]byte{byte(k)}, [16]byte{1}, k).Party(b, id)
}

// BenchmarkDerive: K(A,B) from A's row and B's identity, beside X25519.
func BenchmarkDerive(b *testing.B) {
	for _, k := range []int{256, 1024, 4096} {
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
			key := partyKey(b, k, "merchant:shop.example")
			peer := "cardholder:alice@example.org"
			paired(b, func() {
				if _, err := suite.Pairwise(key, peer); err != nil {
					b.Fatal(err)
				}
			}, x25519(b), "x25519")
		})
	}
}

// BenchmarkX25519 is the baseline alone, for benchstat comparisons.
func BenchmarkX25519(b *testing.B) {
	f := x25519(b)
	for b.Loop() {
		f()
	}
}

func loadSealFixture(b *testing.B, k int) (*order.Order, *keygen.PartyKey, order.Parties, map[order.Role]*keygen.PartyKey) {
	data, err := os.ReadFile(filepath.Join("..", "order", "testdata", "order.json"))
	if err != nil {
		b.Fatal(err)
	}
	o, err := order.ParseOrder(data)
	if err != nil {
		b.Fatal(err)
	}
	p := order.Parties{Merchant: "merchant:shop.example", Issuer: "issuer:bank.example", Carrier: "carrier:parcel.example"}
	byRole := map[order.Role]*keygen.PartyKey{
		order.RoleMerchant: partyKey(b, k, p.Merchant),
		order.RoleIssuer:   partyKey(b, k, p.Issuer),
		order.RoleCarrier:  partyKey(b, k, p.Carrier),
	}
	return o, partyKey(b, k, "cardholder:alice@example.org"), p, byRole
}

// BenchmarkSeal: a three-section order at the default k, pairwise keys
// derived per seal (uncached) and from a warm cache, beside X25519.
func BenchmarkSeal(b *testing.B) {
	o, alice, parties, _ := loadSealFixture(b, keygen.DefaultK)
	now := time.Now()
	b.Run("uncached", func(b *testing.B) {
		paired(b, func() {
			if _, err := order.Seal(o, suite.NewKeys(alice, 4), parties, order.SealOptions{Now: now}); err != nil {
				b.Fatal(err)
			}
		}, x25519(b), "x25519")
	})
	b.Run("cached", func(b *testing.B) {
		cache := suite.NewKeys(alice, 16)
		paired(b, func() {
			if _, err := order.Seal(o, cache, parties, order.SealOptions{Now: now}); err != nil {
				b.Fatal(err)
			}
		}, x25519(b), "x25519")
	})
}

// BenchmarkOpen: the issuer opens its section of a three-section order.
func BenchmarkOpen(b *testing.B) {
	o, alice, parties, keys := loadSealFixture(b, keygen.DefaultK)
	bundle, err := order.Seal(o, suite.NewKeys(alice, 4), parties, order.SealOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("uncached", func(b *testing.B) {
		paired(b, func() {
			if _, err := order.Open(bundle, suite.NewKeys(keys[order.RoleIssuer], 4), order.RoleIssuer, order.OpenOptions{}); err != nil {
				b.Fatal(err)
			}
		}, x25519(b), "x25519")
	})
	b.Run("cached", func(b *testing.B) {
		cache := suite.NewKeys(keys[order.RoleIssuer], 16)
		paired(b, func() {
			if _, err := order.Open(bundle, cache, order.RoleIssuer, order.OpenOptions{}); err != nil {
				b.Fatal(err)
			}
		}, x25519(b), "x25519")
	})
}

// BenchmarkIssue: party keys at k=1024 the way `keygen issue` makes a
// batch (Master.IssueMany on groups of 64 identities, which share the
// work), beside the per-identity path (Master.Issue) measured in the same
// loop, one identity after each group. ns/op is per identity, arithmetic only
// (no key files); ids/s is one core's rate; s/100k-ids projects the batch
// of 100 000 identities on GOMAXPROCS cores, as the CLI runs one group per
// core.
func BenchmarkIssue(b *testing.B) {
	benchIssue(b, keys.Center(b, [32]byte{2}, [16]byte{2}, keygen.DefaultK).Master(), "cardholder:u")
}

// benchIssue times m.IssueMany on groups of 64 fresh identities named
// prefix+N, with one m.Issue after each group as the baseline.
func benchIssue(b *testing.B, m *center.Master, prefix string) {
	next := 0
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%d", prefix, next)
			next++
		}
		return out
	}
	// Expand the master and build the batch plan outside the timing.
	if _, err := m.IssueMany(ids(1)); err != nil {
		b.Fatal(err)
	}
	const group = 64
	var tOp, tBase time.Duration
	nBase := 0
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(group, b.N-done)
		batch := ids(n)
		t0 := time.Now()
		keys, err := m.IssueMany(batch)
		if err != nil {
			b.Fatal(err)
		}
		tOp += time.Since(t0)
		for _, k := range keys {
			k.Destroy()
		}
		done += n
		b.StopTimer()
		t1 := time.Now()
		k, err := m.Issue(ids(1)[0])
		if err != nil {
			b.Fatal(err)
		}
		tBase += time.Since(t1)
		k.Destroy()
		nBase++
		b.StartTimer()
	}
	perOp := float64(tOp.Nanoseconds()) / float64(b.N)
	perBase := float64(tBase.Nanoseconds()) / float64(nBase)
	b.ReportMetric(perBase, "naive-ns/op")
	b.ReportMetric(perOp/perBase, "ratio-vs-naive")
	b.ReportMetric(1e9/perOp, "ids/s")
	b.ReportMetric(1e5*perOp/1e9/float64(runtime.GOMAXPROCS(0)), "s/100k-ids")
}
