package carrier_test

import (
	"context"
	"net/http"
	"testing"

	"orderseal/internal/signedhttp"
	"orderseal/order"
	"orderseal/tstest/keys"
	"orderseal/vault"
)

// TestAttackDepositsBeyondOrder (issue 16, item 4): the inline addresses a
// carrier deposits belong to their orders (DESIGN.md §7). The carrier
// reveals each at most the grant's uses, by any route, never under another
// order, and neither lists nor reveals one whose order was revoked.
func TestAttackDepositsBeyondOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	shop := e.merchant(t, keys.Shop)
	type booked struct{ orderID, token, invoice string }
	var orders []booked
	for i, inv := range []string{"INV-A", "INV-B"} {
		addr := inlineAddress
		addr.Line1 = []string{"1 First St", "2 Second St"}[i]
		b := sealOrder(t, keys.Shop, keys.Parcel, "", &addr, order.SealOptions{})
		sh, err := shop.Book(ctx, b, inv)
		if err != nil {
			t.Fatal(err)
		}
		st, err := e.st.Lookup(ctx, sh.Tracking)
		if err != nil {
			t.Fatal(err)
		}
		orders = append(orders, booked{b.OrderID, st.ShipToken, inv})
	}
	parcel := e.vaultClient(t, keys.Parcel)
	for _, o := range orders {
		n := 0
		for range 10 {
			if _, err := parcel.RevealOwn(ctx, o.token); err == nil {
				n++
			}
			if _, err := parcel.RevealGranted(ctx, o.token, o.orderID, o.invoice); err == nil {
				n++
			}
		}
		if n > vault.DefaultGrantUses {
			t.Errorf("order %s: the carrier revealed its deposit %d times, the limit is %d", o.orderID, n, vault.DefaultGrantUses)
		}
	}
	// Another order's deposit under this order's id and invoice: never.
	if _, err := parcel.RevealGranted(ctx, orders[1].token, orders[0].orderID, orders[0].invoice); err == nil {
		t.Error("a deposit revealed under another order")
	}
	// The merchant revokes order A (it failed): the carrier no longer lists it.
	var out map[string]any
	err := signedhttp.NewClient(keys.Keys(t, keys.Shop), &http.Client{}).DoJSON(ctx, keys.Vault, http.MethodPost,
		e.vaultTS.URL+"/v1/grants/revoke", map[string]string{"order_id": orders[0].orderID, "reason": "failed"}, &out)
	t.Logf("revoke: %v %v", out, err)
	entries, err := parcel.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if en.Token == orders[0].token {
			t.Errorf("the carrier lists the deposit of revoked order %s", orders[0].orderID)
		}
		if en.Token == orders[1].token {
			t.Errorf("the carrier lists the deposit of order %s after its grant's uses are spent", orders[1].orderID)
		}
	}
}
