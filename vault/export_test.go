package vault

import (
	"github.com/prometheus/client_golang/prometheus"

	"orderseal/vault/store"
)

// Metrics is the vault's metrics, for tests of package vault_test.
type Metrics struct{ m *metrics }

func NewMetrics() Metrics                                           { return Metrics{newMetrics()} }
func (m Metrics) Observer() store.Observer                          { return m.m.observer() }
func (m Metrics) Collectors(st *store.Store) []prometheus.Collector { return m.m.collectors(st) }
