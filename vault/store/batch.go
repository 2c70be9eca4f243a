package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// MaxBatchItems bounds RegisterBatch.
const MaxBatchItems = 1000

// BatchItem is one value of RegisterBatch.
type BatchItem struct {
	Type      TokenType
	Label     string
	Value     []byte // normalised by the caller, as for Register
	Shareable bool
}

// BatchResult is RegisterBatch's answer for one item: its token, or the
// reason it was refused (an error wrapping ErrInvalid or ErrTokenType).
type BatchResult struct {
	Token   string
	Created bool
	Err     error
}

// RegisterBatch registers items for owner in one durable commit: one
// transaction per data store (or the pending table) for every new record,
// then one index transaction for their entries, relabels and "register"
// audit entries (RegisterAudited's, one per valid item). An item that
// fails validation gets its error in its result and takes no part; a
// failure of the stores fails the whole batch (nothing of it is kept) and
// is returned. Items repeating a value (of the same owner and type) get
// one token, as Register would give them.
func (s *Store) RegisterBatch(ctx context.Context, owner string, items []BatchItem) ([]BatchResult, error) {
	if len(items) == 0 || len(items) > MaxBatchItems {
		return nil, fmt.Errorf("%w: a batch holds 1 to %d items", ErrInvalid, MaxBatchItems)
	}
	out := make([]BatchResult, len(items))
	prepared := make([]*registration, len(items))
	// Validate and seal on every core, as concurrent Register callers would.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(items)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(items); i = int(next.Add(1)) - 1 {
				it := items[i]
				r, err := s.prepare(owner, it.Type, it.Label, it.Value, it.Shareable, 0)
				if err != nil {
					out[i].Err = err
					continue
				}
				r.audit = true
				prepared[i] = r
			}
		})
	}
	wg.Wait()
	var regs []*registration
	var at []int
	for i, r := range prepared {
		if r != nil {
			regs, at = append(regs, r), append(at, i)
		}
	}
	if len(regs) == 0 {
		return out, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case <-s.closing:
		return nil, ErrClosed
	default:
	}
	s.regMu.Lock()
	res, err := s.registerBatch(context.WithoutCancel(ctx), regs)
	s.regMu.Unlock()
	if err != nil {
		return nil, err
	}
	for j, r := range res {
		out[at[j]] = BatchResult{Token: r.token, Created: r.created}
	}
	return out, nil
}

// AuditBatch appends evs (Time set by the store when zero) to the audit
// log in one index transaction: all or none.
func (s *Store) AuditBatch(ctx context.Context, evs []AuditEvent) error {
	if len(evs) == 0 {
		return nil
	}
	now := s.now()
	for i := range evs {
		ev := &evs[i]
		if ev.Kind == "" {
			return fmt.Errorf("%w: audit kind", ErrInvalid)
		}
		for _, f := range []string{ev.Kind, ev.Actor, ev.Token, ev.OrderID, ev.Outcome} {
			if !validText(f, 1024) {
				return fmt.Errorf("%w: audit field", ErrInvalid)
			}
		}
		if ev.Time.IsZero() {
			ev.Time = now
		}
	}
	return s.appendAudited(ctx, evs)
}

// IsRefusal reports whether err is a refusal of the input (as opposed to a
// failure of the stores).
func IsRefusal(err error) bool {
	return errors.Is(err, ErrInvalid) || errors.Is(err, ErrTokenType)
}
