package signedhttp

import (
	"container/heap"
	"sync"
	"time"
)

// NonceStore remembers the nonces of authenticated requests until they
// expire. Seen reports true if (caller, nonce) is already recorded, and
// records it otherwise. A store shared by several daemon instances (one
// database) makes replay protection hold across them.
type NonceStore interface {
	Seen(caller, nonce string, expires time.Time) bool
}

// DefaultMaxNonces bounds the default in-memory store: about 400 requests a
// second sustained over a ±5 min window.
const DefaultMaxNonces = 1 << 18

// NewMemoryNonces returns an in-memory NonceStore of at most max live
// entries, safe for concurrent use. When full of unexpired nonces it fails
// closed: Seen reports true, so requests are refused until entries expire
// rather than a replay window being reopened by eviction.
func NewMemoryNonces(max int) NonceStore { return newMemoryNonces(max, time.Now) }

func newMemoryNonces(max int, now func() time.Time) *memoryNonces {
	if max < 1 {
		max = 1
	}
	return &memoryNonces{max: max, now: now, live: make(map[string]time.Time)}
}

type memoryNonces struct {
	mu   sync.Mutex
	max  int
	now  func() time.Time
	live map[string]time.Time
	exp  expiryHeap
}

func (m *memoryNonces) Seen(caller, nonce string, expires time.Time) bool {
	key := caller + "\x00" + nonce // identities and base64url hold no NUL
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	for len(m.exp) > 0 && !m.exp[0].at.After(now) {
		e := heap.Pop(&m.exp).(expiry)
		delete(m.live, e.key)
	}
	if _, ok := m.live[key]; ok {
		return true
	}
	if len(m.live) >= m.max {
		return true
	}
	m.live[key] = expires
	heap.Push(&m.exp, expiry{at: expires, key: key})
	return false
}

type expiry struct {
	at  time.Time
	key string
}

// expiryHeap is a min-heap on expiry time.
type expiryHeap []expiry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = expiry{}
	*h = old[:len(old)-1]
	return e
}
