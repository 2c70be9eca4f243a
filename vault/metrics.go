package vault

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"orderseal/internal/web"
	"orderseal/vault/store"
)

// metrics are the vault's own metrics (DESIGN.md §11): audited reveals,
// grants and registrations by kind and outcome class, the sizes of its
// group commits and flushes, and the pending table's depth. No label holds
// a token, an owner or a value.
type metrics struct {
	reveals, grants, registrations *prometheus.CounterVec
	commitBatch, flushBatch        prometheus.Histogram
}

func newMetrics() *metrics {
	byKind := []string{"kind", "outcome"}
	batches := []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}
	return &metrics{
		reveals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orderseal_vault_reveals_total",
			Help: "Audited reveals by kind (reveal-owner, reveal-grant) and outcome (ok, refused, failed)."}, byKind),
		grants: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orderseal_vault_grants_total",
			Help: "Grants added, by kind (grant, deposit-grant) and outcome."}, byKind),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "orderseal_vault_audited_registrations_total",
			Help: "Audited token registrations, by kind and outcome."}, byKind),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "orderseal_vault_commit_batch_size",
			Help: "Registrations taken by one group commit (one fsync per database file).", Buckets: batches}),
		flushBatch: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "orderseal_vault_flush_batch_size",
			Help: "Pending records one flush moved to the data stores.", Buckets: append([]float64{0}, batches...)}),
	}
}

// observer feeds m from the store's hooks.
func (m *metrics) observer() store.Observer {
	return store.Observer{
		Audited: func(kind, outcome string) {
			switch kind {
			case "reveal-owner", "reveal-grant":
				m.reveals.WithLabelValues(kind, outcome).Inc()
			case "grant", "deposit-grant":
				m.grants.WithLabelValues(kind, outcome).Inc()
			case "register":
				m.registrations.WithLabelValues(kind, outcome).Inc()
			}
		},
		CommitBatch: func(n int) { m.commitBatch.Observe(float64(n)) },
		Flushed:     func(n int) { m.flushBatch.Observe(float64(n)) },
	}
}

// collectors are m and the pending table's depth, read from st.
func (m *metrics) collectors(st *store.Store) []prometheus.Collector {
	return []prometheus.Collector{m.reveals, m.grants, m.registrations, m.commitBatch, m.flushBatch,
		web.Gauges{Name: "orderseal_vault_pending_records", Help: "Sealed records in the pending table, not yet in every data store.",
			Read: func(ctx context.Context, emit func(float64, ...string)) error {
				s, err := st.Status(ctx)
				if err != nil {
					return err
				}
				emit(float64(s.Pending))
				return nil
			}}.Collector(),
	}
}
