package signedhttp

import (
	"net/http"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"orderseal/internal/web"
)

// Refusal pacing (issue 16 item 2). A refusal costs the party as much as
// an answer: the request is read, its keys derived, its MAC checked and
// the refusal signed. A caller that is refused again and again (a role
// the endpoint does not admit, replayed nonces, bad signatures, a spent
// quota) would otherwise turn that cost into a flood the genuine callers
// pay for with their latency. So each refusal spends a token of its
// caller's budget and one of the party's budget for all callers; once a
// budget is spent, the refusal waits for its token before it is written.
// net/http reads a connection's next request only when the current one is
// answered, so a waiting refusal holds back the whole pipelined flood
// behind it at no CPU cost. A caller with too many refusals waiting, or a
// refusal that would wait longer than MaxPaceDelay, is answered at once
// with Connection: close, which drops everything it pipelined behind.
//
// Genuine callers are not refused and spend nothing; the budgets are far
// above what a caller's honest mistakes (a clock skew, a retried nonce)
// produce.

// Defaults of the refusal pacing.
const (
	// DefaultCallerRefusals is the refusals a second one caller identity
	// is answered at full speed, with a burst of twice as many.
	DefaultCallerRefusals = 50
	// DefaultAllRefusals is the same for every caller together, so a
	// flood spread over many claimed identities is paced too.
	DefaultAllRefusals = 1000
	// MaxPaceDelay is the longest a refusal waits for its token.
	MaxPaceDelay = time.Second
	// maxWaitingPerCaller and maxWaiting bound the refusals waiting at
	// once, of one caller and of all: each holds a goroutine and its
	// connection, nothing else.
	maxWaitingPerCaller = 8
	maxWaiting          = 256
	// pacedCallers bounds the callers whose budgets are remembered.
	pacedCallers = 4096
)

// pacer holds the refusal budgets of one Verifier.
type pacer struct {
	perCaller rate.Limit
	burst     int
	all       *rate.Limiter

	mu      sync.Mutex
	callers *lru.Cache[string, *callerPace]
	waiting int
}

type callerPace struct {
	lim     *rate.Limiter
	waiting int
}

func newPacer(perCaller, all int) *pacer {
	c, err := lru.New[string, *callerPace](pacedCallers)
	if err != nil {
		panic(err) // only for a size ≤ 0
	}
	return &pacer{perCaller: rate.Limit(perCaller), burst: 2 * perCaller,
		all: rate.NewLimiter(rate.Limit(all), 2*all), callers: c}
}

// WithRefusalPace sets the refusals a second answered at full speed, of
// one caller and of all callers (defaults DefaultCallerRefusals,
// DefaultAllRefusals); 0, 0 turns pacing off.
func WithRefusalPace(perCaller, all int) Option {
	return func(v *Verifier) {
		if perCaller <= 0 || all <= 0 {
			v.pace = nil
			return
		}
		v.pace = newPacer(perCaller, all)
	}
}

// wait spends a refusal token of caller ("" for a request that names no
// caller it could be charged to) and waits for it if need be. It returns
// false when the refusal is to be answered at once with Connection: close:
// too many of caller's refusals wait already, or the token is too far off.
// It releases the request's server slot (web.Limit) before it waits, so
// waiting refusals cannot crowd out other callers.
func (p *pacer) wait(r *http.Request, caller string) bool {
	if p == nil {
		return true
	}
	now := time.Now()
	p.mu.Lock()
	cp, ok := p.callers.Get(caller)
	if !ok {
		cp = &callerPace{lim: rate.NewLimiter(p.perCaller, p.burst)}
		p.callers.Add(caller, cp)
	}
	mine, all := cp.lim.ReserveN(now, 1), p.all.ReserveN(now, 1)
	delay := max(mine.DelayFrom(now), all.DelayFrom(now))
	if delay == 0 {
		p.mu.Unlock()
		return true
	}
	if delay > MaxPaceDelay || cp.waiting >= maxWaitingPerCaller || p.waiting >= maxWaiting {
		mine.CancelAt(now)
		all.CancelAt(now)
		p.mu.Unlock()
		return false
	}
	cp.waiting++
	p.waiting++
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		cp.waiting--
		p.waiting--
		p.mu.Unlock()
	}()
	web.Authenticated(r)
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}
