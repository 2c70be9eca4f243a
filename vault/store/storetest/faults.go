package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"orderseal/vault/store"
)

// faultIndex wraps a backend's Index to stall the committer (a gate on
// Entries, which every batch's dedupe lookup calls while it holds the
// batch) and to make the index refuse one owner's entries.
type faultIndex struct {
	store.Index
	mu      sync.Mutex
	gate    chan struct{} // non-nil: Entries waits until it is closed
	owner   string        // "": refuse nothing
	updates atomic.Int64  // Update calls: one per committed batch
	fail    atomic.Bool   // Update fails without writing
	gated   []string      // tokens of commitBatch's own registrations
}

var (
	errRefused    = errors.New("storetest: the index refuses this owner")
	errIndexFails = errors.New("storetest: the index transaction fails")
)

func newFaultEnv(t testing.TB, nv NewVault, withBackup bool) (*env, *faultIndex) {
	t.Helper()
	f := &faultIndex{}
	e := newEnvWrapped(t, nv, withBackup, func(b store.Backends) store.Backends {
		f.Index = b.Index
		b.Index = f
		return b
	})
	return e, f
}

func (f *faultIndex) hold() {
	f.mu.Lock()
	f.gate = make(chan struct{})
	f.mu.Unlock()
}

func (f *faultIndex) release() {
	f.mu.Lock()
	close(f.gate)
	f.gate = nil
	f.mu.Unlock()
}

func (f *faultIndex) refuse(owner string) {
	f.mu.Lock()
	f.owner = owner
	f.mu.Unlock()
}

func (f *faultIndex) Entries(ctx context.Context, tokens []string) (map[string]store.Entry, error) {
	f.mu.Lock()
	g := f.gate
	f.mu.Unlock()
	if g != nil {
		<-g
	}
	return f.Index.Entries(ctx, tokens)
}

func (f *faultIndex) Update(ctx context.Context, fn func(store.IndexTx) error) error {
	f.updates.Add(1)
	if f.fail.Load() {
		return errIndexFails
	}
	return f.Index.Update(ctx, func(tx store.IndexTx) error { return fn(faultTx{tx, f}) })
}

type faultTx struct {
	store.IndexTx
	f *faultIndex
}

func (t faultTx) InsertEntries(ctx context.Context, es ...store.Entry) error {
	t.f.mu.Lock()
	owner := t.f.owner
	t.f.mu.Unlock()
	for _, e := range es {
		if owner != "" && e.Owner == owner {
			return errRefused
		}
	}
	return t.IndexTx.InsertEntries(ctx, es...)
}

// synctestRun runs f as subtest name inside a synctest bubble, so
// commitBatch can tell when a caller is queued.
func synctestRun(t *testing.T, name string, f func(t *testing.T)) {
	t.Run(name, func(t *testing.T) { synctest.Test(t, f) })
}

// reg is one registration of a hand-made batch.
type reg struct {
	owner string
	typ   store.TokenType
	value string
}

// registered is what Register answered one registration.
type registered struct {
	token   string
	created bool
	err     error
}

// commitBatch registers regs as one group commit, in order: it stalls the
// committer on a registration of its own, queues regs behind it one by one
// (synctest.Wait: each caller is blocked handing its registration over),
// then lets the committer go, which takes them all as its next batch. It
// must run in a synctest bubble, with e built by newFaultEnv in it.
func commitBatch(t *testing.T, e *env, f *faultIndex, regs ...reg) []registered {
	t.Helper()
	ctx := context.Background()
	f.hold()
	gateDone := make(chan error, 1)
	go func() {
		tok, _, err := e.s.Register(ctx, "cardholder:gate", store.TypeEmail, "", fmt.Appendf(nil, "gate-%d@example.org", f.updates.Load()), false, 0)
		f.gated = append(f.gated, tok)
		gateDone <- err
	}()
	synctest.Wait()
	before := f.updates.Load()
	out := make([]registered, len(regs))
	var wg sync.WaitGroup
	for i, g := range regs {
		wg.Go(func() {
			out[i].token, out[i].created, out[i].err = e.s.Register(ctx, g.owner, g.typ, "", []byte(g.value), false, 0)
		})
		synctest.Wait()
	}
	f.release()
	wg.Wait()
	if err := <-gateDone; err != nil {
		t.Fatalf("the gate's registration: %v", err)
	}
	if n := f.updates.Load() - before; n != 2 {
		t.Fatalf("the batch took %d index transactions after the gate's, want 1", n-1)
	}
	return out
}
