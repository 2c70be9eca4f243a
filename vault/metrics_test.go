package vault_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"orderseal/internal/web"
	"orderseal/order"
	"orderseal/tstest/keys"
	"orderseal/vault"
	"orderseal/vault/api"
)

// TestMetricsCountAudited: the store's hooks feed the vault's metrics with
// what its audit log records — audited registrations, reveals and grants
// by kind and outcome class — and the sizes of its group commits, and the
// pending table's depth is read at scrape time; no label holds a token, an
// owner or a value.
func TestMetricsCountAudited(t *testing.T) {
	ctx := context.Background()
	m := vault.NewMetrics()
	e := newObservedVaultEnv(t, m.Observer())
	metrics := web.NewMetrics(m.Collectors(e.st)...)
	scrape := func() string {
		rec := httptest.NewRecorder()
		metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	alice, shop, parcel := e.client(t, keys.Alice), e.client(t, keys.Shop), e.client(t, keys.Parcel)
	var home string
	var b *order.Bundle
	steps := []struct {
		name string
		do   func()
		want []string
	}{
		{"nothing yet", func() {}, []string{`orderseal_vault_commit_batch_size_count 0`}},
		{"a registration", func() { home = register(t, alice, api.TypeAddress, "home", false, addressJSON(canary+" 1")).Token },
			[]string{`orderseal_vault_audited_registrations_total{kind="register",outcome="ok"} 1`,
				`orderseal_vault_commit_batch_size_count 1`, `orderseal_vault_commit_batch_size_bucket{le="1"} 1`}},
		{"the owner's reveal", func() {
			if _, err := alice.RevealOwn(ctx, home); err != nil {
				t.Fatal(err)
			}
		}, []string{`orderseal_vault_reveals_total{kind="reveal-owner",outcome="ok"} 1`}},
		{"a grant", func() {
			b = bundleFor(t, keys.Alice, home, order.SealOptions{GrantUses: 3})
			if _, err := shop.Grant(ctx, b, "INV-1", approve(t, b)); err != nil {
				t.Fatal(err)
			}
		}, []string{`orderseal_vault_grants_total{kind="grant",outcome="ok"} 1`}},
		{"the carrier's reveal under it", func() {
			if _, err := parcel.RevealGranted(ctx, home, b.OrderID, "INV-1"); err != nil {
				t.Fatal(err)
			}
		}, []string{`orderseal_vault_reveals_total{kind="reveal-grant",outcome="ok"} 1`, `orderseal_vault_pending_records `}},
	}
	for _, s := range steps {
		s.do()
		got := scrape()
		for _, w := range s.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: metrics lack %s:\n%s", s.name, w, got)
			}
		}
		for _, leak := range []string{home, keys.Alice, keys.Shop, keys.Parcel, canary} {
			if leak != "" && strings.Contains(got, leak) {
				t.Fatalf("%s: metrics hold %q", s.name, leak)
			}
		}
	}
}
