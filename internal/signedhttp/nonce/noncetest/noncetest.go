// Package noncetest is the conformance suite of nonce.Store backends; each
// daemon's store suite runs it on the store its backend returns.
package noncetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"orderseal/internal/signedhttp/nonce"
)

// Open returns a fresh, empty store whose quota is nonce.Fixed(quota).
type Open func(t *testing.T, quota int) nonce.Store

// Run runs the suite.
func Run(t *testing.T, open Open) {
	ctx := context.Background()
	t.Run("replay, per caller, expiry", func(t *testing.T) {
		now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		s := open(t, 3)
		const ttl = 10 * time.Minute
		steps := []struct {
			caller, nonce string
			advance       time.Duration
			want          error
		}{
			{"merchant:a", "n1", 0, nil},
			{"merchant:a", "n1", 0, nonce.ErrReplayed},
			{"merchant:b", "n1", 0, nil}, // same nonce, other caller
			{"merchant:a", "n2", 0, nil},
			{"merchant:a", "n3", 0, nil}, // a holds its quota (3)
			{"merchant:a", "n4", 0, nonce.ErrQuota},
			{"merchant:a", "n1", 0, nonce.ErrReplayed}, // still remembered at quota
			{"merchant:b", "n2", 0, nil},               // b unaffected by a's quota
			{"merchant:a", "n4", ttl, nil},             // a's nonces expired: room again
			{"merchant:a", "n1", 0, nil},               // expired, so no longer a replay
		}
		for i, st := range steps {
			now = now.Add(st.advance)
			if err := s.Record(ctx, st.caller, st.nonce, now, now.Add(ttl)); !errors.Is(err, st.want) || (st.want == nil && err != nil) {
				t.Fatalf("step %d (%s %s): %v, want %v", i, st.caller, st.nonce, err, st.want)
			}
		}
	})
	t.Run("concurrent: each nonce once", func(t *testing.T) {
		s := open(t, 1<<20)
		fresh, replays := flood(t, s, "merchant:a", 8, func(_, i int) string { return fmt.Sprint(i) }, time.Now(), nonce.ErrReplayed)()
		if fresh != 100 || replays != 700 {
			t.Fatalf("%d fresh, %d replays; want 100 and 700", fresh, replays)
		}
	})
	t.Run("one caller's flood leaves the others their room", func(t *testing.T) {
		const quota = 50
		s := open(t, quota)
		now := time.Now()
		exp := now.Add(time.Minute)
		wait := flood(t, s, "cardholder:flood", 4, func(g, i int) string { return fmt.Sprintf("f%d-%d", g, i) }, now, nonce.ErrQuota)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range quota {
				if err := s.Record(ctx, "cardholder:genuine", fmt.Sprint(i), now, exp); err != nil {
					t.Errorf("genuine record %d during another caller's flood: %v", i, err)
				}
			}
		}()
		wg.Wait()
		if flooded, quotaRefused := wait(); flooded != quota || quotaRefused != 400-quota {
			t.Fatalf("flood: %d recorded, %d refused for the quota; want %d and %d", flooded, quotaRefused, quota, 400-quota)
		}
	})
}

// flood starts goroutines goroutines recording 100 nonces each as caller,
// the i-th of goroutine g named nonceOf(g, i), at now and live for a
// minute. Its wait counts those recorded and those refused with refusal;
// any other error fails t.
func flood(t *testing.T, s nonce.Store, caller string, goroutines int, nonceOf func(g, i int) string, now time.Time, refusal error) (wait func() (recorded, refused int64)) {
	exp := now.Add(time.Minute)
	var ok, no atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				switch err := s.Record(context.Background(), caller, nonceOf(g, i), now, exp); {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, refusal):
					no.Add(1)
				default:
					t.Errorf("%s, goroutine %d: %v", caller, g, err)
				}
			}
		}()
	}
	return func() (int64, int64) {
		wg.Wait()
		return ok.Load(), no.Load()
	}
}
