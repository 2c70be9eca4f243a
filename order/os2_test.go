package order

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"orderseal/keygen"
	"orderseal/suite/os2"
	"orderseal/tstest/keys"
)

// os2Now is the clock of the OS2 tests: inside keys.Epoch.
var os2Now = time.Date(2026, time.December, 6, 10, 0, 0, 0, time.UTC)

// sealOS2 seals the example order under OS2 from alice to the three parties.
func sealOS2(t testing.TB, opt SealOptions) *Bundle {
	t.Helper()
	kc := keys.OS2(t)
	if opt.Now.IsZero() {
		opt.Now = os2Now
	}
	if opt.Directory == nil {
		opt.Directory = kc.Directory(t, keys.Shop, keys.Bank, keys.Parcel)
	}
	b, err := Seal(loadOrder(t, "order.json"), kc.Keys(t, keys.Alice), threeParties, opt)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openOS2(b *Bundle, k Keyring, r Role) (*Section, error) {
	return Open(b, k, r, OpenOptions{Now: os2Now.Add(time.Minute)})
}

// shortEntry is id's entry of the center's epoch, valid only until notAfter.
func shortEntry(t testing.TB, kc *keys.KeyCenter, id string, notAfter time.Time) *keygen.DirectoryEntry {
	t.Helper()
	e, err := kc.Root().SignEntry(id, keys.Epoch, kc.KEMKey(t, id).PublicKey(), notAfter)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Every recipient opens its own OS2 section, through the wire form and
// after the merchant relays only that section.
func TestOS2SealOpen(t *testing.T) {
	kc := keys.OS2(t)
	b := sealOS2(t, SealOptions{})
	if b.Suite != os2.Name || b.Epoch != keys.Epoch {
		t.Fatalf("suite %q epoch %q", b.Suite, b.Epoch)
	}
	raw, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseBundle(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		role Role
		id   string
	}{{RoleMerchant, keys.Shop}, {RoleIssuer, keys.Bank}, {RoleCarrier, keys.Parcel}} {
		relayed, err := parsed.ForRole(c.role)
		if err != nil {
			t.Fatal(err)
		}
		s, err := openOS2(relayed, kc.EpochKeys(t, c.id), c.role)
		if err != nil {
			t.Fatalf("%s opens: %v", c.role, err)
		}
		if s.Role != c.role {
			t.Fatalf("opened %s as %s", s.Role, c.role)
		}
	}
}

// What OS2 refuses, each with its own error: a keyring without the
// epoch's KEM secret, a key of another epoch, a KEM ciphertext of the
// wrong length or swapped, directory entries with a bad signature, for
// another identity or epoch, or past not_after.
func TestOS2Refusals(t *testing.T) {
	kc := keys.OS2(t)
	next := keys.OS2Center(t, "2027-01")
	b := sealOS2(t, SealOptions{})
	issuer := kc.EpochKeys(t, keys.Bank)

	if _, err := openOS2(b, kc.Keys(t, keys.Bank), RoleIssuer); !errors.Is(err, ErrNoKEM) {
		t.Errorf("open without the KEM secret: %v, want ErrNoKEM", err)
	}
	if _, err := openOS2(b, next.EpochKeys(t, keys.Bank), RoleIssuer); !errors.Is(err, ErrEpoch) {
		t.Errorf("open with next epoch's key: %v, want ErrEpoch", err)
	}
	if _, err := openOS2(b, vectorKeys(t).Keys(t, keys.Bank), RoleIssuer); !errors.Is(err, ErrSystem) {
		t.Errorf("open with an OS1 key: %v, want ErrSystem", err)
	}

	tamper := []struct {
		name string
		edit func(b *Bundle)
		want error
	}{
		{"kem too short", func(b *Bundle) { s := b.Sections[RoleIssuer]; s.KEM = s.KEM[:len(s.KEM)-1]; b.Sections[RoleIssuer] = s }, ErrKEM},
		{"kem flipped", func(b *Bundle) { s := b.Sections[RoleIssuer]; s.KEM[7] ^= 1; b.Sections[RoleIssuer] = s }, ErrKEM},
		{"kem swapped", func(b *Bundle) {
			s, m := b.Sections[RoleIssuer], b.Sections[RoleMerchant]
			s.KEM, m.KEM = m.KEM, s.KEM
			b.Sections[RoleIssuer], b.Sections[RoleMerchant] = s, m
		}, ErrKEM},
		{"kem hash dropped", func(b *Bundle) { delete(b.KEMs, RoleCarrier) }, ErrKEM},
		{"no epoch", func(b *Bundle) { b.Epoch = "" }, ErrEpoch},
		{"epoch changed", func(b *Bundle) { b.Epoch = "2027-01" }, ErrEpoch},
		{"kem and hash replaced", func(b *Bundle) {
			s := b.Sections[RoleIssuer]
			s.KEM = bytes.Clone(s.KEM)
			s.KEM[0] ^= 1
			b.Sections[RoleIssuer] = s
			b.KEMs[RoleIssuer] = os2.EncapHash(s.KEM)
		}, ErrAuth},
	}
	for _, c := range tamper {
		t.Run(c.name, func(t *testing.T) {
			b := sealOS2(t, SealOptions{})
			c.edit(b)
			if _, err := openOS2(b, issuer, RoleIssuer); !errors.Is(err, c.want) {
				t.Errorf("%v, want %v", err, c.want)
			}
		})
	}

	dir := func(edit func(e []*keygen.DirectoryEntry) []*keygen.DirectoryEntry) []*keygen.DirectoryEntry {
		return edit(kc.Directory(t, keys.Shop, keys.Bank, keys.Parcel))
	}
	entries := []struct {
		name string
		dir  []*keygen.DirectoryEntry
		now  time.Time
		want error
	}{
		{"missing", dir(func(e []*keygen.DirectoryEntry) []*keygen.DirectoryEntry { return e[:2] }), os2Now, ErrEntryMissing},
		{"another identity's genuine entry", dir(func(e []*keygen.DirectoryEntry) []*keygen.DirectoryEntry {
			e[1] = kc.Entry(t, keys.OtherCarrier)
			return e
		}), os2Now, ErrEntryMissing},
		{"bad signature", dir(func(e []*keygen.DirectoryEntry) []*keygen.DirectoryEntry { e[1].Signature[10] ^= 1; return e }), os2Now, os2.ErrEntrySig},
		{"key swapped", dir(func(e []*keygen.DirectoryEntry) []*keygen.DirectoryEntry {
			e[1].PublicKey = e[0].PublicKey
			return e
		}), os2Now, os2.ErrEntrySig},
		{"another identity's entry", dir(func(e []*keygen.DirectoryEntry) []*keygen.DirectoryEntry {
			e[1] = kc.Entry(t, keys.OtherCarrier)
			e[1].Identity = keys.Bank
			return e
		}), os2Now, os2.ErrEntrySig},
		{"another epoch", append(kc.Directory(t, keys.Shop, keys.Parcel), next.Entry(t, keys.Bank)), os2Now, ErrEntryEpoch},
		{"past not_after", append(kc.Directory(t, keys.Shop, keys.Parcel), shortEntry(t, kc, keys.Bank, time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC))),
			time.Date(2026, 12, 20, 0, 0, 1, 0, time.UTC), os2.ErrEntryOver},
	}
	for _, c := range entries {
		t.Run(c.name, func(t *testing.T) {
			_, err := Seal(loadOrder(t, "order.json"), kc.Keys(t, keys.Alice), threeParties,
				SealOptions{Now: c.now, Directory: c.dir, Lifetime: time.Hour})
			if !errors.Is(err, ErrDirectory) || (c.want != nil && !errors.Is(err, c.want)) {
				t.Errorf("%v, want ErrDirectory (%v)", err, c.want)
			}
		})
	}
}

// Every OS2 refusal maps to its own stable code, and no code is shared.
func TestSuiteCodes(t *testing.T) {
	seen := map[string]error{}
	for _, c := range suiteCodes {
		if prev, dup := seen[c.code]; dup {
			t.Errorf("code %q for both %v and %v", c.code, prev, c.err)
		}
		seen[c.code] = c.err
		if got, ok := SuiteCode(fmt.Errorf("wrapped: %w", c.err)); !ok || got != c.code {
			t.Errorf("SuiteCode(%v) = %q, %v; want %q", c.err, got, ok, c.code)
		}
	}
	for _, err := range []error{ErrAuth, ErrCommitment, ErrMalformed, ErrExpired, ErrSystem} {
		if code, ok := SuiteCode(err); ok {
			t.Errorf("%v is not a suite refusal, got code %q", err, code)
		}
	}
}
