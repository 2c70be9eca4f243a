package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"orderseal/merchant/store"
	"orderseal/merchant/store/postgres"
	"orderseal/merchant/store/storetest"
	"orderseal/tstest/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T, url string, now func() time.Time) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), url, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, pgtest.New(t).URL(), func() time.Time { return storetest.Now })
	})
}

func newOrder(id string) *store.Order {
	return &store.Order{ID: id, Cardholder: "cardholder:alice@example.org", HeaderHash: []byte{1, 2, 3},
		Bundle: []byte(`{"sealed":true}`), Issuer: "issuer:bank.example", Carrier: "carrier:parcel.example",
		Items: []byte(`[]`), Total: 100, Currency: "EUR", State: "received"}
}

// TestNodes: three nodes on one database. An order accepted by one is read
// the same on every other; a transition raced from every node applies
// once; the same order submitted to every node at once is stored once.
func TestNodes(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	nodes := []*postgres.Store{open(t, db.URL(), nil), open(t, db.URL(), nil), open(t, db.URL(), nil)}
	for i := range 20 {
		id := fmt.Sprintf("ord_%d", i)
		var wg sync.WaitGroup
		created := make(chan bool, len(nodes)*2)
		for _, n := range append(nodes, nodes...) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, c, err := n.Insert(ctx, newOrder(id), "authorize")
				if err != nil {
					t.Error(err)
				}
				created <- c
			}()
		}
		wg.Wait()
		close(created)
		k := 0
		for c := range created {
			if c {
				k++
			}
		}
		if k != 1 {
			t.Fatalf("%s: created %d times", id, k)
		}
		applied := make(chan bool, len(nodes))
		for _, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := n.Apply(ctx, id, store.Transition{From: []string{"received"}, To: "authorized", AuthCode: "A1", Jobs: []string{"ship"}})
				if err != nil {
					t.Error(err)
				}
				applied <- ok
			}()
		}
		wg.Wait()
		close(applied)
		k = 0
		for ok := range applied {
			if ok {
				k++
			}
		}
		if k != 1 {
			t.Fatalf("%s: the transition applied %d times", id, k)
		}
	}
	for i, n := range nodes {
		counts, err := n.Counts(ctx)
		if err != nil || counts["authorized"] != 20 || len(counts) != 1 {
			t.Fatalf("node %d counts %v %v", i, counts, err)
		}
		s, err := n.Outbox().Count(ctx, "")
		if err != nil || s.Pending != 40 {
			t.Fatalf("node %d outbox %+v %v, want 40 jobs (authorize and ship per order)", i, s, err)
		}
		tl, err := n.Timeline(ctx, "ord_7")
		if err != nil || len(tl) != 2 {
			t.Fatalf("node %d timeline %+v %v", i, tl, err)
		}
	}
}

// TestOpenReadOnly: a read-only store reads the daemon's database and
// writes nothing; a database this version did not migrate is refused.
func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	empty := pgtest.New(t)
	if _, err := postgres.OpenReadOnly(ctx, empty.URL()); !errors.Is(err, store.ErrNotMigrated) {
		t.Fatalf("an empty database: %v", err)
	}
	db := pgtest.New(t)
	w := open(t, db.URL(), nil)
	if _, _, err := w.Insert(ctx, newOrder("ord_ro"), "authorize"); err != nil {
		t.Fatal(err)
	}
	ro, err := postgres.OpenReadOnly(ctx, db.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if o, err := ro.Get(ctx, "ord_ro"); err != nil || o.State != "received" {
		t.Fatalf("read-only get %+v %v", o, err)
	}
	if _, _, err := ro.Insert(ctx, newOrder("ord_ro2"), "authorize"); err == nil {
		t.Fatal("a read-only store inserted")
	}
}
