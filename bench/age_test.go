package bench

import (
	"bytes"
	"encoding/json"
	"io"
	"testing"
	"time"

	"filippo.io/age"

	"orderseal/keygen"
	"orderseal/order"
	"orderseal/suite"
)

// ageFixture is the age baseline of DESIGN.md's three sections: the same
// plaintexts, each encrypted to its own party's X25519 recipient, as a
// sender without predistributed keys would do it.
type ageFixture struct {
	sections   [][]byte
	recipients []*age.X25519Recipient
	identities []*age.X25519Identity
}

func newAgeFixture(b *testing.B, bundle *order.Bundle, keys map[order.Role]*keygen.PartyKey) *ageFixture {
	b.Helper()
	f := &ageFixture{}
	for _, r := range []order.Role{order.RoleMerchant, order.RoleIssuer, order.RoleCarrier} {
		sec, err := order.Open(bundle, suite.NewKeys(keys[r], 4), r, order.OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		pt, err := json.Marshal(sec)
		if err != nil {
			b.Fatal(err)
		}
		id, err := age.GenerateX25519Identity()
		if err != nil {
			b.Fatal(err)
		}
		f.sections = append(f.sections, pt)
		f.identities = append(f.identities, id)
		f.recipients = append(f.recipients, id.Recipient())
	}
	return f
}

// seal encrypts every section to its recipient.
func (f *ageFixture) seal(b *testing.B) [][]byte {
	out := make([][]byte, len(f.sections))
	for i, pt := range f.sections {
		var buf bytes.Buffer
		w, err := age.Encrypt(&buf, f.recipients[i])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(pt); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		out[i] = buf.Bytes()
	}
	return out
}

// BenchmarkSealVsAge: a three-section order sealed by orderseal (pairwise
// keys from a warm cache, and derived per seal) beside age encrypting the
// same three plaintexts to three X25519 recipients.
func BenchmarkSealVsAge(b *testing.B) {
	o, alice, parties, keys := loadSealFixture(b, keygen.DefaultK)
	now := time.Now()
	bundle, err := order.Seal(o, suite.NewKeys(alice, 4), parties, order.SealOptions{Now: now})
	if err != nil {
		b.Fatal(err)
	}
	f := newAgeFixture(b, bundle, keys)
	base := func() { f.seal(b) }
	b.Run("cached", func(b *testing.B) {
		cache := suite.NewKeys(alice, 16)
		paired(b, func() {
			if _, err := order.Seal(o, cache, parties, order.SealOptions{Now: now}); err != nil {
				b.Fatal(err)
			}
		}, base, "age")
	})
	b.Run("uncached", func(b *testing.B) {
		paired(b, func() {
			if _, err := order.Seal(o, suite.NewKeys(alice, 4), parties, order.SealOptions{Now: now}); err != nil {
				b.Fatal(err)
			}
		}, base, "age")
	})
}

// BenchmarkOpenVsAge: the issuer opens its section, beside age decrypting
// the issuer's section with its X25519 identity.
func BenchmarkOpenVsAge(b *testing.B) {
	o, alice, parties, keys := loadSealFixture(b, keygen.DefaultK)
	bundle, err := order.Seal(o, suite.NewKeys(alice, 4), parties, order.SealOptions{})
	if err != nil {
		b.Fatal(err)
	}
	f := newAgeFixture(b, bundle, keys)
	sealed := f.seal(b)
	base := func() {
		r, err := age.Decrypt(bytes.NewReader(sealed[1]), f.identities[1])
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("cached", func(b *testing.B) {
		cache := suite.NewKeys(keys[order.RoleIssuer], 16)
		paired(b, func() {
			if _, err := order.Open(bundle, cache, order.RoleIssuer, order.OpenOptions{}); err != nil {
				b.Fatal(err)
			}
		}, base, "age")
	})
	b.Run("uncached", func(b *testing.B) {
		paired(b, func() {
			if _, err := order.Open(bundle, suite.NewKeys(keys[order.RoleIssuer], 4), order.RoleIssuer, order.OpenOptions{}); err != nil {
				b.Fatal(err)
			}
		}, base, "age")
	})
}
