package signedhttp

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMemoryNonces(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return now }
	m := newMemoryNonces(3, clock)
	const ttl = 10 * time.Minute

	steps := []struct {
		caller, nonce string
		advance       time.Duration
		seen          bool
	}{
		{"merchant:a", "n1", 0, false},
		{"merchant:a", "n1", 0, true},    // replay
		{"merchant:b", "n1", 0, false},   // same nonce, other caller
		{"merchant:a", "n2", 0, false},   // store now full (3)
		{"merchant:a", "n3", 0, true},    // full of live nonces: fail closed
		{"merchant:a", "n1", 0, true},    // still remembered
		{"merchant:a", "n3", ttl, false}, // the first four expired: room again
		{"merchant:a", "n1", 0, false},   // expired, so no longer a replay
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		if got := m.Seen(s.caller, s.nonce, now.Add(ttl)); got != s.seen {
			t.Fatalf("step %d (%s %s): Seen = %v, want %v", i, s.caller, s.nonce, got, s.seen)
		}
	}
}

func TestMemoryNoncesConcurrent(t *testing.T) {
	m := NewMemoryNonces(1 << 12)
	exp := time.Now().Add(time.Minute)
	var fresh atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				// every worker offers the same 200 nonces: each is fresh exactly once
				if !m.Seen("merchant:a", fmt.Sprint(i), exp) {
					fresh.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if fresh.Load() != 200 {
		t.Fatalf("%d nonces accepted as fresh, want 200", fresh.Load())
	}
}
