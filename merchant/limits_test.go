package merchant_test

import (
	"net/http"
	"testing"

	"orderseal/merchant/api"
	"orderseal/order"
	"orderseal/tstest/keys"
)

// TestIntakeMaxItems: the merchant takes an order of up to MaxItems lines
// (100 by default, published in the order form) and refuses one more, even
// when the cardholder's own software seals it past order validation; far
// more lines do not fit a section (order.MaxSectionSize) and the bundle is
// refused before it is opened.
func TestIntakeMaxItems(t *testing.T) {
	tests := []struct {
		name   string
		lines  int
		status int
		code   string
		title  string
	}{
		{"100 lines", 100, http.StatusAccepted, "", ""},
		{"101 lines", 101, http.StatusUnprocessableEntity, api.CodeCatalogMismatch, "Too many lines"},
		{"1000 lines", 1000, http.StatusBadRequest, api.CodeBundleInvalid, "Invalid bundle"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			b := seal(t, keys.Alice, testOrder(t, testToken), stdParties, order.SealOptions{})
			sec := merchantSection(t, b)
			line := sec.Items[0]
			line.Qty = 1
			sec.Items = repeat(line, tc.lines)
			sec.Total.Amount = int64(tc.lines) * line.UnitPrice
			reseal(t, b, order.RoleMerchant, sec)
			status, header, body := e.post(t, keys.Alice, marshal(t, b))
			if tc.status == http.StatusAccepted {
				if status != tc.status {
					t.Fatalf("HTTP %d: %s", status, body)
				}
				return
			}
			p := problemOf(t, status, header, body, tc.status, tc.code)
			if p.Title != tc.title {
				t.Fatalf("refused as %q: %s", p.Title, p.Detail)
			}
			for _, table := range []string{"orders", "timeline", "outbox"} {
				if n := e.count(t, table); n != 0 {
					t.Fatalf("a refused bundle left %d rows in %s", n, table)
				}
			}
		})
	}
}
