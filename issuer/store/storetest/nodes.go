package storetest

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"orderseal/issuer/api"
	"orderseal/issuer/store"
)

// nodes opens the subtest's database n times more, as n issuer nodes (on
// SQLite: n processes' handles) sharing it, under e's key with clock at.
func (e *env) nodes(t *testing.T, n int, at time.Time) []store.Store {
	t.Helper()
	var out []store.Store
	for range n {
		st, err := e.open(store.Options{CardKey: e.key, Now: func() time.Time { return at }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		out = append(out, st)
	}
	return out
}

// race runs f(i, node) for i < n at once, on the nodes in turn, and
// returns each call's error.
func race(nodes []store.Store, n int, f func(i int, st store.Store) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i, nodes[i%len(nodes)])
		}()
	}
	wg.Wait()
	return errs
}

// testNodes: what must happen once happens once when the request reaches
// several nodes sharing the database at the same moment, and the losers get
// the store's own answer, not a database error: the unique lookup hash
// enrolls a number once; one idempotency key stores one operation, also
// across orders; one hold expires once.
func testNodes(t *testing.T, e *env) {
	ctx := context.Background()
	nodes := e.nodes(t, 4, now)

	// One number enrolled at once on every node: one card.
	ids := make([]string, 8)
	errs := race(nodes, len(ids), func(i int, st store.Store) error {
		c, err := st.AddCard(ctx, store.NewCard{Number: visa, Cardholder: alice, Expiry: "2031-12", Currency: "EUR", Limit: 100_00})
		ids[i] = c.ID
		return err
	})
	var card string
	for i, err := range errs {
		switch {
		case err == nil && card != "":
			t.Fatalf("enrolled twice: %s and %s", card, ids[i])
		case err == nil:
			card = ids[i]
		case !errors.Is(err, store.ErrDuplicateCard):
			t.Fatalf("enrollment %d: %v", i, err)
		}
	}
	if card == "" {
		t.Fatal("no enrollment succeeded")
	}
	for i, err := range errs {
		if err != nil && err.Error() != fmt.Sprintf("%v as %s", store.ErrDuplicateCard, card) {
			t.Fatalf("enrollment %d: %v, want the card id %s", i, err, card)
		}
	}
	if cards, err := e.st.Cards(ctx); err != nil || len(cards) != 1 {
		t.Fatalf("cards %+v %v", cards, err)
	}

	// Six holds of 10.00 lapse in an hour, 30.00 is held for the default period.
	const lapsing = 6
	for i := range lapsing {
		r := request(fmt.Sprintf("ord-%d", i), byte(i+1), 10_00)
		r.Hold = time.Hour
		if a, _, err := nodes[i%len(nodes)].Authorize(ctx, r); err != nil || a.Decision != api.Approved {
			t.Fatalf("ord-%d: %+v %v", i, a, err)
		}
	}
	if _, _, err := e.st.Authorize(ctx, request("ord-long", 99, 30_00)); err != nil {
		t.Fatal(err)
	}

	// One key on every order at once: one operation is stored, the others
	// are refused and capture nothing.
	errs = race(nodes, lapsing, func(i int, st store.Store) error {
		_, _, err := st.Operate(ctx, op(fmt.Sprintf("ord-%d", i), "cap-shared", store.OpCapture, 1_00))
		return err
	})
	captured := -1
	for i, err := range errs {
		switch {
		case err == nil && captured >= 0:
			t.Fatalf("one key stored twice: ord-%d and ord-%d", captured, i)
		case err == nil:
			captured = i
		case !errors.Is(err, store.ErrIdempotencyKeyReused):
			t.Fatalf("ord-%d: %v, want ErrIdempotencyKeyReused", i, err)
		}
	}
	if captured < 0 {
		t.Fatal("no capture under the shared key")
	}
	for i := range lapsing {
		want := int64(0)
		if i == captured {
			want = 1_00
		}
		if a, err := e.st.Authorization(ctx, shop, fmt.Sprintf("ord-%d", i)); err != nil || a.Captured != want {
			t.Fatalf("ord-%d captured %d (want %d): %v", i, a.Captured, want, err)
		}
	}

	// Every node sweeps at once after the hour: each hold expires once.
	later := e.nodes(t, 4, now.Add(time.Hour))
	var mu sync.Mutex
	expired := 0
	errs = race(later, len(later), func(_ int, st store.Store) error {
		n, err := st.ExpireHolds(ctx)
		mu.Lock()
		expired += n
		mu.Unlock()
		return err
	})
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	// Left held: ord-long's 30.00; charged: the 1.00 captured (its remainder expired too).
	if av := e.card(t, card).Available; expired != lapsing || av != 100_00-30_00-1_00 {
		t.Fatalf("%d holds expired (want %d), available %d (want %d)", expired, lapsing, av, 100_00-30_00-1_00)
	}
}

// testCardKeyRace: stores opened at once on a database no card key was
// recorded in yet, each under its own key: one key is recorded, and every
// store under another is refused.
func testCardKeyRace(t *testing.T, open Open) {
	// Migrate first: only the key's record races.
	st, err := open(store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	dir := t.TempDir()
	keys := make([]*store.CardKey, 6)
	for i := range keys {
		if keys[i], err = store.CreateCardKey(filepath.Join(dir, fmt.Sprintf("card%d.key", i))); err != nil {
			t.Fatal(err)
		}
	}
	opened := make([]store.Store, len(keys))
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			opened[i], errs[i] = open(store.Options{CardKey: keys[i]})
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("keys %d and %d both accepted", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrWrongKey):
			t.Errorf("key %d: %v", i, err)
		}
		if err == nil {
			opened[i].Close()
		}
	}
	if winner < 0 {
		t.Fatal("no key accepted")
	}
	st, err = open(store.Options{CardKey: keys[winner]})
	if err != nil {
		t.Fatalf("the recorded key, reopened: %v", err)
	}
	st.Close()
}
