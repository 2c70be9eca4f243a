package noncepg_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"orderseal/internal/pgdb"
	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncepg"
	"orderseal/internal/signedhttp/nonce/noncetest"
	"orderseal/tstest/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgdb.OpenMigrated(context.Background(), url, 0, "nonce", []string{noncepg.Migration})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func TestConformance(t *testing.T) {
	noncetest.Run(t, func(t *testing.T, quota int) nonce.Store {
		return noncepg.New(open(t, pgtest.New(t).URL()), nonce.Fixed(quota))
	})
}

// TestNodes: two nodes with pools of their own share one database: what
// one recorded, the other refuses as a replay, also after a restart, and
// one caller's quota holds across both while they record at once.
func TestNodes(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	exp := now.Add(10 * time.Minute)
	a := noncepg.New(open(t, db.URL()), nonce.Fixed(40))
	b := noncepg.New(open(t, db.URL()), nonce.Fixed(40))
	if err := a.Record(ctx, "carrier:parcel.example", "n1", now, exp); err != nil {
		t.Fatal(err)
	}
	if err := b.Record(ctx, "carrier:parcel.example", "n1", now, exp); !errors.Is(err, nonce.ErrReplayed) {
		t.Fatalf("on another node: %v, want ErrReplayed", err)
	}
	restarted := noncepg.New(open(t, db.URL()), nonce.Fixed(40))
	if err := restarted.Record(ctx, "carrier:parcel.example", "n1", now.Add(time.Minute), exp); !errors.Is(err, nonce.ErrReplayed) {
		t.Fatalf("after a restart: %v, want ErrReplayed", err)
	}
	var mu sync.Mutex
	outcomes := map[string]int{}
	var wg sync.WaitGroup
	for i, s := range []*noncepg.Store{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 25 {
				err := s.Record(ctx, "cardholder:flood", fmt.Sprintf("%d-%d", i, k), now, exp)
				mu.Lock()
				outcomes[fmt.Sprint(err)]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if outcomes["<nil>"] != 40 || outcomes[nonce.ErrQuota.Error()] != 60 {
		t.Fatalf("outcomes %v, want 40 recorded and 60 over the quota", outcomes)
	}
}

// TestPrune: the clock window decides what stays; pruning frees the rows
// and the counts of expired nonces, and only theirs.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	s := noncepg.New(open(t, pgtest.New(t).URL()), nonce.Fixed(2))
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, n := range []string{"old1", "old2"} {
		if err := s.Record(ctx, "merchant:a", n, now, now.Add(time.Duration(i+1)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Record(ctx, "merchant:b", "live", now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		prune  time.Duration
		held   int
		record string // then recorded by a at prune time, "" for none
	}{
		{90 * time.Second, 2, "new1"}, // old1 gone; a has room for new1
		{59 * time.Minute, 1, ""},     // a's all gone, b's live one stays
	}
	for i, st := range steps {
		if err := s.Prune(ctx, now.Add(st.prune)); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Held(ctx); err != nil || n != st.held {
			t.Fatalf("step %d: %d held, %v; want %d", i, n, err, st.held)
		}
		if st.record != "" {
			at := now.Add(st.prune)
			if err := s.Record(ctx, "merchant:a", st.record, at, at.Add(time.Minute)); err != nil {
				t.Fatalf("step %d: pruning should have freed room: %v", i, err)
			}
		}
	}
	if err := s.Record(ctx, "merchant:b", "live", now.Add(59*time.Minute), now.Add(2*time.Hour)); !errors.Is(err, nonce.ErrReplayed) {
		t.Fatalf("b's live nonce after pruning: %v, want ErrReplayed", err)
	}
}
