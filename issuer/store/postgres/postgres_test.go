package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"orderseal/issuer/store"
	"orderseal/issuer/store/postgres"
	"orderseal/issuer/store/storetest"
	"orderseal/order"
	"orderseal/tstest/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestConformance runs the store suite on a fresh database per subtest.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Open {
		url := pgtest.New(t).URL()
		return func(opt store.Options) (store.Store, error) { return postgres.Open(context.Background(), url, opt) }
	})
}

// TestNodes: three issuer nodes on one database. The same authorization
// sent to every node at once debits once; orders racing for one card's
// credit never overspend it.
func TestNodes(t *testing.T) {
	ctx := context.Background()
	url := pgtest.New(t).URL()
	key, err := store.CreateCardKey(filepath.Join(t.TempDir(), "card.key"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 6, 15, 12, 0, 0, 0, time.UTC)
	var nodes []store.Store
	for range 3 {
		st, err := postgres.Open(ctx, url, store.Options{CardKey: key, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		nodes = append(nodes, st)
	}
	const limit, amount = 100_00, 7_00 // room for 14 orders
	c, err := nodes[0].AddCard(ctx, store.NewCard{Number: "4111111111111111", Cardholder: "cardholder:alice@example.org", Expiry: "2031-12", Currency: "EUR", Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	approved, fresh := map[string]int{}, 0
	var wg sync.WaitGroup
	for i := range 20 {
		for _, n := range append(nodes, nodes...) { // each order twice on every node
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := store.AuthRequest{Merchant: "merchant:shop.example", OrderID: fmt.Sprintf("ord_%d", i), HeaderHash: [32]byte{byte(i + 1)},
					Cardholder: "cardholder:alice@example.org", Number: "4111111111111111", Expiry: "2031-12",
					Total: &order.Money{Amount: amount, Currency: "EUR"}, Amount: amount, Currency: "EUR"}
				a, replayed, err := n.Authorize(ctx, req)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if !replayed {
					fresh++
				}
				if a.Decision == "approved" {
					approved[a.OrderID]++
				}
			}()
		}
	}
	wg.Wait()
	if fresh != 20 || len(approved) != limit/amount {
		t.Fatalf("%d fresh decisions (want 20), %d orders approved (want %d)", fresh, len(approved), limit/amount)
	}
	got, err := nodes[2].Card(ctx, c.ID)
	if err != nil || got.Available != limit-limit/amount*amount {
		t.Fatalf("card %+v %v: want %d available", got, err, limit-limit/amount*amount)
	}
}

// TestMustExist: an admin command's MustExist and ReadOnly refuse a
// database that holds no issuer store, never creating one there.
func TestMustExist(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	for _, opt := range []store.Options{{MustExist: true}, {ReadOnly: true}} {
		if st, err := postgres.Open(ctx, db.URL(), opt); !errors.Is(err, store.ErrNoDatabase) {
			if st != nil {
				st.Close()
			}
			t.Fatalf("%+v on an empty database: %v, want ErrNoDatabase", opt, err)
		}
	}
	st, err := postgres.Open(ctx, db.URL(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	ro, err := postgres.Open(ctx, db.URL(), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.AddCard(ctx, store.NewCard{Number: "4111111111111111", Cardholder: "cardholder:alice@example.org", Expiry: "2031-12", Currency: "EUR", Limit: 1}); err == nil {
		t.Fatal("a read-only store enrolled a card")
	}
}

// TestOperateRetriesQueue: retries of one operation that reach several
// nodes while its authorization is locked queue on the lock before they
// look its key up, so the first applies it and the others replay it;
// none is refused as a reused key, and it is applied once.
func TestOperateRetriesQueue(t *testing.T) {
	ctx := context.Background()
	url := pgtest.New(t).URL()
	key, err := store.CreateCardKey(filepath.Join(t.TempDir(), "card.key"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 6, 15, 12, 0, 0, 0, time.UTC)
	var nodes []store.Store
	for range 3 {
		st, err := postgres.Open(ctx, url, store.Options{CardKey: key, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		nodes = append(nodes, st)
	}
	const shop = "merchant:shop.example"
	if _, err := nodes[0].AddCard(ctx, store.NewCard{Number: "4111111111111111", Cardholder: "cardholder:alice@example.org", Expiry: "2031-12", Currency: "EUR", Limit: 100_00}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := nodes[0].Authorize(ctx, store.AuthRequest{Merchant: shop, OrderID: "ord-1", HeaderHash: [32]byte{1},
		Cardholder: "cardholder:alice@example.org", Number: "4111111111111111", Expiry: "2031-12",
		Total: &order.Money{Amount: 40_00, Currency: "EUR"}, Amount: 40_00, Currency: "EUR"}); err != nil {
		t.Fatal(err)
	}

	// Another session holds the authorization's row while the retries arrive.
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	if _, err := holder.Exec(ctx, `SELECT 1 FROM authorizations WHERE merchant = $1 AND order_id = 'ord-1' FOR UPDATE`, shop); err != nil {
		t.Fatal(err)
	}
	op := store.Op{Merchant: shop, OrderID: "ord-1", Key: "cap-1", Kind: store.OpCapture, Amount: 10_00, Currency: "EUR"}
	fresh := make([]bool, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var replayed bool
			_, replayed, errs[i] = n.Operate(ctx, op)
			fresh[i] = !replayed
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for waiting := 0; waiting < len(nodes); {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d retries waiting on the lock", waiting, len(nodes))
		}
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	applied := 0
	for i := range nodes {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		if fresh[i] {
			applied++
		}
	}
	a, err := nodes[0].Authorization(ctx, shop, "ord-1")
	if err != nil || applied != 1 || a.Captured != 10_00 {
		t.Fatalf("%d fresh answers (want 1), captured %d (want 1000): %v", applied, a.Captured, err)
	}
}
