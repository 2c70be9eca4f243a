package merchant_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	carrierapi "orderseal/carrier/api"
	"orderseal/internal/signedhttp"
	"orderseal/merchant/api"
	"orderseal/order"
	"orderseal/tstest/keys"
	vaultapi "orderseal/vault/api"
)

// Issue 16, item 4: grants must not outlive their order (DESIGN.md §7).
// Each test plays one of the red team's attacks against a real vault.

// presentVaultSection is the merchant going to the vault on its own with
// an order's vault section, asking for ten uses: what the red team did.
func presentVaultSection(t *testing.T, e *env, b *order.Bundle, invoice string) {
	t.Helper()
	relay, err := b.ForRole(order.RoleVault)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := relay.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"bundle": json.RawMessage(raw), "invoice": invoice, "max_uses": 10})
	c := signedhttp.NewClient(keys.Keys(t, keys.Shop), &http.Client{})
	var out json.RawMessage
	err = c.DoJSON(context.Background(), keys.Vault, http.MethodPost, e.vault.ts.URL+vaultapi.PathGrants, json.RawMessage(body), &out)
	t.Logf("the merchant presents the vault section itself: %s %v", out, err)
}

func carrierVault(t *testing.T, e *env) *vaultapi.Client {
	t.Helper()
	c, err := vaultapi.NewClient(keys.Keys(t, keys.Parcel), e.vault.ts.URL, keys.Vault, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAttackDeclinedOrderGrant: the vault section of an order the issuer
// declined gives the carrier no reveal, however the merchant presents it.
func TestAttackDeclinedOrderGrant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.issuer.script(issuerStep{decline: "insufficient-funds"})
	e.run()
	b := e.submit(t)
	o := e.waitState(t, b.OrderID, api.StateDeclined)
	e.waitJobs(t, b.OrderID)
	if o.ShipToken == "" {
		t.Fatal("the order ships to no token")
	}
	presentVaultSection(t, e, b, "INV-ATTACK")
	parcel := carrierVault(t, e)
	for i := range 3 {
		if _, err := parcel.RevealGranted(context.Background(), o.ShipToken, b.OrderID, "INV-ATTACK"); err == nil {
			t.Fatalf("reveal %d of a declined order's address succeeded", i)
		}
	}
}

// TestAttackRefusedBookingReveals: a carrier that refused the booking (the
// order failed, the payment was voided) reveals nothing after the failure.
func TestAttackRefusedBookingReveals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.carrier.script(carrierStep{status: http.StatusUnprocessableEntity, code: carrierapi.CodeNoDestination})
	e.run()
	b := e.submit(t)
	o := e.waitState(t, b.OrderID, api.StateFailed)
	e.waitJobs(t, b.OrderID)
	if _, voids, _ := e.issuer.snapshot(); len(voids) != 1 {
		t.Fatalf("voids %v, want the order's", voids)
	}
	parcel := carrierVault(t, e)
	for i := range 3 {
		if _, err := parcel.RevealGranted(context.Background(), o.ShipToken, b.OrderID, o.Invoice); err == nil {
			t.Fatalf("reveal %d after the order failed succeeded", i)
		}
	}
}
