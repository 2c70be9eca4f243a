package keys_test

import (
	"sync"
	"testing"

	"orderseal/keygen"
	"orderseal/suite"
	"orderseal/tstest/keys"
)

func TestDefaultCenter(t *testing.T) {
	if got := keys.Test(t).Params(); !got.Equal(keys.Params()) {
		t.Fatalf("Test's params %+v, Params() %+v", got, keys.Params())
	}
	if keys.Master(t) != keys.Test(t).Master() {
		t.Fatal("Master is not the default center's")
	}
	k := keys.Party(t, keys.Alice)
	if k.Identity() != keys.Alice || !k.Params().Equal(keys.Params()) {
		t.Fatalf("key of %s on %+v", k.Identity(), k.Params())
	}
}

// Party issues each identity once, from any number of goroutines.
func TestPartyCached(t *testing.T) {
	const n = 16
	got := make([]*keygen.PartyKey, n)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() { got[i] = keys.Party(t, keys.Shop) })
	}
	wg.Wait()
	for _, k := range got {
		if k != got[0] {
			t.Fatal("Party issued the same identity twice")
		}
	}
}

// Both ends derive one pairwise key on the default center, and a rogue
// key of the same system derives another.
func TestRogue(t *testing.T) {
	ab, err := suite.Pairwise(keys.Party(t, keys.Alice), keys.Bank)
	if err != nil {
		t.Fatal(err)
	}
	ba, err := suite.Pairwise(keys.Party(t, keys.Bank), keys.Alice)
	if err != nil {
		t.Fatal(err)
	}
	rogue := keys.Rogue(t).Party(t, keys.Alice)
	if !rogue.Params().Equal(keys.Params()) {
		t.Fatal("the rogue center is on another system")
	}
	rb, err := suite.Pairwise(rogue, keys.Bank)
	if err != nil {
		t.Fatal(err)
	}
	if !ab.Equal(&ba) || rb.Equal(&ab) {
		t.Fatal("pairwise keys: genuine ends disagree or the rogue one agrees")
	}
}

func TestForeign(t *testing.T) {
	k := keys.Foreign(t).Party(t, keys.Alice)
	if k.Params().Equal(keys.Params()) || k.Params().System != keys.ForeignSystem {
		t.Fatalf("foreign key on %+v", k.Params())
	}
}

func TestCenterNamed(t *testing.T) {
	c := keys.Center(t, [32]byte{1}, [16]byte{2}, 4)
	if c != keys.Center(t, [32]byte{1}, [16]byte{2}, 4) {
		t.Fatal("Center built the same center twice")
	}
	if p := c.Params(); p.System != [16]byte{2} || p.K != 4 || p.Suite != keygen.SuiteOS1 {
		t.Fatalf("params %+v", p)
	}
}

func TestWriteKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := keys.WriteKeyFile(t, dir, keys.Parcel)
	k, err := keygen.LoadPartyKeyFor(p, keys.Params())
	if err != nil {
		t.Fatal(err)
	}
	if !k.Equal(keys.Party(t, keys.Parcel)) {
		t.Fatal("the key file holds another key")
	}
}
