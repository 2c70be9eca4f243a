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
