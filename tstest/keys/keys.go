// Package keys is the test key center: party keys by identity from a
// fixed master, the same in every package's tests, so that no test builds
// its own.
//
// It is for tests only, and never to be imported from production code
// (tstest/deptest fails the build of the tests if a non-test package
// depends on it). Its master is rebuilt from a seed written below, and its
// k is small (K = 16): any K parties could rebuild the matrix from their
// keys. Both are fine for a test and fatal for a deployment.
//
// Party, Keys, Params, Master and WriteKeyFile use the default center
// (Test); Rogue is a second center on the same system, whose keys carry
// the right parameters but are not the genuine ones; Foreign is a center
// of another system; Center names any
// other, for tests whose golden data (a vector, a seed corpus) was made
// with a particular seed or system.
package keys

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"orderseal/keygen"
	"orderseal/keygen/center"
	"orderseal/suite"
	"orderseal/suite/os2"
)

// Identities the tests of several packages play.
const (
	Alice        = "cardholder:alice@example.org"
	Bob          = "cardholder:bob@example.org"
	Shop         = "merchant:shop.example"
	OtherShop    = "merchant:other.example"
	Parcel       = "carrier:parcel.example"
	OtherCarrier = "carrier:other.example"
	Bank         = "issuer:bank.example"
	Vault        = "vault:vault.shop.example"
	Carol        = "consultant:carol"           // a phone consultant (assisted orders)
	CallCenter   = "company:callcenter.example" // the consultants' company
)

// System is the default center's system identifier ("7e57").
var System = [16]byte{0x7e, 0x57, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}

// ForeignSystem is the system of Foreign, a deployment other than System.
var ForeignSystem = [16]byte{0xf0, 0x4e, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}

// K is the default center's k: small, for tests only.
const K = 16

// CacheSize is the number of pairwise keys a Keys cache holds.
const CacheSize = 64

// seed and rogueSeed are the masters of Test and Rogue.
var seed, rogueSeed = func() (s, r [32]byte) {
	for i := range s {
		s[i], r[i] = byte(i+1), byte(0xa0+i)
	}
	return s, r
}()

// KeyCenter is a test key center: a master and the keys it issued so far.
// Its methods are safe for concurrent use.
type KeyCenter struct {
	master *center.Master
	root   *center.Master // an epoch suite's root master (directory signing); nil for OS1

	mu     sync.Mutex
	issued map[string]*keygen.PartyKey
	kems   map[string]*os2.KEMKey
}

type centerID struct {
	suite  string
	system [16]byte
	k      int
	epoch  string
	seed   [32]byte
}

var (
	centersMu sync.Mutex
	centers   = map[centerID]*KeyCenter{}
)

// Center is the OS1 key center of seed, system and k, built once per test
// binary. Use it where golden data depends on those values; Test otherwise.
func Center(t testing.TB, seed [32]byte, system [16]byte, k int) *KeyCenter {
	t.Helper()
	return CenterFor(t, keygen.Params{Suite: keygen.SuiteOS1, System: system, K: k}, seed)
}

// CenterFor is the key center of params (any suite of the registry) and
// seed, built once per test binary: for tests of a suite other than OS1.
func CenterFor(t testing.TB, params keygen.Params, seed [32]byte) *KeyCenter {
	t.Helper()
	id := centerID{params.Suite, params.System, params.K, "", seed}
	centersMu.Lock()
	defer centersMu.Unlock()
	if c, ok := centers[id]; ok {
		return c
	}
	m, err := center.MasterFromSeed(params, seed)
	if err != nil {
		t.Fatalf("test key center: %v", err)
	}
	c := &KeyCenter{master: m, issued: map[string]*keygen.PartyKey{}}
	centers[id] = c
	return c
}

// Epoch is the epoch of the OS2 test centers' keys (OS2Center).
const Epoch = "2026-12"

// OS2Center is the OS2 test key center of epoch (monthly epochs, the
// default grace) on System with K: keys of epoch, KEM keys and directory
// entries for the receiving parties. Its root master comes from seed.
func OS2Center(t testing.TB, epoch string) *KeyCenter {
	t.Helper()
	id := centerID{os2.Name, System, K, epoch, seed}
	centersMu.Lock()
	defer centersMu.Unlock()
	if c, ok := centers[id]; ok {
		return c
	}
	root, err := center.EpochMasterFromSeed(keygen.Params{Suite: os2.Name, System: System, K: K,
		Epochs: &keygen.Epochs{Period: keygen.PeriodMonth, Grace: keygen.DefaultGrace}}, seed)
	if err != nil {
		t.Fatalf("OS2 test key center: %v", err)
	}
	m, err := root.ForEpoch(epoch)
	if err != nil {
		t.Fatalf("OS2 test key center: %v", err)
	}
	c := &KeyCenter{master: m, root: root, issued: map[string]*keygen.PartyKey{}, kems: map[string]*os2.KEMKey{}}
	centers[id] = c
	return c
}

// OS2 is the OS2 test center of Epoch.
func OS2(t testing.TB) *KeyCenter {
	t.Helper()
	return OS2Center(t, Epoch)
}

// KEMKey is id's X-Wing key of the center's epoch, derived from id and the
// epoch so that it is the same in every test; callers must not Destroy it.
func (c *KeyCenter) KEMKey(t testing.TB, id string) *os2.KEMKey {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.kems[id]; ok {
		return k
	}
	seed := sha256.Sum256([]byte("orderseal test KEM key\x00" + id + "\x00" + c.master.Epoch()))
	k, err := os2.KEMKeyFromSeed(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	c.kems[id] = k
	return k
}

// Entry is id's directory entry for the center's epoch, valid until the
// epoch's end plus grace.
func (c *KeyCenter) Entry(t testing.TB, id string) *keygen.DirectoryEntry {
	t.Helper()
	if c.root == nil {
		t.Fatal("Entry: not an epoch suite's center")
	}
	ep := c.master.Params().Epochs
	_, end, err := ep.Span(c.master.Epoch())
	if err != nil {
		t.Fatal(err)
	}
	e, err := c.root.SignEntry(id, c.master.Epoch(), c.KEMKey(t, id).PublicKey(), end.Add(ep.Grace))
	if err != nil {
		t.Fatalf("sign entry of %s: %v", id, err)
	}
	return e
}

// Directory is the entries of ids.
func (c *KeyCenter) Directory(t testing.TB, ids ...string) []*keygen.DirectoryEntry {
	t.Helper()
	out := make([]*keygen.DirectoryEntry, len(ids))
	for i, id := range ids {
		out[i] = c.Entry(t, id)
	}
	return out
}

// EpochKeys is a receiving party's keys of the center's epoch: a new key
// cache around id's key, with its KEM key.
func (c *KeyCenter) EpochKeys(t testing.TB, id string) *suite.EpochKeys {
	t.Helper()
	return suite.WithKEM(c.Keys(t, id), c.KEMKey(t, id))
}

// Root is an epoch suite center's root master (nil for OS1).
func (c *KeyCenter) Root() *center.Master { return c.root }

// Test is the default test key center: System, K.
func Test(t testing.TB) *KeyCenter {
	t.Helper()
	return Center(t, seed, System, K)
}

// Rogue is another key center on the default one's system: its keys carry
// the right parameters but derive other pairwise keys, as an impostor's would.
func Rogue(t testing.TB) *KeyCenter {
	t.Helper()
	return Center(t, rogueSeed, System, K)
}

// Foreign is a key center of another system (ForeignSystem): the same
// identities get keys of other parameters, as from another deployment.
func Foreign(t testing.TB) *KeyCenter {
	t.Helper()
	return Center(t, seed, ForeignSystem, K)
}

// Master is the center's master, for helpers that issue keys themselves.
func (c *KeyCenter) Master() *center.Master { return c.master }

// Params are the center's parameters.
func (c *KeyCenter) Params() keygen.Params { return c.master.Params() }

// Party is id's key, issued once and then shared: callers must not
// Destroy it.
func (c *KeyCenter) Party(t testing.TB, id string) *keygen.PartyKey {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.issued[id]; ok {
		return k
	}
	k, err := c.master.Issue(id)
	if err != nil {
		t.Fatalf("issue %s: %v", id, err)
	}
	c.issued[id] = k
	return k
}

// Keys is a new key cache (suite.NewKeys) around id's key.
func (c *KeyCenter) Keys(t testing.TB, id string) *keygen.Cache {
	t.Helper()
	return suite.NewKeys(c.Party(t, id), CacheSize)
}

// WriteKeyFile writes id's key file (mode 0600) into dir under the name a
// key center batch gives it (keygen.KeyFileName) and returns its path.
func (c *KeyCenter) WriteKeyFile(t testing.TB, dir, id string) string {
	t.Helper()
	p := filepath.Join(dir, keygen.KeyFileName(id))
	if err := c.Party(t, id).WriteFile(p); err != nil {
		t.Fatalf("write key file: %v", err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Fatalf("key file %s has mode %o, want 0600", p, m)
	}
	return p
}

// Party is id's key from the default center (Test).
func Party(t testing.TB, id string) *keygen.PartyKey {
	t.Helper()
	return Test(t).Party(t, id)
}

// Keys is a new key cache around id's key from the default center.
func Keys(t testing.TB, id string) *keygen.Cache {
	t.Helper()
	return Test(t).Keys(t, id)
}

// Params are the default center's parameters.
func Params() keygen.Params {
	return keygen.Params{Suite: keygen.SuiteOS1, System: System, K: K}
}

// Master is the default center's master.
func Master(t testing.TB) *center.Master {
	t.Helper()
	return Test(t).Master()
}

// WriteKeyFile writes id's key from the default center into dir (mode
// 0600) and returns its path.
func WriteKeyFile(t testing.TB, dir, id string) string {
	t.Helper()
	return Test(t).WriteKeyFile(t, dir, id)
}
