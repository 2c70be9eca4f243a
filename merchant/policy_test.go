package merchant_test

import (
	"context"
	"net/http"
	"testing"

	"orderseal/merchant/api"
	"orderseal/order"
	"orderseal/tstest/keys"
)

// TestPolicies: the form publishes the policy set; a bundle naming one of
// its policies is taken, one naming an unpublished policy or a published
// id with another hash is refused (policy-unknown) and nothing is stored.
func TestPolicies(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	form, err := e.client(t, keys.Alice).OrderForm(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if form.Policies == nil || form.Policies.Check() != nil || form.Policies.For("KR").ID != "kr-2026-12" {
		t.Fatalf("form policies %+v", form.Policies)
	}
	other := *form.Policies.For("JP")
	other.Require = nil
	unknown := *form.Policies.For("JP")
	unknown.ID = "jp-of-my-own"
	for name, p := range map[string]*order.Policy{"changed": &other, "unpublished": &unknown} {
		b := seal(t, keys.Alice, testOrder(t, testToken), stdParties, order.SealOptions{Policy: p})
		status, header, body := e.post(t, keys.Alice, marshal(t, b))
		problemOf(t, status, header, body, http.StatusUnprocessableEntity, api.CodePolicyUnknown)
		if n := e.count(t, "orders"); n != 0 {
			t.Fatalf("%s: a refused bundle left %d orders", name, n)
		}
	}
	b := seal(t, keys.Alice, testOrder(t, testToken), stdParties, order.SealOptions{Policy: form.Policies.For("DE")})
	if status, _, body := e.post(t, keys.Alice, marshal(t, b)); status != http.StatusAccepted {
		t.Fatalf("published policy: HTTP %d %s", status, body)
	}
}

// TestParcelDeclaration: the merchant declares sender, service and weight
// with every booking, and the contents (for the CN22) only when the
// destination the cardholder told it is abroad.
func TestParcelDeclaration(t *testing.T) {
	e := newEnv(t)
	e.sender = order.Address{Name: "Shop Example GmbH", Line1: "Lagerstraße 1", City: "Hamburg", PostalCode: "20095", Country: "DE"}
	e.restart()
	e.run()
	ctx := context.Background()
	pols := order.DefaultPolicies()
	for _, dest := range []string{"KR", "DE", ""} {
		o := testOrder(t, e.vault.register(t, keys.Alice))
		o.ShipTo.Country = dest
		if dest == "KR" {
			o.Recipient.CustomsCode = "P123456789012"
		}
		b := seal(t, keys.Alice, o, stdParties, order.SealOptions{Policy: pols.For(dest)})
		if _, err := e.client(t, keys.Alice).Submit(ctx, b); err != nil {
			t.Fatal(err)
		}
		e.waitState(t, b.OrderID, api.StateShipped)
		reqs, _ := e.carrier.snapshot()
		p := reqs[len(reqs)-1].parcel
		want := map[bool]string{true: "International", false: "Standard"}[dest == "KR"]
		if p == nil || p.Sender.Country != "DE" || p.Service != want || p.WeightG != 1200 || p.Pieces != 1 {
			t.Fatalf("%q: parcel %+v", dest, p)
		}
		if got := len(p.Contents) > 0; got != (dest == "KR") {
			t.Fatalf("%q: contents %+v", dest, p.Contents)
		}
		if dest == "KR" && (p.Contents[0].Description != "Nineteen Eighty-Four (paperback)" || p.Contents[0].Origin != "DE" || p.Contents[0].Currency != "EUR") {
			t.Fatalf("contents %+v", p.Contents)
		}
	}
	e.noViolations(t)
}
