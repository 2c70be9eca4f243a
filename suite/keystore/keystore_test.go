package keystore_test

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"orderseal/keygen"
	"orderseal/order"
	"orderseal/suite"
	"orderseal/suite/keystore"
	"orderseal/tstest/keys"
)

// enrol makes a keystore for id in dir for each epoch: the center's key,
// a fresh KEM pair, the center's signature on it, installed.
func enrol(t *testing.T, dir, id string, epochs ...string) {
	t.Helper()
	for _, e := range epochs {
		kc := keys.OS2Center(t, e)
		reqPath, err := keystore.NewEpoch(dir, kc.Party(t, id), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(reqPath)
		if err != nil {
			t.Fatal(err)
		}
		req, pk, err := keystore.ParseRequest(data)
		if err != nil {
			t.Fatal(err)
		}
		_, end, _ := kc.Params().Epochs.Span(e)
		entry, err := kc.Root().SignEntry(req.Identity, req.Epoch, pk, end.Add(keygen.DefaultGrace))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := entry.MarshalJSON()
		if _, err := keystore.InstallEntry(dir, raw, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
}

// sealFor seals alice's example order in epoch to the three parties,
// using the entries the parties' keystores hold.
func sealFor(t *testing.T, epoch string, now time.Time, stores map[string]*keystore.Keystore) *order.Bundle {
	t.Helper()
	kc := keys.OS2Center(t, epoch)
	var dir []*keygen.DirectoryEntry
	for _, s := range stores {
		e, ok := s.Entry(epoch)
		if !ok {
			t.Fatalf("%s has no entry of %s", s.Identity(), epoch)
		}
		dir = append(dir, e)
	}
	data, err := os.ReadFile(filepath.Join("..", "..", "order", "testdata", "order.json"))
	if err != nil {
		t.Fatal(err)
	}
	o, err := order.ParseOrder(data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := order.Seal(o, kc.Keys(t, keys.Alice), order.Parties{Merchant: keys.Shop, Issuer: keys.Bank, Carrier: keys.Parcel},
		order.SealOptions{Now: now, Directory: dir})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeystoreEpochs(t *testing.T) {
	dir := t.TempDir()
	enrol(t, dir, keys.Bank, "2026-11", "2026-12", "2027-01")
	dec := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC) // November's key is in its grace

	s, err := keystore.Open(dir, keygen.RoleIssuer, dec)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The current epoch (December) and the one before; January is not
	// current yet and is kept as the newest.
	if got := s.Current(dec).Epoch(); got != "2026-12" {
		t.Errorf("current epoch %s", got)
	}
	if got := s.Loaded(); len(got) != 3 || got[0] != "2026-11" {
		t.Errorf("epochs %v", got)
	}
	// On January 5th November's key is over (grace is 7 days) and is not
	// loaded; December's, the previous epoch, is in its grace.
	jan := time.Date(2027, 1, 5, 0, 0, 0, 0, time.UTC)
	s2, err := keystore.Open(dir, keygen.RoleIssuer, jan)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := s2.Loaded(); len(got) != 2 || got[0] != "2026-12" || s2.Current(jan).Epoch() != "2027-01" {
		t.Errorf("epochs on Jan 5: %v", got)
	}
	if _, err := s2.Keyring("2026-11"); !errors.Is(err, keystore.ErrNoEpoch) {
		t.Errorf("November on Jan 5: %v", err)
	}
	// Another role's keystore is refused.
	if _, err := keystore.Open(dir, keygen.RoleMerchant, dec); !errors.Is(err, keystore.ErrNoKeys) {
		t.Errorf("open as a merchant: %v", err)
	}
	// A second KEM pair for one epoch is refused.
	if _, err := keystore.NewEpoch(dir, keys.OS2Center(t, "2026-12").Party(t, keys.Bank), rand.Reader); !errors.Is(err, keystore.ErrExists) {
		t.Errorf("second KEM pair: %v", err)
	}
	// An entry certifying someone else's key is refused.
	other := keys.OS2Center(t, "2026-12").Entry(t, keys.Bank) // the fixture's KEM key, not the keystore's
	raw, _ := other.MarshalJSON()
	if _, err := keystore.InstallEntry(dir, raw, dec); !errors.Is(err, keystore.ErrEntry) {
		t.Errorf("entry for another KEM key: %v", err)
	}
}

// A bundle sealed in epoch E opens after E's grace only while the KEM
// secret exists; after Prune it does not, even with the key center's
// master at hand to rebuild the party key.
func TestPruneForwardSecrecy(t *testing.T) {
	stores := map[string]*keystore.Keystore{}
	dirs := map[string]string{}
	dec := time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC)
	for _, id := range []string{keys.Shop, keys.Bank, keys.Parcel} {
		dirs[id] = t.TempDir()
		enrol(t, dirs[id], id, "2026-12")
		s, err := keystore.Open(dirs[id], "", dec)
		if err != nil {
			t.Fatal(err)
		}
		stores[id] = s
	}
	b := sealFor(t, "2026-12", dec, stores)
	issuer, err := stores[keys.Bank].Keyring("2026-12")
	if err != nil {
		t.Fatal(err)
	}
	opened := func(kr order.Keyring) error {
		_, err := order.Open(b, kr, order.RoleIssuer, order.OpenOptions{Now: dec.Add(time.Hour)})
		return err
	}
	if err := opened(issuer); err != nil {
		t.Fatalf("issuer opens in December: %v", err)
	}
	// After grace the keystore no longer loads the key (its epoch is over)...
	late := time.Date(2027, 1, 20, 0, 0, 0, 0, time.UTC)
	if _, err := keystore.Open(dirs[keys.Bank], "", late); !errors.Is(err, keystore.ErrNoKeys) || !errors.Is(err, keygen.ErrEpochOver) {
		t.Errorf("open after grace: %v", err)
	}
	// ...but with the master at hand (the key center re-issues the party
	// key) the section still opens while the KEM secret exists.
	master := keys.OS2Center(t, "2026-12")
	rebuilt := func(kem suite.Decapsulator) order.Keyring {
		return suite.WithKEM(suite.NewKeys(master.Party(t, keys.Bank), 4), kem)
	}
	if err := opened(rebuilt(issuer)); err != nil {
		t.Fatalf("master-rebuilt key with the KEM secret: %v", err)
	}
	// Before grace is over Prune keeps the secret.
	if pruned, err := keystore.Prune(dirs[keys.Bank], dec); err != nil || len(pruned) != 0 {
		t.Fatalf("prune in December: %v %v", pruned, err)
	}
	pruned, err := keystore.Prune(dirs[keys.Bank], late)
	if err != nil || len(pruned) != 1 || pruned[0] != "2026-12" {
		t.Fatalf("prune after grace: %v %v", pruned, err)
	}
	if _, err := os.Stat(filepath.Join(dirs[keys.Bank], "2026-12", keystore.KEMKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("KEM key file still there: %v", err)
	}
	for _, s := range stores {
		s.Close() // the loaded copies go too
	}
	// Now the master-rebuilt party key alone cannot open it; a keystore
	// opened at the epoch (clock turned back) has no KEM secret either.
	if err := opened(rebuilt(nil)); !errors.Is(err, order.ErrNoKEM) {
		t.Errorf("after prune, master-rebuilt key: %v, want ErrNoKEM", err)
	}
	back, err := keystore.Open(dirs[keys.Bank], "", dec)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	kr, _ := back.Keyring("2026-12")
	if err := opened(kr); !errors.Is(err, order.ErrNoKEM) {
		t.Errorf("after prune, keystore: %v, want ErrNoKEM", err)
	}
	// And the fixture's KEM key (another pair) does not stand in for it.
	if err := opened(rebuilt(master.KEMKey(t, keys.Bank))); !errors.Is(err, order.ErrAuth) {
		t.Errorf("another KEM key: %v, want ErrAuth", err)
	}
}

// OS1 opens beside an OS2 keystore only with a legacy key and until its
// date; without it an OS1 bundle is refused with its own error.
func TestAcceptLegacy(t *testing.T) {
	dir := t.TempDir()
	enrol(t, dir, keys.Bank, "2026-12")
	dec := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	data, err := os.ReadFile(filepath.Join("..", "..", "order", "testdata", "order.json"))
	if err != nil {
		t.Fatal(err)
	}
	o, err := order.ParseOrder(data)
	if err != nil {
		t.Fatal(err)
	}
	// An OS1 bundle, sealed with the default test center's keys.
	b, err := order.Seal(o, keys.Keys(t, keys.Alice), order.Parties{Merchant: keys.Shop, Issuer: keys.Bank, Carrier: keys.Parcel},
		order.SealOptions{Now: dec})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		legacy bool
		until  time.Time
		want   error
	}{
		{"no legacy key", false, time.Time{}, order.ErrNotAccepted},
		{"accepted until later", true, dec.AddDate(0, 1, 0), nil},
		{"accepted until earlier", true, dec.AddDate(0, 0, -1), order.ErrNotAccepted},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := keystore.Open(dir, keygen.RoleIssuer, dec)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			s.SetClock(func() time.Time { return dec })
			if c.legacy {
				k, err := keygen.ParsePartyKey(mustJSON(t, keys.Party(t, keys.Bank)))
				if err != nil {
					t.Fatal(err)
				}
				if err := s.AcceptLegacy(k, c.until); err != nil {
					t.Fatal(err)
				}
			}
			_, err = order.Open(b, s, order.RoleIssuer, order.OpenOptions{Now: dec.Add(time.Minute)})
			if !errors.Is(err, c.want) && (c.want != nil || err != nil) {
				t.Errorf("open: %v, want %v", err, c.want)
			}
			if got := slices.Contains(s.Epochs(), ""); got != (c.want == nil) {
				t.Errorf("epochs %q: OS1 listed %v", s.Epochs(), got)
			}
		})
	}
}

func mustJSON(t *testing.T, k *keygen.PartyKey) []byte {
	t.Helper()
	b, err := k.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
