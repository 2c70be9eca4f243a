package os2_test

import (
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
	"weak"

	"orderseal/keygen"
	"orderseal/suite/os2"
	"orderseal/tstest/keys"
)

// ownKey is a private copy of id's OS2 test key, which the test may Destroy.
func ownKey(t *testing.T, id string) *keygen.PartyKey {
	t.Helper()
	data, err := keys.OS2(t).Party(t, id).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	k, err := keygen.ParsePartyKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// The decoded-point cache changes no answer: a second derivation from the
// same key, and the peer's, give the same K; once the key is Destroyed,
// derivation and CheckKey fail as they would on a key never cached.
func TestSOKCacheDestroy(t *testing.T) {
	var s os2.Suite
	alice := ownKey(t, keys.Alice)
	shop := keys.OS2(t).Party(t, keys.Shop)
	first, err := s.Pairwise(alice, keys.Shop)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Pairwise(alice, keys.Shop)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := s.Pairwise(shop, keys.Alice)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Equal(&again) || !first.Equal(&theirs) {
		t.Fatal("cached derivation disagrees")
	}
	now := time.Date(2026, time.December, 6, 10, 0, 0, 0, time.UTC)
	if err := s.CheckKey(alice, now); err != nil {
		t.Fatal(err)
	}
	alice.Destroy()
	if _, err := s.Pairwise(alice, keys.Shop); !errors.Is(err, os2.ErrPoint) {
		t.Errorf("derive with a destroyed key: %v, want ErrPoint", err)
	}
	if _, err := s.Pairwise(alice, keys.Bank); !errors.Is(err, os2.ErrPoint) {
		t.Errorf("derive with a destroyed key: %v, want ErrPoint", err)
	}
	if err := s.CheckKey(alice, now); !errors.Is(err, os2.ErrPoint) {
		t.Errorf("check a destroyed key: %v, want ErrPoint", err)
	}
}

// Concurrent derivations share one key's cached points (go test -race).
func TestSOKCacheConcurrent(t *testing.T) {
	var s os2.Suite
	alice := ownKey(t, keys.Alice)
	want, err := s.Pairwise(alice, keys.Bank)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, peer := range []string{keys.Bank, keys.Shop, keys.Parcel, keys.Bank} {
		wg.Go(func() {
			got, err := s.Pairwise(alice, peer)
			if err != nil {
				t.Error(err)
			} else if peer == keys.Bank && !got.Equal(&want) {
				t.Error("concurrent derivation disagrees")
			}
		})
	}
	wg.Wait()
}

// A collected key's points leave the cache.
func TestSOKCacheForgets(t *testing.T) {
	wp := func() weak.Pointer[keygen.PartyKey] {
		k := ownKey(t, keys.Bank)
		if _, err := (os2.Suite{}).Pairwise(k, keys.Alice); err != nil {
			t.Fatal(err)
		}
		wp := weak.Make(k)
		if !os2.SOKCached(wp) {
			t.Fatal("a derivation left the key's points out of the cache")
		}
		return wp
	}()
	for deadline := time.Now().Add(5 * time.Second); os2.SOKCached(wp); {
		if time.Now().After(deadline) {
			t.Fatal("the key's points are still cached after it was collected")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
