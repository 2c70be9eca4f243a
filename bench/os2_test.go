package bench

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/cloudflare/circl/ecc/bls12381"

	"orderseal/keygen"
	"orderseal/keygen/center"
	"orderseal/order"
	"orderseal/suite"
	"orderseal/suite/os2"
)

// os2K is the k of the OS2 figures: the deployment's, not the test
// centers' (tstest/keys uses 16, where Blom costs nothing beside a pairing).
const os2K = 1024

// os2Epoch and os2Now: the benchmarks seal inside one month's epoch.
const os2Epoch = "2026-12"

var os2Now = time.Date(2026, time.December, 6, 10, 0, 0, 0, time.UTC)

// os2Fixture is an OS2 key center of k = os2K for one epoch, the parties of
// an order that ships to a vault token, their KEM keys and their signed
// directory entries.
type os2Fixture struct {
	params  keygen.Params
	alice   *keygen.PartyKey
	parties order.Parties
	keys    map[order.Role]*keygen.PartyKey
	kems    map[order.Role]*os2.KEMKey
	dir     []*keygen.DirectoryEntry
}

var (
	os2Once sync.Once
	os2Fix  *os2Fixture
	os2Err  error
)

// os2Center builds the fixture once per test binary: issuing at k=1024
// takes a moment per identity.
func os2Center(b *testing.B) *os2Fixture {
	b.Helper()
	os2Once.Do(func() { os2Fix, os2Err = newOS2Fixture() })
	if os2Err != nil {
		b.Fatal(os2Err)
	}
	return os2Fix
}

func newOS2Fixture() (*os2Fixture, error) {
	root, err := center.EpochMasterFromSeed(keygen.Params{Suite: os2.Name, System: [16]byte{0x05, 0x02}, K: os2K,
		Epochs: &keygen.Epochs{Period: keygen.PeriodMonth, Grace: keygen.DefaultGrace}}, [32]byte{0x05, 0x02})
	if err != nil {
		return nil, err
	}
	m, err := root.ForEpoch(os2Epoch)
	if err != nil {
		return nil, err
	}
	f := &os2Fixture{params: m.Params(),
		parties: order.Parties{Merchant: "merchant:shop.example", Issuer: "issuer:bank.example",
			Carrier: "carrier:parcel.example", Vault: "vault:vault.shop.example"},
		keys: map[order.Role]*keygen.PartyKey{}, kems: map[order.Role]*os2.KEMKey{}}
	if f.alice, err = m.Issue("cardholder:alice@example.org"); err != nil {
		return nil, err
	}
	_, end, err := f.params.Epochs.Span(os2Epoch)
	if err != nil {
		return nil, err
	}
	for r, id := range map[order.Role]string{order.RoleMerchant: f.parties.Merchant, order.RoleIssuer: f.parties.Issuer,
		order.RoleCarrier: f.parties.Carrier, order.RoleVault: f.parties.Vault} {
		if f.keys[r], err = m.Issue(id); err != nil {
			return nil, err
		}
		seed := sha256.Sum256([]byte("orderseal bench KEM key\x00" + id))
		if f.kems[r], err = os2.KEMKeyFromSeed(seed[:]); err != nil {
			return nil, err
		}
		e, err := root.SignEntry(id, os2Epoch, f.kems[r].PublicKey(), end.Add(f.params.Epochs.Grace))
		if err != nil {
			return nil, err
		}
		f.dir = append(f.dir, e)
	}
	return f, nil
}

// sokPairing is the baseline of the OS2 derivation: what SOK cannot do
// without, hash the peer to G2 and pair it with a fixed G1 point.
func sokPairing(b *testing.B, system [16]byte, peer func() string, epoch string) func() {
	var P bls12381.G1
	P.Hash([]byte("orderseal bench fixed point"), nil)
	return func() {
		Q := os2.H2(system, peer(), epoch)
		bls12381.Pair(&P, Q)
	}
}

// newPeers returns a source of merchant identities never used before, so
// that no derivation finds the peer's identity point in suite/os2's cache.
func newPeers(prefix string) func() string {
	n := 0
	return func() string {
		n++
		return fmt.Sprintf("merchant:%s-%d.example", prefix, n)
	}
}

// BenchmarkOS2Pairwise: K(A,B) under OS2 at k=1024, uncached (Blom row of
// the epoch, hash to G2, SOK pairing, HKDF), beside a bare SOK pairing (hash
// to G2 + pairing of fixed points). The cardholder derives toward the
// merchant, so it pairs its d1 with H2(merchant): each derivation and each
// baseline pairing is toward a merchant never met before, so neither finds
// the merchant's identity point in a cache. The key's decoded d1 and d2 are
// suite/os2's per-key cache after the first derivation, as in a process
// that loaded its key once.
func BenchmarkOS2Pairwise(b *testing.B) {
	f := os2Center(b)
	peers := newPeers("derive")
	paired(b, func() {
		if _, err := suite.Pairwise(f.alice, peers()); err != nil {
			b.Fatal(err)
		}
	}, sokPairing(b, f.params.System, newPeers("pair"), os2Epoch), "sok-pairing")
}

// ageHybrid is the post-quantum age baseline of an OS2 seal: the same
// plaintexts, each encrypted to its own party's ML-KEM-768+X25519 recipient.
type ageHybrid struct {
	sections   [][]byte
	recipients []*age.HybridRecipient
}

func newAgeHybrid(b *testing.B, bundle *order.Bundle, f *os2Fixture) *ageHybrid {
	b.Helper()
	h := &ageHybrid{}
	for _, r := range []order.Role{order.RoleMerchant, order.RoleIssuer, order.RoleCarrier, order.RoleVault} {
		sec, err := order.Open(bundle, suite.WithKEM(suite.NewKeys(f.keys[r], 4), f.kems[r]), r, order.OpenOptions{Now: os2Now})
		if err != nil {
			b.Fatal(err)
		}
		pt, err := json.Marshal(sec)
		if err != nil {
			b.Fatal(err)
		}
		id, err := age.GenerateHybridIdentity()
		if err != nil {
			b.Fatal(err)
		}
		h.sections = append(h.sections, pt)
		h.recipients = append(h.recipients, id.Recipient())
	}
	return h
}

func (h *ageHybrid) seal(b *testing.B) {
	for i, pt := range h.sections {
		var buf bytes.Buffer
		w, err := age.Encrypt(&buf, h.recipients[i])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(pt); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOS2SealVsAge: an order shipping to a vault token (four
// sections: merchant, issuer, carrier, vault) sealed under OS2, beside age
// encrypting the same four plaintexts each to its party's post-quantum
// (ML-KEM-768+X25519) recipient: four files, one per party, since one file
// to four recipients would let every party read every section. The seal
// verifies each recipient's directory entry (ML-DSA-65) on every call, as
// order.Seal does: nothing is sealed to an unverified key. "cached" takes
// the four pairwise keys from a warm cache; "uncached" derives them per
// seal (four SOK pairings; the four parties' identity points, public, stay
// in suite/os2's cache after the first seal).
func BenchmarkOS2SealVsAge(b *testing.B) {
	f := os2Center(b)
	data, err := os.ReadFile(filepath.Join("..", "order", "testdata", "order_token.json"))
	if err != nil {
		b.Fatal(err)
	}
	o, err := order.ParseOrder(data)
	if err != nil {
		b.Fatal(err)
	}
	opt := order.SealOptions{Now: os2Now, Directory: f.dir}
	bundle, err := order.Seal(o, suite.NewKeys(f.alice, 4), f.parties, opt)
	if err != nil {
		b.Fatal(err)
	}
	if len(bundle.Sections) != 4 {
		b.Fatalf("%d sections, want 4", len(bundle.Sections))
	}
	h := newAgeHybrid(b, bundle, f)
	base := func() { h.seal(b) }
	b.Run("cached", func(b *testing.B) {
		cache := suite.NewKeys(f.alice, 16)
		paired(b, func() {
			if _, err := order.Seal(o, cache, f.parties, opt); err != nil {
				b.Fatal(err)
			}
		}, base, "age-pq")
	})
	b.Run("uncached", func(b *testing.B) {
		paired(b, func() {
			if _, err := order.Seal(o, suite.NewKeys(f.alice, 4), f.parties, opt); err != nil {
				b.Fatal(err)
			}
		}, base, "age-pq")
	})
}
