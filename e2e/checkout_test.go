package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	carrierstore "orderseal/carrier/store"
	"orderseal/internal/problem/rfc9457"
	issuerapi "orderseal/issuer/api"
	issuerstore "orderseal/issuer/store"
	"orderseal/tstest/keys"

	merchantapi "orderseal/merchant/api"
	merchantstore "orderseal/merchant/store"
	"orderseal/order"
	"orderseal/suite"
)

// registerAddress registers an address for who under label and returns its token.
func (c *cluster) registerAddress(id, label string, shareable bool) string {
	c.t.Helper()
	addr := `{"name":"Bob Beispiel","line1":"` + addressCanary + ` 12","city":"Berlin","postal_code":"10115","country":"DE"}`
	p := c.path("alice", label+".address.json")
	if err := os.WriteFile(p, []byte(addr), 0o600); err != nil {
		c.t.Fatal(err)
	}
	args := []string{"address", "add", "-key", c.keyFile(id), "-vault-url", c.url("vault"), "-vault", cVault, "-label", label, "-file", p}
	if shareable {
		args = append(args, "-shareable")
	}
	return strings.TrimSpace(c.must("", "cardholder", args...))
}

// orderCLI places an order with the cardholder binary and returns its
// stdout lines (order id, then "ID STATE [TRACKING] [REASON]") and exit code.
func (c *cluster) orderCLI(wallet []string, extra ...string) (id, state, rest string, code int, stderr string) {
	c.t.Helper()
	out, errs, code := c.run("", "cardholder", append(append([]string{"order"}, wallet...), extra...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		c.t.Fatalf("cardholder order: exit %d, stdout %q\n%s", code, out, errs)
	}
	f := strings.Fields(lines[len(lines)-1])
	if f[0] != lines[0] || len(f) < 2 {
		c.t.Fatalf("cardholder order: status line %q for order %q", lines[len(lines)-1], lines[0])
	}
	return lines[0], f[1], strings.Join(f[2:], " "), code, errs
}

// sealFor seals a catalog-correct order for a cardholder, shipped to token.
func (c *cluster) sealFor(id, number, token string, qty int64) *order.Bundle {
	c.t.Helper()
	o := &order.Order{
		Buyer: order.Buyer{Name: "Alice Example", Phone: "+4915112345678", Email: "alice@example.org"},
		Card:  order.Card{Number: number, Expiry: "2031-12"},
		Items: []order.Item{{SKU: "BOOK-1984.pb", Name: "Nineteen Eighty-Four (paperback)", Qty: qty, UnitPrice: 1299}},
		Total: 1299 * qty, Currency: "EUR", Plan: order.Plan{Installments: 1},
		ShipTo:    order.ShipTo{Token: token},
		Recipient: order.Recipient{Name: "Bob Beispiel", Phone: "+4917698765432"},
	}
	b, err := order.Seal(o, suite.NewKeys(keys.Party(c.t, id), 4), order.Parties{Merchant: cShop, Issuer: cBank, Carrier: cParcel, Vault: cVault}, order.SealOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

func (c *cluster) merchantClient(id string) *merchantapi.Client {
	c.t.Helper()
	mc, err := merchantapi.NewClient(suite.NewKeys(keys.Party(c.t, id), 8), c.url("merchant"), cShop,
		&http.Client{Timeout: 30 * time.Second, Transport: recordingRT{id, c.wire}})
	if err != nil {
		c.t.Fatal(err)
	}
	return mc
}

func wantProblem(t *testing.T, err error, status int, code string) {
	t.Helper()
	var p *rfc9457.Problem
	if !errors.As(err, &p) || p.Code != code || (status != 0 && p.Status != status) {
		t.Fatalf("got %v, want problem %d %s", err, status, code)
	}
}

// TestCheckout runs the whole flow of DESIGN.md §6.3–6.6 across the real
// binaries: cardholder CLI → merchant → issuer → vault grant → carrier.
func TestCheckout(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns every daemon")
	}
	c := newCluster(t)
	c.enroll(cAlice, cardCanary, "2031-12", "50000")
	c.enroll(cBob, bobCard, "2031-12", "1000")
	alice := c.wallet("alice", cAlice, cardCanary)
	bob := c.wallet("bob", cBob, bobCard)
	token := c.registerAddress(cAlice, "home", true)
	var shippedID, tracking string

	t.Run("approved order ships with a label", func(t *testing.T) {
		c := c.with(t)
		before := c.available(cAlice)
		id, state, rest, code, errs := c.orderCLI(alice, "-item", "BOOK-1984.pb=2", "-item", "mug_blue-350=1", "-ship-to", "home")
		if code != 0 || state != merchantapi.StateShipped {
			t.Fatalf("order %s: exit %d state %s %s\n%s\nmerchant log:\n%s", id, code, state, rest, errs, c.log("merchant"))
		}
		shippedID, tracking = id, strings.Fields(rest)[0]
		if got := before - c.available(cAlice); got != 3448 {
			t.Fatalf("debited %d, want 3448", got)
		}
		for _, want := range []string{"received", "authorized", "shipped", tracking} {
			if !strings.Contains(errs, want) {
				t.Errorf("progress on stderr lacks %q:\n%s", want, errs)
			}
		}
		// The carrier holds the token, never the address.
		if sh, err := c.carrierStore().Lookup(context.Background(), tracking); err != nil || sh.Tracking != tracking || sh.ShipToken != token {
			t.Fatalf("carrier shipment %s: %+v %v, want the token %s", tracking, sh, err, token)
		}
		label := c.path("carrier", "label.png")
		c.must("", "carrier", "label", tracking, "-o", label, "-db", c.path("carrier", "carrier.db"), "-key", c.keyFile(cParcel),
			"-vault-url", c.url("vault"), "-vault", cVault)
		f, err := os.Open(label)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("label is not a PNG: %v", err)
		}
		if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 400 {
			t.Fatalf("label is %v", b)
		}
		if fi, _ := os.Stat(label); fi.Mode().Perm() != 0o600 {
			t.Errorf("label mode %v, want 0600", fi.Mode().Perm())
		}
		os.Remove(label) // it holds the address: the scan below covers the stores, not this print-out

		for _, s := range []string{"picked-up", "in-transit", "delivered"} {
			c.must("", "carrier", "event", tracking, "-status", s, "-db", c.path("carrier", "carrier.db"))
		}
		c.waitState(id, merchantapi.StateDelivered)
		out := c.must("", "cardholder", "status", id, "-merchant", c.url("merchant"), "-merchant-id", cShop, "-key", c.keyFile(cAlice), "-json")
		var st merchantapi.Status
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatal(err)
		}
		var states []string
		for _, e := range st.Timeline {
			if e.State != merchantstore.PaymentEvent { // the capture on shipment (e2e/lifecycle_test.go)
				states = append(states, e.State)
			}
		}
		if got := strings.Join(states, " "); !strings.Contains(got, "received authorized") || !strings.Contains(got, "shipped picked-up in-transit delivered") {
			t.Fatalf("timeline %q", got)
		}
		if st.Tracking != tracking || st.AuthCode == "" || st.Invoice == "" {
			t.Fatalf("status %+v", st)
		}
	})

	t.Run("insufficient credit is declined", func(t *testing.T) {
		c := c.with(t)
		id, state, rest, code, _ := c.orderCLI(bob, "-item", "BOOK-1984.pb=1", "-ship-to-address", c.writeAddress("bob"))
		if code == 0 || state != merchantapi.StateDeclined || rest != issuerapi.ReasonInsufficientCredit {
			t.Fatalf("order %s: exit %d, %s %s", id, code, state, rest)
		}
		if c.available(cBob) != 1000 {
			t.Fatalf("bob's credit moved to %d", c.available(cBob))
		}
		shipments, err := c.carrierStore().List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, sh := range shipments {
			if sh.OrderID == id {
				t.Fatal("a declined order was booked")
			}
		}
	})

	t.Run("a card enrolled to another identity is refused", func(t *testing.T) {
		c := c.with(t)
		mallory := c.wallet("mallory", cMallory, cardCanary) // Alice's number, Mallory's identity
		before := c.available(cAlice)
		id, state, rest, code, _ := c.orderCLI(mallory, "-item", "BOOK-1984.pb=1", "-ship-to-address", c.writeAddress("mallory"))
		if code == 0 || state != merchantapi.StateDeclined || rest != issuerapi.ReasonNotEnrolled {
			t.Fatalf("order %s: exit %d, %s %s", id, code, state, rest)
		}
		if c.available(cAlice) != before {
			t.Fatal("alice's credit moved for mallory's order")
		}
	})

	t.Run("an amount differing from the issuer section is refused", func(t *testing.T) {
		c := c.with(t)
		b := c.sealFor(cAlice, cardCanary, token, 1)
		ic, err := issuerapi.NewClient(suite.NewKeys(keys.Party(t, cShop), 8), c.url("issuer"), cBank, nil)
		if err != nil {
			t.Fatal(err)
		}
		before := c.available(cAlice)
		auth, err := ic.Authorize(context.Background(), b, 1299+1, "EUR", "")
		if err != nil {
			t.Fatal(err)
		}
		if auth.Decision != issuerapi.Declined || auth.Reason != issuerapi.ReasonAmountMismatch {
			t.Fatalf("authorization %+v", auth)
		}
		if c.available(cAlice) != before {
			t.Fatal("a mismatched amount was debited")
		}
	})

	t.Run("a retried bundle is debited once", func(t *testing.T) {
		c := c.with(t)
		b := c.sealFor(cAlice, cardCanary, token, 3)
		mc := c.merchantClient(cAlice)
		before := c.available(cAlice)
		ids := make(chan string, 4)
		errc := make(chan error, 4)
		for range 4 {
			go func() {
				acc, err := mc.Submit(context.Background(), b)
				if err != nil {
					errc <- err
					return
				}
				ids <- acc.OrderID
			}()
		}
		for range 4 {
			select {
			case err := <-errc:
				t.Fatal(err)
			case id := <-ids:
				if id != b.OrderID {
					t.Fatalf("retry answered order %s, want %s", id, b.OrderID)
				}
			}
		}
		c.waitState(b.OrderID, merchantapi.StateShipped)
		if _, err := mc.Submit(context.Background(), b); err != nil { // after shipping too
			t.Fatal(err)
		}
		if got := before - c.available(cAlice); got != 3*1299 {
			t.Fatalf("debited %d, want %d once", got, 3*1299)
		}
		iss := c.issuerStore()
		auths, err := iss.Authorizations(context.Background(), issuerstore.AuthFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if n := countFunc(auths, func(a issuerstore.Authorization) bool { return a.OrderID == b.OrderID }); n != 1 {
			t.Fatalf("%d authorizations", n)
		}
		if _, err := c.merchantStore().Get(context.Background(), b.OrderID); err != nil {
			t.Fatalf("merchant order: %v", err)
		}
		// The issuer answers a replayed relay with the same authorization.
		ic, _ := issuerapi.NewClient(suite.NewKeys(keys.Party(t, cShop), 8), c.url("issuer"), cBank, nil)
		a1, err := ic.Authorize(context.Background(), b, 3*1299, "EUR", "")
		if err != nil || a1.Decision != issuerapi.Approved {
			t.Fatalf("replayed relay: %+v %v", a1, err)
		}
		if stored, err := iss.Authorization(context.Background(), cShop, b.OrderID); err != nil || stored.AuthCode != a1.AuthCode {
			t.Fatalf("replayed relay answered code %s, stored %s", a1.AuthCode, stored.AuthCode)
		}
		// A different bundle under the used order id is refused.
		other2, err := order.Seal(&order.Order{Buyer: order.Buyer{Name: "Alice Example", Phone: "+4915112345678", Email: "alice@example.org"},
			Card: order.Card{Number: cardCanary, Expiry: "2031-12"}, Items: []order.Item{{SKU: "BOOK-1984.pb", Name: "Nineteen Eighty-Four (paperback)", Qty: 1, UnitPrice: 1299}},
			Total: 1299, Currency: "EUR", Plan: order.Plan{Installments: 1}, ShipTo: order.ShipTo{Token: token},
			Recipient: order.Recipient{Name: "Bob Beispiel", Phone: "+4917698765432"}},
			suite.NewKeys(keys.Party(t, cAlice), 4), order.Parties{Merchant: cShop, Issuer: cBank, Carrier: cParcel, Vault: cVault}, order.SealOptions{OrderID: b.OrderID})
		if err != nil {
			t.Fatal(err)
		}
		_, err = mc.Submit(context.Background(), other2)
		wantProblem(t, err, http.StatusConflict, merchantapi.CodeOrderIDReused)
	})

	t.Run("a section replayed into another order is refused", func(t *testing.T) {
		c := c.with(t)
		a := c.sealFor(cAlice, cardCanary, token, 1)
		b := c.sealFor(cAlice, cardCanary, token, 1)
		// Splice a's issuer section and commitment into b: the merchant's own
		// section still opens, the issuer's does not belong to b's header.
		b.Sections[order.RoleIssuer] = a.Sections[order.RoleIssuer]
		before := c.available(cAlice)
		acc, err := c.merchantClient(cAlice).Submit(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		c.waitState(acc.OrderID, merchantapi.StateFailed)
		if reason := c.order(acc.OrderID).Reason; reason != issuerapi.CodeSectionRefused {
			t.Fatalf("failed with %q, want %s", reason, issuerapi.CodeSectionRefused)
		}
		if c.available(cAlice) != before {
			t.Fatal("a spliced bundle was debited")
		}
	})

	t.Run("the merchant cannot open the issuer's or the carrier's section", func(t *testing.T) {
		c := c.with(t)
		b := c.sealFor(cAlice, cardCanary, token, 1)
		bundle, _ := b.MarshalJSON()
		for _, role := range []string{"issuer", "carrier"} {
			_, errs, code := c.run(string(bundle), role, "open", "-key", c.keyFile(cShop))
			if code == 0 {
				t.Fatalf("the merchant's key opened the %s section", role)
			}
			if strings.Contains(errs, cardCanary) || strings.Contains(errs, addressCanary) {
				t.Fatalf("refusal leaks: %s", errs)
			}
			if _, err := order.Open(b, suite.NewKeys(keys.Party(t, cShop), 4), order.Role(role), order.OpenOptions{}); err == nil {
				t.Fatalf("order.Open with the merchant's key opened the %s section", role)
			}
		}
	})

	t.Run("a gift ships to another cardholder's shareable token", func(t *testing.T) {
		c := c.with(t)
		id, state, _, code, errs := c.orderCLI(bob, "-item", "mug_blue-350=1", "-ship-to", token)
		if code != 0 || state != merchantapi.StateShipped {
			t.Fatalf("gift %s: exit %d %s\n%s", id, code, state, errs)
		}
	})

	t.Run("an inline address is deposited in the vault by the carrier", func(t *testing.T) {
		c := c.with(t)
		id, state, rest, code, errs := c.orderCLI(alice, "-item", "mug_blue-350=2", "-ship-to-address", c.writeAddress("alice"))
		if code != 0 || state != merchantapi.StateShipped {
			t.Fatalf("order %s: exit %d %s\n%s", id, code, state, errs)
		}
		trk := strings.Fields(rest)[0]
		sh, err := c.carrierStore().Lookup(context.Background(), trk)
		if err != nil {
			t.Fatal(err)
		}
		if tok, source := sh.ShipToken, sh.Source; !strings.HasPrefix(tok, "tok_") || source != carrierstore.Deposited {
			t.Fatalf("carrier holds %q (%s)", tok, source)
		}
		// The merchant never learns a token for an inline address.
		if c.order(id).ShipToken != "" {
			t.Fatal("the merchant holds a destination for an inline-address order")
		}
		label := c.path("carrier", "inline-label.png")
		c.must("", "carrier", "label", trk, "-o", label, "-db", c.path("carrier", "carrier.db"), "-key", c.keyFile(cParcel),
			"-vault-url", c.url("vault"), "-vault", cVault)
		if fi, err := os.Stat(label); err != nil || fi.Size() < 1000 {
			t.Fatalf("label: %v", err)
		}
		os.Remove(label)
	})

	t.Run("bad input at every endpoint gets problem+json and stores nothing", func(t *testing.T) {
		c := c.with(t)
		c.badInput(t, token)
	})

	t.Run("every request and answer on the wire matches its daemon's OpenAPI document", func(t *testing.T) {
		c.with(t).checkWire(t)
	})

	t.Run("every daemon stops cleanly and no store, log or body holds a canary in clear", func(t *testing.T) {
		c := c.with(t)
		for _, name := range []string{"merchant", "carrier", "issuer", "vault"} {
			c.stop(name)
		}
		c.canaryScan(t, shippedID)
	})
}

// writeAddress writes an inline address file for who.
func (c *cluster) writeAddress(who string) string {
	c.t.Helper()
	p := c.path(who, "inline.address.json")
	addr := `{"name":"` + who + ` Example","line1":"` + addressCanary + ` 99","city":"Hamburg","postal_code":"20095","country":"DE"}`
	if err := os.WriteFile(p, []byte(addr), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// canaryScan checks every database file, log and recorded HTTP body: the
// card number is nowhere in clear (the issuer keeps it encrypted), nor the
// address (the vault keeps it sealed).
func (c *cluster) canaryScan(t *testing.T, shippedID string) {
	t.Helper()
	scanned := 0
	err := filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(c.dir, p)
		if strings.HasPrefix(rel, "bin"+string(filepath.Separator)) || strings.HasSuffix(p, ".json") {
			return nil // binaries; the cardholders' own card and address files
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		scanned++
		for _, canary := range []string{cardCanary, bobCard, addressCanary} {
			if bytes.Contains(data, []byte(canary)) {
				t.Errorf("%s holds %s… in clear", rel, canary[:6])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"merchant/merchant.db", "issuer/issuer.db", "carrier/carrier.db", "vault/data.db", "vault/index.db", "merchant/merchant.log", "issuer/issuer.log"} {
		if _, err := os.Stat(c.path(want)); err != nil {
			t.Errorf("expected store %s: %v", want, err)
		}
	}
	if scanned < 8 {
		t.Fatalf("scanned only %d files", scanned)
	}
	bodies := 0
	for _, ex := range c.wire.all() {
		bodies++
		for _, canary := range []string{cardCanary, bobCard, addressCanary} {
			if bytes.Contains(ex.req, []byte(canary)) || bytes.Contains(ex.resp, []byte(canary)) {
				t.Errorf("%s %s %s carries %s… in clear", ex.caller, ex.method, ex.path, canary[:6])
			}
		}
	}
	if bodies < 20 {
		t.Fatalf("recorded only %d exchanges", bodies)
	}
	// The card number does rest, encrypted, at the issuer; the address,
	// sealed, in the vault's data store; the order's token at the merchant.
	// Raw SQL on purpose: the ciphertext's length at rest, which no store interface shows.
	if n := c.scalar(c.rawDB("issuer", "issuer.db"), `SELECT COUNT(*) FROM cards WHERE last4 = '1111' AND length(number_ct) > 16`); n != 1 {
		t.Errorf("issuer holds %d encrypted cards ending 1111", n)
	}
	if o, err := c.merchantStore().Get(context.Background(), shippedID); err != nil || !strings.HasPrefix(o.ShipToken, "tok_") {
		t.Errorf("merchant order %s does not hold its token", shippedID)
	}
}
