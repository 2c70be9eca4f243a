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

// Open returns a fresh, empty store whose clock is now() and whose quota is
// nonce.Fixed(quota).
type Open func(t *testing.T, now func() time.Time, quota int) nonce.Store

// Run runs the suite.
func Run(t *testing.T, open Open) {
	ctx := context.Background()
	t.Run("replay, per caller, expiry", func(t *testing.T) {
		now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		var mu sync.Mutex
		clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
		s := open(t, clock, 3)
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
			mu.Lock()
			now = now.Add(st.advance)
			exp := now.Add(ttl)
			mu.Unlock()
			if err := s.Record(ctx, st.caller, st.nonce, exp); !errors.Is(err, st.want) || (st.want == nil && err != nil) {
				t.Fatalf("step %d (%s %s): %v, want %v", i, st.caller, st.nonce, err, st.want)
			}
		}
	})
	t.Run("concurrent: each nonce once", func(t *testing.T) {
		s := open(t, time.Now, 1<<20)
		exp := time.Now().Add(time.Minute)
		var fresh, replays atomic.Int64
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 100 {
					switch err := s.Record(ctx, "merchant:a", fmt.Sprint(i), exp); {
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
}
