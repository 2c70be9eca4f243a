package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"orderseal/carrier/api"
	"orderseal/carrier/store"
	"orderseal/carrier/store/postgres"
	"orderseal/carrier/store/storetest"
	"orderseal/tstest/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T, url string, opt store.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opt store.Options) store.Store { return open(t, pgtest.New(t).URL(), opt) })
}

func sample(orderID string) store.Shipment {
	return store.Shipment{Merchant: "merchant:shop.example", OrderID: orderID, HeaderHash: [32]byte{1, 2, 3},
		ShipToken: "tok_abc_adr", Source: store.Granted, Invoice: "INV-1", EventsURL: "http://127.0.0.1:1/events"}
}

// TestNodes: three carrier nodes on one database. A booking retried on
// every node at once books one shipment; events added from every node at
// once are numbered 1, 2, 3 … with one delivery job each.
func TestNodes(t *testing.T) {
	ctx := context.Background()
	url := pgtest.New(t).URL()
	nodes := []*postgres.Store{open(t, url, store.Options{}), open(t, url, store.Options{}), open(t, url, store.Options{})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	tracking := map[string]int{}
	created := 0
	for _, n := range append(nodes, nodes...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sh, c, err := n.Book(ctx, sample("ord_1"))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			tracking[sh.Tracking]++
			if c {
				created++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(tracking) != 1 || created != 1 {
		t.Fatalf("tracking numbers %v, %d created; want one", tracking, created)
	}
	var tn string
	for k := range tracking {
		tn = k
	}
	// in-transit may repeat (a parcel passes several hubs).
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := n.AddEvent(ctx, tn, api.StatusInTransit, fmt.Sprintf("hub %d", i)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	evs, states, err := nodes[0].Events(ctx, tn)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		if ev.Seq != int64(i+1) || states[i] != "pending" {
			t.Fatalf("events %+v states %v: want seq 1… each with a pending delivery", evs, states)
		}
	}
	if s, err := nodes[1].Outbox().Count(ctx, store.JobTrackingEvent); err != nil || s.Pending != 3 || len(evs) != 3 {
		t.Fatalf("outbox %+v %v, want one job for each of %d events", s, err, len(evs))
	}
}

// TestOpenModes: MustExist and read-only refuse a database with no carrier
// store; read-only writes nothing.
func TestOpenModes(t *testing.T) {
	ctx := context.Background()
	url := pgtest.New(t).URL()
	if _, err := postgres.Open(ctx, url, store.Options{MustExist: true}); !errors.Is(err, store.ErrNotMigrated) {
		t.Fatalf("MustExist on an empty database: %v", err)
	}
	if _, err := postgres.OpenReadOnly(ctx, url); !errors.Is(err, store.ErrNotMigrated) {
		t.Fatalf("read-only on an empty database: %v", err)
	}
	open(t, url, store.Options{})
	ro, err := postgres.OpenReadOnly(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, _, err := ro.Book(ctx, sample("ord_ro")); err == nil {
		t.Fatal("a read-only store booked")
	}
}
