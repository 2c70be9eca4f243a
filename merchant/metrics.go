package merchant

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"orderseal/internal/web"
	"orderseal/merchant/store"
)

// Metrics are the merchant's own metrics (DESIGN.md §11), besides the
// request metrics every daemon has: orders by state, the relay outbox, and
// the pairwise key cache. Labels hold states and queue names, never an
// order id, a token or an identity.
func Metrics(st store.Reader, cache func() (hits, misses uint64), now func() time.Time) []prometheus.Collector {
	cs := []prometheus.Collector{
		web.Gauges{Name: "orderseal_orders", Help: "The merchant's orders by state.", Labels: []string{"state"},
			Read: func(ctx context.Context, emit func(float64, ...string)) error {
				counts, err := st.Counts(ctx)
				if err != nil {
					return err
				}
				for state, n := range counts {
					emit(float64(n), state)
				}
				return nil
			}}.Collector(),
	}
	cs = append(cs, web.OutboxMetrics("relay", st.Outbox(), now)...)
	return append(cs, web.KeyCacheMetrics(cache)...)
}
