// Package storetest is the conformance suite of the vault store
// (DESIGN.md §7, §9): Run proves a backend's Index, Data and Pending
// against their documented promises, and runs the vault's behaviour tests
// (register, dedupe, group commit, grants, reveal, rotation, audit,
// outages, flush, check, orphan sweep) on a Store built over them.
package storetest

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"orderseal/vault/store"
)

// Vault is the stores of one vault, for one test.
type Vault interface {
	// Open opens the vault's backends for the data key whose
	// store.KeyCheck is check; after they are closed, Open opens the same
	// stores again, with their data. Backup is nil unless the vault was
	// made with one.
	Open(t testing.TB, check []byte) (store.Backends, error)
	// Outage makes the named data store ("primary" or "backup")
	// unreachable, as an unmounted volume or a dead server would, until
	// restore is called (also at the end of the test).
	Outage(t testing.TB, name string) (restore func())
}

// NewVault makes fresh, empty stores for a test; withBackup says whether
// they include a backup data store.
type NewVault func(t testing.TB, withBackup bool) Vault

// Run runs the whole suite against the backend newVault makes.
func Run(t *testing.T, newVault NewVault) {
	t.Run("Index", func(t *testing.T) { runIndex(t, newVault) })
	t.Run("Data", func(t *testing.T) { runData(t, newVault) })
	t.Run("Pending", func(t *testing.T) { runPending(t, newVault) })
	t.Run("Store", func(t *testing.T) { runStore(t, newVault) })
}

// clock is a fake clock the tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a Store over one Vault's backends, with a fake clock.
type env struct {
	v     Vault
	key   *store.DataKey
	check []byte
	clk   *clock
	wrap  func(store.Backends) store.Backends // nil: none; fault injection
	b     store.Backends                      // as the Store got them, for looking inside
	s     *store.Store
}

func newEnv(t testing.TB, nv NewVault, withBackup bool) *env {
	t.Helper()
	return newEnvWrapped(t, nv, withBackup, nil)
}

func newEnvWrapped(t testing.TB, nv NewVault, withBackup bool, wrap func(store.Backends) store.Backends) *env {
	t.Helper()
	key, err := store.CreateDataKey(filepath.Join(t.TempDir(), "data.key"))
	if err != nil {
		t.Fatal(err)
	}
	check, err := store.KeyCheck(key)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{v: nv(t, withBackup), key: key, check: check, clk: newClock(), wrap: wrap}
	e.open(t)
	t.Cleanup(func() {
		if e.s != nil {
			e.s.Close()
		}
	})
	return e
}

func (e *env) open(t testing.TB) {
	t.Helper()
	b, err := e.v.Open(t, e.check)
	if err != nil {
		t.Fatal(err)
	}
	if e.wrap != nil {
		b = e.wrap(b)
	}
	s, err := store.New(b, store.Options{DataKey: e.key, Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	e.b, e.s = b, s
}

func (e *env) reopen(t testing.TB) {
	t.Helper()
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	e.open(t)
}

func (e *env) outage(t testing.TB, name string) (restore func()) {
	t.Helper()
	return e.v.Outage(t, name)
}

// count returns how many token records d holds (not the shared values
// they point to: see shareCount).
func count(t testing.TB, d store.Data) int {
	t.Helper()
	n, _ := scanCount(t, d)
	return n
}

// shareCount returns how many shared values d holds.
func shareCount(t testing.TB, d store.Data) int {
	t.Helper()
	_, n := scanCount(t, d)
	return n
}

func scanCount(t testing.TB, d store.Data) (tokens, shared int) {
	t.Helper()
	for r, err := range d.Scan(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(r.Token, "shr_") {
			shared++
		} else {
			tokens++
		}
	}
	return tokens, shared
}

func has(t testing.TB, rs store.Records, token string) bool {
	t.Helper()
	_, ok, err := rs.Get(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// pendingCount returns how many token records wait in p.
func pendingCount(t testing.TB, p store.Pending) int {
	t.Helper()
	toks, err := p.Tokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tok := range toks {
		if !strings.HasPrefix(tok, "shr_") {
			n++
		}
	}
	return n
}

// recordCount returns how many records rs (a Data or the Pending) holds,
// token records and shared values alike.
func recordCount(t testing.TB, rs store.Records) int {
	t.Helper()
	switch rs := rs.(type) {
	case store.Data:
		a, b := scanCount(t, rs)
		return a + b
	case store.Pending:
		n, err := rs.Count(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	t.Fatalf("%T is neither Data nor Pending", rs)
	return 0
}

// rewrite replaces token's record in d by what edit makes of it, as an
// operator (or attacker) with access to the data store could.
func rewrite(t testing.TB, d store.Records, token string, edit func(*store.Record)) {
	t.Helper()
	ctx := context.Background()
	r, ok, err := d.Get(ctx, token)
	if err != nil || !ok {
		t.Fatalf("rewrite %s: %v %v", token, ok, err)
	}
	edit(&r)
	if err := d.Delete(ctx, token); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
}

// moveSealed gives to's record the nonce and sealed value of from's.
func moveSealed(t testing.TB, d store.Data, from, to string) {
	t.Helper()
	src, ok, err := d.Get(context.Background(), from)
	if err != nil || !ok {
		t.Fatalf("moveSealed %s: %v %v", from, ok, err)
	}
	rewrite(t, d, to, func(r *store.Record) { r.Nonce, r.Sealed = src.Nonce, src.Sealed })
}

// zeroSealed replaces the sealed value of token's record with zeros.
func zeroSealed(r *store.Record) { r.Sealed = make([]byte, len(r.Sealed)) }
