package e2e

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"orderseal/merchant"
	merchantapi "orderseal/merchant/api"
	"orderseal/order"
	"orderseal/suite/os2"
	harness "orderseal/tstest/cluster"
)

// TestOS2Cluster runs the real daemons on suite OS2 — a 2-of-3 officers'
// key center, each receiving party on a keystore with its own X-Wing key
// signed into the directory, cardholders sealing to the order form's
// entries — and then sends the merchant what OS2 refuses: each refusal has
// its own stable code, and none stores anything.
func TestOS2Cluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	buildAll(t, bin)
	c, err := harness.Start(ctx, harness.Config{Dir: filepath.Join(dir, "cluster"), BinDir: bin, Suite: os2.Name, K: 16,
		Cardholders: 4, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Epochal() {
		t.Fatal("an OS2 cluster is not epochal")
	}

	// Orders flow and settle as on OS1.
	d, err := harness.NewDriver(c, harness.DriverConfig{Clients: 4, Seed: 15, DeclineRate: 0.1, InlineRate: 0.2})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	loadCtx, stop := context.WithTimeout(ctx, 3*time.Second)
	d.Run(loadCtx)
	stop()
	if err := d.WaitSettled(ctx); err != nil {
		t.Fatal(err)
	}
	s := d.Summarize()
	if s.Accepted == 0 || s.Errors() != 0 {
		t.Fatalf("%d accepted, %d errors: %v", s.Accepted, s.Errors(), s.FirstErrors)
	}
	if err := c.WaitQuiet(ctx, nil); err != nil {
		t.Fatal(err)
	}
	rep, err := c.Verify(ctx, d.Acked())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("ledgers disagree: %v", rep)
	}
	t.Logf("OS2: %d orders accepted, states %v", s.Accepted, s.States)

	// What OS2 refuses at the merchant, each with its own code.
	ch := c.Cardholders()[0]
	mc, err := merchantapi.NewClient(ch.Key, c.URL(harness.Merchant), harness.MerchantID, &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	form, err := mc.OrderForm(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(form.Directory) != 4 {
		t.Fatalf("the form carries %d directory entries, want the merchant, issuer, carrier and vault", len(form.Directory))
	}
	seal := func() *order.Bundle {
		it := harness.CatalogItems[0]
		o := &order.Order{
			Buyer: order.Buyer{Name: "Holder", Phone: "+4915110000000", Email: "h@stress.example"},
			Card:  order.Card{Number: ch.Card, Expiry: ch.Expiry}, Currency: "EUR", Plan: order.Plan{Installments: 1},
			Items: []order.Item{{SKU: it.SKU, Name: it.Name, Qty: 1, UnitPrice: it.Price}}, Total: it.Price,
			ShipTo:    order.ShipTo{Token: ch.Token},
			Recipient: order.Recipient{Name: "Holder", Phone: "+4915120000000"},
		}
		b, err := order.Seal(o, ch.Key, order.Parties{Merchant: harness.MerchantID, Issuer: harness.IssuerID,
			Carrier: harness.CarrierID, Vault: harness.VaultID}, order.SealOptions{Directory: form.Directory})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	st, err := merchant.OpenReader(ctx, c.DSN(harness.Merchant))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	before, err := st.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		edit   func(b *order.Bundle)
		status int
		code   string
	}{
		{"KEM ciphertext one byte short", func(b *order.Bundle) {
			s := b.Sections[order.RoleMerchant]
			s.KEM = s.KEM[:len(s.KEM)-1]
			b.Sections[order.RoleMerchant] = s
		}, http.StatusBadRequest, order.CodeKEMInvalid},
		{"KEM ciphertext not the header's", func(b *order.Bundle) {
			s := b.Sections[order.RoleMerchant]
			s.KEM[0] ^= 1
			b.Sections[order.RoleMerchant] = s
		}, http.StatusBadRequest, order.CodeKEMInvalid},
		{"an epoch the merchant holds no key of", func(b *order.Bundle) { b.Epoch = "2031-01" }, http.StatusUnprocessableEntity, order.CodeWrongEpoch},
		{"a malformed epoch", func(b *order.Bundle) { b.Epoch = "next" }, http.StatusBadRequest, order.CodeWrongEpoch},
		{"KEM and its hash replaced together", func(b *order.Bundle) {
			s := b.Sections[order.RoleMerchant]
			s.KEM = append([]byte(nil), s.KEM...)
			s.KEM[5] ^= 1
			b.Sections[order.RoleMerchant] = s
			b.KEMs[order.RoleMerchant] = os2.EncapHash(s.KEM)
		}, http.StatusUnprocessableEntity, merchantapi.CodeSectionRefused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := seal()
			tc.edit(b)
			_, err := mc.Submit(ctx, b)
			wantProblem(t, err, tc.status, tc.code)
		})
	}
	after, err := st.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("refused bundles changed the merchant's orders: %v → %v", before, after)
	}
	// The untouched bundle is accepted: the refusals were the edits'.
	if _, err := mc.Submit(ctx, seal()); err != nil {
		t.Fatalf("a genuine OS2 bundle: %v", err)
	}
}
