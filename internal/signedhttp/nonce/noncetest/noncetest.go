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
		now := time.Now()
		exp := now.Add(time.Minute)
		var fresh, replays atomic.Int64
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 100 {
					switch err := s.Record(ctx, "merchant:a", fmt.Sprint(i), now, exp); {
					case err == nil:
						fresh.Add(1)
					case errors.Is(err, nonce.ErrReplayed):
						replays.Add(1)
					default:
						t.Errorf("goroutine %d: %v", g, err)
					}
				}
			}()
		}
		wg.Wait()
		if fresh.Load() != 100 || replays.Load() != 700 {
			t.Fatalf("%d fresh, %d replays; want 100 and 700", fresh.Load(), replays.Load())
		}
	})
	t.Run("one caller's flood leaves the others their room", func(t *testing.T) {
		const quota = 50
		s := open(t, quota)
		now := time.Now()
		exp := now.Add(time.Minute)
		var flooded, quotaRefused atomic.Int64
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 100 {
					switch err := s.Record(ctx, "cardholder:flood", fmt.Sprintf("f%d-%d", g, i), now, exp); {
					case err == nil:
						flooded.Add(1)
					case errors.Is(err, nonce.ErrQuota):
						quotaRefused.Add(1)
					default:
						t.Errorf("flood: %v", err)
					}
				}
			}()
		}
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
		if flooded.Load() != quota || quotaRefused.Load() != 400-quota {
			t.Fatalf("flood: %d recorded, %d refused for the quota; want %d and %d", flooded.Load(), quotaRefused.Load(), quota, 400-quota)
		}
	})
}
