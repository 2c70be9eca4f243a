package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	issuerapi "orderseal/issuer/api"
	issuerstore "orderseal/issuer/store"
	"orderseal/keygen"
	merchantapi "orderseal/merchant/api"
	"orderseal/order"
	"orderseal/suite"
	"orderseal/tstest/collude"
	"orderseal/tstest/keys"
)

// TestCollusionOS1 is issue 15's attack against the real daemons of an OS1
// deployment (test center, k = keys.K): k ordinary cardholders pool the
// key files they were issued, read alice's card off the merchant→issuer
// relay with the issuer's forged key, and then order as alice on her card;
// the genuine merchant and issuer take the order as hers and debit her.
func TestCollusionOS1(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns every daemon")
	}
	c := newCluster(t)
	const limit = 500000
	c.enroll(cAlice, cardCanary, "2031-12", fmt.Sprint(limit))
	alice := c.wallet("alice", cAlice, cardCanary)

	// Alice's own order, relayed by the merchant to the issuer.
	id, state, _, code, errs := c.orderCLI(alice, "-item", "mug_blue-350=1", "-ship-to-address", c.writeAddress("alice"))
	if code != 0 || state != merchantapi.StateShipped {
		t.Fatalf("alice's order %s: exit %d %s\n%s", id, code, state, errs)
	}
	relayed := relayedBundle(t, c, id)

	// The coalition: k cardholders, each with the key file it holds.
	pool := make([]*keygen.PartyKey, keys.K)
	for i := range pool {
		k, err := keygen.LoadPartyKey(c.keyFile(fmt.Sprintf("cardholder:colluder-%02d@example.org", i)))
		if err != nil {
			t.Fatal(err)
		}
		pool[i] = k
	}
	if _, err := collude.Collude(pool[1:]...); err == nil {
		t.Fatal("k − 1 key files rebuilt the matrix")
	}
	co, err := collude.Collude(pool...)
	if err != nil {
		t.Fatal(err)
	}
	defer co.Destroy()

	bank, err := co.Forge(cBank)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := order.Open(relayed, suite.NewKeys(bank, 4), order.RoleIssuer, order.OpenOptions{})
	if err != nil {
		t.Fatalf("the forged issuer key does not open the relayed section: %v", err)
	}
	if sec.Card == nil || sec.Card.Number != cardCanary {
		t.Fatalf("relayed issuer section holds card %+v, want alice's", sec.Card)
	}
	stolen := *sec.Card

	forged, err := co.Forge(cAlice)
	if err != nil {
		t.Fatal(err)
	}
	o := &order.Order{
		Buyer: order.Buyer{Name: "Alice Example", Phone: "+4915112345678", Email: "alice@example.org"},
		Card:  order.Card{Number: stolen.Number, Expiry: stolen.Expiry},
		Items: []order.Item{{SKU: "CAMERA-X100", Name: "Compact camera X100", Qty: 1, UnitPrice: 129900}},
		Total: 129900, Currency: "EUR", Plan: order.Plan{Installments: 1},
		ShipTo:    order.ShipTo{Address: &order.Address{Name: "Mallory Drop", Line1: addressCanary + " 1", City: "Hamburg", PostalCode: "20095", Country: "DE"}},
		Recipient: order.Recipient{Name: "Mallory Drop", Phone: "+4917600000000"},
	}
	submit := func(key *keygen.PartyKey) (*order.Bundle, *merchantapi.Accepted, error) {
		b, err := order.Seal(o, suite.NewKeys(key, 4), order.Parties{Merchant: cShop, Issuer: cBank, Carrier: cParcel}, order.SealOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mc, err := merchantapi.NewClient(suite.NewKeys(key, 8), c.url("merchant"), cShop,
			&http.Client{Timeout: 30 * time.Second, Transport: recordingRT{key.Identity(), c.wire}})
		if err != nil {
			t.Fatal(err)
		}
		acc, err := mc.Submit(context.Background(), b)
		return b, acc, err
	}

	before := c.available(cAlice)
	// Control: an impostor's key for alice, without the matrix, is refused.
	if _, acc, err := submit(keys.Rogue(t).Party(t, cAlice)); err == nil {
		t.Fatalf("the merchant took an impostor's order %s", acc.OrderID)
	}
	b, acc, err := submit(forged)
	if err != nil {
		t.Fatalf("the merchant refuses the forged order: %v", err)
	}
	c.waitState(acc.OrderID, merchantapi.StateShipped)
	if got := before - c.available(cAlice); got != 129900 {
		t.Fatalf("alice was debited %d, want 129900", got)
	}
	auths, err := c.issuerStore().Authorizations(context.Background(), issuerstore.AuthFilter{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range auths {
		if a.OrderID == b.OrderID {
			found = true
			if a.Sealer != cAlice || a.Decision != issuerapi.Approved || a.HeaderHash != b.HeaderHash() {
				t.Fatalf("issuer's record of the forged order: %+v", a)
			}
		}
	}
	if !found {
		t.Fatalf("the issuer has no authorization of order %s", b.OrderID)
	}
}

// relayedBundle is the header and issuer section of order id as the
// merchant relayed them to the issuer, taken off the wire.
func relayedBundle(t *testing.T, c *cluster, id string) *order.Bundle {
	t.Helper()
	for _, ex := range c.wire.all() {
		if ex.caller != "→issuer" || ex.method != http.MethodPut || !strings.HasSuffix(ex.path, issuerapi.PathAuthorizations+id) {
			continue
		}
		var req issuerapi.AuthorizeRequest
		if err := json.Unmarshal(ex.req, &req); err != nil {
			t.Fatal(err)
		}
		b, err := order.ParseBundle(req.Bundle)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Fatalf("no relay of order %s to the issuer on the wire", id)
	return nil
}
