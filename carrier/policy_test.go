package carrier_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"orderseal/carrier/api"
	"orderseal/order"
	"orderseal/tstest/keys"
)

// TestBookingPolicy: a bundle naming a known policy with another hash, or
// lacking the phone that policy always requires, is refused with its own
// code; a good one is booked with the policy's id, and a parcel
// declaration puts the sender's country into the tracking number.
func TestBookingPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	shop := e.merchant(t, keys.Shop)
	kr := order.DefaultPolicies().For("KR")
	dest := inlineAddress
	dest.Name, dest.Line1, dest.Line2, dest.City, dest.Region, dest.PostalCode, dest.Country =
		"김민수", "테헤란로 152", "", "강남구", "서울특별시", "06236", "KR"

	forged := *kr
	forged.Require = map[string]string{} // the same id, another policy
	b := sealOrder(t, keys.Shop, keys.Parcel, "", &dest, order.SealOptions{Policy: &forged})
	_, err := shop.Book(ctx, b, "INV-P1")
	wantProblem(t, err, http.StatusUnprocessableEntity, api.CodePolicyMismatch)

	noPhone := *kr
	noPhone.Fields = map[string][]order.Role{}
	for f, rs := range kr.Fields {
		noPhone.Fields[f] = rs
	}
	noPhone.Fields[order.FieldRecipientPhone] = nil
	noPhone.Require = map[string]string{order.FieldCustomsCode: order.RequireImport}
	noPhone.ID = "kr-no-phone"
	b = sealOrder(t, keys.Shop, keys.Parcel, "", &dest, order.SealOptions{Policy: &noPhone})
	if _, err := shop.Book(ctx, b, "INV-P2"); err != nil {
		t.Fatalf("a policy the carrier does not know is the merchant's: %v", err)
	}

	// The KR policy, with a phone, and the shop's parcel declaration.
	b = sealOrder(t, keys.Shop, keys.Parcel, "", &dest, order.SealOptions{Policy: kr})
	parcel := &api.Parcel{Sender: order.Address{Name: "Shop Example GmbH", Line1: "Lagerstraße 1", City: "Hamburg", PostalCode: "20095", Country: "DE"},
		Service: "International Priority", WeightG: 800, Pieces: 1, Category: "merchandise",
		Contents: []api.CustomsItem{{Description: "Book", Qty: 2, WeightG: 800, Value: 2598, Currency: "EUR", Origin: "DE"}}}
	sh, err := shop.BookParcel(ctx, b, "INV-P3", parcel)
	if err != nil {
		t.Fatal(err)
	}
	if err := api.ValidateTracking(sh.Tracking); err != nil || sh.Tracking[11:] != "DE" {
		t.Fatalf("tracking %s (%v): want the sender's country", sh.Tracking, err)
	}
	st, err := e.st.Lookup(ctx, sh.Tracking)
	if err != nil {
		t.Fatal(err)
	}
	var got api.Parcel
	if st.Policy != kr.ID || json.Unmarshal([]byte(st.Parcel), &got) != nil || got.Service != parcel.Service || len(got.Contents) != 1 {
		t.Fatalf("stored policy %q, parcel %s", st.Policy, st.Parcel)
	}

	bad := *parcel
	bad.Sender.PostalCode = "2009"
	b = sealOrder(t, keys.Shop, keys.Parcel, "", &dest, order.SealOptions{Policy: kr})
	_, err = shop.BookParcel(ctx, b, "INV-P4", &bad)
	wantProblem(t, err, http.StatusUnprocessableEntity, api.CodeParcelInvalid)
}
