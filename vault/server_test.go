package vault_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/signedhttp"
	"orderseal/tstest/keys"

	"orderseal/order"
	"orderseal/vault"
	"orderseal/vault/api"
	"orderseal/vault/store"
)

// TestRegister: an owner seals a value for the vault with K(owner, vault)
// and gets a typed token; the same value again (however spelled) gives the
// same token; another owner gets another token.
func TestRegister(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newVaultEnv(t)
	alice, bob := e.client(t, keys.Alice), e.client(t, keys.Bob)

	home := register(t, alice, api.TypeAddress, "home", false, addressJSON(canary+" 1"))
	if !home.Created {
		t.Fatal("first registration not created")
	}
	if x := e.rec.last(t, keys.Alice); x.status != http.StatusCreated {
		t.Fatalf("first registration: HTTP %d", x.status)
	}
	// The same place, spelled with other spaces and case: same token.
	again := register(t, alice, api.TypeAddress, "home again", false,
		[]byte(`{"name":" Bob  Beispiel","line1":"`+canary+`   1 ","city":"Berlin","postal_code":"10115","country":"de"}`))
	if again.Token != home.Token || again.Created {
		t.Fatalf("same value again: %+v, want %s not created", again, home.Token)
	}
	if x := e.rec.last(t, keys.Alice); x.status != http.StatusOK {
		t.Fatalf("repeated registration: HTTP %d", x.status)
	}
	// Another owner, same value: another token.
	bobs := register(t, bob, api.TypeAddress, "home", false, addressJSON(canary+" 1"))
	if bobs.Token == home.Token || !bobs.Created {
		t.Fatalf("bob's registration of the same value: %+v", bobs)
	}
	// Another value: another token.
	work := register(t, alice, api.TypeAddress, "work", false, addressJSON(canary+" 2"))
	if work.Token == home.Token || !work.Created {
		t.Fatalf("another value: %+v", work)
	}
	// Typed tokens.
	phone := register(t, alice, api.TypePhone, "mobile", false, []byte("+49 151 1234-5678"))
	if p2 := register(t, alice, api.TypePhone, "mobile", false, []byte("+4915112345678")); p2.Token != phone.Token {
		t.Fatalf("phone dedupe: %s vs %s", p2.Token, phone.Token)
	}
	if ty, _ := store.ParseTokenType(phone.Token); ty != store.TypePhone {
		t.Fatalf("phone token %s has type %s", phone.Token, ty)
	}

	// The sealed value binds owner, type, label and shareable.
	aliceKeys := keys.Keys(t, keys.Alice)
	req := &api.RegisterRequest{Type: api.TypeAddress, Label: "home"}
	if err := api.SealRegister(aliceKeys, keys.Vault, req, addressJSON(canary+" 3")); err != nil {
		t.Fatal(err)
	}
	post := func(caller string, r *api.RegisterRequest) error {
		return e.raw(t, caller).DoJSON(ctx, keys.Vault, http.MethodPost, e.ts.URL+api.PathTokens, r, nil)
	}
	relabelled := *req
	relabelled.Label = "work"
	wantProblem(t, post(keys.Alice, &relabelled), "sealed-value")
	shared := *req
	shared.Shareable = true
	wantProblem(t, post(keys.Alice, &shared), "sealed-value")
	// Bob replaying alice's sealed value as his own: it was not sealed with K(bob, vault).
	wantProblem(t, post(keys.Bob, req), "sealed-value")
	// Only cardholders register.
	// Only cardholders and carriers register; a carrier cannot pass off a
	// cardholder's sealed value as its own.
	wantProblem(t, post(keys.Shop, req), "forbidden-role")
	wantProblem(t, post(keys.Bank, req), "forbidden-role")
	wantProblem(t, post(keys.Parcel, req), "deposit-order")
	dep := *req
	dep.Deposit = &api.Deposit{Merchant: keys.Shop, OrderID: "ord-1", Invoice: "INV-1"}
	wantProblem(t, post(keys.Parcel, &dep), "sealed-value")
	wantProblem(t, post(keys.Alice, &dep), "deposit-order")
	// A value that is not an address.
	if _, err := alice.Register(ctx, api.TypeAddress, "bad", false, []byte(`{"name":"X","line1":"`+canary+` 9","city":"Berlin","country":"ZZ"}`)); err == nil {
		t.Fatal("an address in country ZZ was accepted")
	} else {
		wantProblem(t, err, "address-field-invalid")
	}
	e.assertNoCanary(t)
}

// TestListAndRevealOwn: owners list their tokens with labels and no PII,
// and reveal their own tokens; nobody else can.
func TestListAndRevealOwn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newVaultEnv(t)
	alice, bob := e.client(t, keys.Alice), e.client(t, keys.Bob)
	home := register(t, alice, api.TypeAddress, "home", false, addressJSON(canary+" 1")).Token
	mobile := register(t, alice, api.TypePhone, "mobile", true, []byte("+4915112345678")).Token
	bobHome := register(t, bob, api.TypeAddress, "bob's", false, addressJSON("5 Bob Road")).Token

	entries, err := alice.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("alice lists %d entries: %+v", len(entries), entries)
	}
	want := map[string]api.Entry{
		home:   {Token: home, Type: "adr", Label: "home", Epoch: 1, Shareable: false},
		mobile: {Token: mobile, Type: "phn", Label: "mobile", Epoch: 1, Shareable: true},
	}
	for _, got := range entries {
		w, ok := want[got.Token]
		if !ok || got.Type != w.Type || got.Label != w.Label || got.Epoch != 1 || got.Shareable != w.Shareable || got.ReplacedBy != "" {
			t.Fatalf("entry %+v, want %+v", got, w)
		}
		if _, err := time.Parse(time.RFC3339, got.Created); err != nil {
			t.Fatalf("created %q: %v", got.Created, err)
		}
	}
	list := e.rec.last(t, keys.Alice)
	for _, pii := range []string{canary, "Berlin", "Beispiel", "10115", "4915112345678"} {
		if bytes.Contains(list.respBody, []byte(pii)) {
			t.Fatalf("the list response holds %q: %s", pii, list.respBody)
		}
	}
	if got, err := bob.List(ctx); err != nil || len(got) != 1 || got[0].Token != bobHome {
		t.Fatalf("bob lists %+v %v", got, err)
	}

	v, err := alice.RevealOwn(ctx, home)
	if err != nil {
		t.Fatal(err)
	}
	norm, _ := api.Normalize(api.TypeAddress, addressJSON(canary+" 1"))
	if !bytes.Equal(v, norm) {
		t.Fatalf("reveal own: %s, want %s", v, norm)
	}
	var rr api.RevealResponse
	if err := json.Unmarshal(e.rec.last(t, keys.Alice).respBody, &rr); err != nil || rr.DisplayOnly || rr.Token != home || rr.Type != "adr" {
		t.Fatalf("owner reveal response %+v %v", rr, err)
	}
	if v, err := alice.RevealOwn(ctx, mobile); err != nil || string(v) != "+4915112345678" {
		t.Fatalf("reveal phone: %q %v", v, err)
	}

	// Another cardholder learns nothing, not even that the token exists.
	wantProblem(t, func() error { _, err := bob.RevealOwn(ctx, home); return err }(), "unknown-token")
	wantProblem(t, func() error { _, err := alice.RevealOwn(ctx, bobHome); return err }(), "unknown-token")
	wantProblem(t, func() error { _, err := alice.RevealOwn(ctx, "tok_nope_adr"); return err }(), "unknown-token")
	// Shareable lets others ship to a token, never read it.
	wantProblem(t, func() error { _, err := bob.RevealOwn(ctx, mobile); return err }(), "unknown-token")
	// Merchants and issuers have no owner routes; a carrier owns only what
	// it deposited.
	for _, id := range []string{keys.Shop, keys.Bank} {
		c := e.client(t, id)
		wantProblem(t, func() error { _, err := c.List(ctx); return err }(), "forbidden-role")
		wantProblem(t, func() error { _, err := c.RevealOwn(ctx, home); return err }(), "forbidden-role")
	}
	parcel := e.client(t, keys.Parcel)
	if got, err := parcel.List(ctx); err != nil || len(got) != 0 {
		t.Fatalf("a carrier that deposited nothing lists %+v %v", got, err)
	}
	wantProblem(t, func() error { _, err := parcel.RevealOwn(ctx, home); return err }(), "deposit-needs-grant")
	e.assertNoCanary(t)
}

// rawGrant posts a grant request api.Client would not send.
func rawGrant(t *testing.T, e *vaultEnv, caller string, bundle []byte, invoice string) error {
	t.Helper()
	return e.raw(t, caller).DoJSON(context.Background(), keys.Vault, http.MethodPost, e.ts.URL+api.PathGrants,
		api.GrantRequest{Bundle: bundle, Invoice: invoice, MaxUses: 1}, nil)
}

// sameGrant compares two answers about one grant, whatever audit
// checkpoint each carried (a later answer carries a later one).
func sameGrant(a, b *api.GrantResponse) bool {
	x, y := *a, *b
	x.AuditCheckpoint, y.AuditCheckpoint = nil, nil
	return x == y && a.AuditCheckpoint != nil && b.AuditCheckpoint != nil && a.AuditCheckpoint.Seq >= b.AuditCheckpoint.Seq
}

func marshalBundle(t *testing.T, b *order.Bundle) []byte {
	t.Helper()
	data, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestGrant: a merchant obtains a grant only by presenting a valid vault
// section the token's owner sealed for this vault, this merchant and the
// bundle's carrier, before it expires.
func TestGrant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newVaultEnv(t)
	alice, bob := e.client(t, keys.Alice), e.client(t, keys.Bob)
	shop, otherShop, parcel := e.client(t, keys.Shop), e.client(t, keys.OtherShop), e.client(t, keys.Parcel)
	home := register(t, alice, api.TypeAddress, "home", false, addressJSON(canary+" 1")).Token
	gift := register(t, alice, api.TypeAddress, "gift", true, addressJSON(canary+" 2")).Token
	bobHome := register(t, bob, api.TypeAddress, "home", false, addressJSON("5 Bob Road")).Token

	t.Run("granted", func(t *testing.T) {
		b := bundleFor(t, keys.Alice, home, order.SealOptions{GrantUses: 2})
		g, err := shop.Grant(ctx, b, "INV-1", approve(t, b))
		if err != nil {
			t.Fatal(err)
		}
		exp, err := time.Parse(time.RFC3339, g.Expires)
		if err != nil || g.Token != home || g.Carrier != keys.Parcel || g.OrderID != b.OrderID || g.MaxUses != 2 {
			t.Fatalf("grant %+v %v", g, err)
		}
		if now := time.Now(); !exp.After(now.Add(29*24*time.Hour)) || exp.After(now.Add(vault.MaxGrantTTL)) {
			t.Fatalf("grant expires %s", exp)
		}
		// Presenting the same bundle again is idempotent...
		if g2, err := shop.Grant(ctx, b, "INV-1", approve(t, b)); err != nil || !sameGrant(g2, g) {
			t.Fatalf("same grant again: %+v %v", g2, err)
		}
		// ...and a retry naming another invoice gets the first answer.
		if g2, err := shop.Grant(ctx, b, "INV-2", approve(t, b)); err != nil || !sameGrant(g2, g) {
			t.Fatalf("retry with another invoice: %+v %v", g2, err)
		}
		// A section sealed without uses gets the short defaults, pending
		// until the issuer's approval.
		if g, err := shop.Grant(ctx, bundleFor(t, keys.Alice, home, order.SealOptions{}), "INV-3", ""); err != nil ||
			g.MaxUses != vault.DefaultGrantUses || g.State != api.GrantPending {
			t.Fatalf("default uses: %+v %v", g, err)
		} else if exp, _ := time.Parse(time.RFC3339, g.Expires); exp.After(time.Now().Add(vault.DefaultGrantTTL)) {
			t.Fatalf("default expiry %s, want within %s", exp, vault.DefaultGrantTTL)
		}
	})

	t.Run("gift: another cardholder ships to a shareable token", func(t *testing.T) {
		b := bundleFor(t, keys.Bob, gift, order.SealOptions{})
		if _, err := shop.Grant(ctx, b, "INV-G", approve(t, b)); err != nil {
			t.Fatal(err)
		}
		v, err := parcel.RevealGranted(ctx, gift, b.OrderID, "INV-G")
		want, _ := api.Normalize(api.TypeAddress, addressJSON(canary+" 2"))
		if err != nil || !bytes.Equal(v, want) {
			t.Fatalf("carrier reveal of the gift address: %q %v", v, err)
		}
	})

	type refusal struct {
		name, code string
		send       func(t *testing.T) (token, orderID string, err error)
	}
	viaShop := func(b *order.Bundle, token string) func(t *testing.T) (string, string, error) {
		return func(t *testing.T) (string, string, error) {
			_, err := shop.Grant(ctx, b, "INV-1", approve(t, b))
			return token, b.OrderID, err
		}
	}
	unknown, _ := store.NewToken(store.TypeAddress)
	refusals := []refusal{
		{"another cardholder's token, not shareable", "not-owner", viaShop(bundleFor(t, keys.Bob, home, order.SealOptions{}), home)},
		{"alice ships to bob's token", "not-owner", viaShop(bundleFor(t, keys.Alice, bobHome, order.SealOptions{}), bobHome)},
		{"vault section spliced from another bundle", "vault-section-invalid", func(t *testing.T) (string, string, error) {
			a, b := bundleFor(t, keys.Alice, home, order.SealOptions{}), bundleFor(t, keys.Alice, home, order.SealOptions{})
			a.Sections[order.RoleVault] = b.Sections[order.RoleVault]
			return viaShop(a, home)(t)
		}},
		{"vault section and commitment spliced from another bundle", "vault-section-invalid", func(t *testing.T) (string, string, error) {
			a, b := bundleFor(t, keys.Alice, home, order.SealOptions{}), bundleFor(t, keys.Alice, home, order.SealOptions{})
			a.Sections[order.RoleVault] = b.Sections[order.RoleVault]
			a.Commitments[order.RoleVault] = b.Commitments[order.RoleVault]
			return viaShop(a, home)(t)
		}},
		{"merchant swaps the carrier in the header", "vault-section-invalid", func(t *testing.T) (string, string, error) {
			b := bundleFor(t, keys.Alice, home, order.SealOptions{})
			b.Parties[order.RoleCarrier] = keys.OtherCarrier
			return viaShop(b, home)(t)
		}},
		{"merchant relays no vault section", "vault-section-invalid", func(t *testing.T) (string, string, error) {
			b := bundleFor(t, keys.Alice, home, order.SealOptions{})
			m, err := b.ForRole(order.RoleMerchant)
			if err != nil {
				t.Fatal(err)
			}
			return home, b.OrderID, rawGrant(t, e, keys.Shop, marshalBundle(t, m), "INV-1")
		}},
		{"order shipped to an inline address", "no-vault-section", func(t *testing.T) (string, string, error) {
			addr := order.Address{Name: "Bob", Line1: "1 Inline Street", City: "Berlin", PostalCode: "10115", Country: "DE"}
			p := stdParties
			p.Vault = ""
			b := sealOrder(t, keys.Alice, "", &addr, p, order.SealOptions{})
			return home, b.OrderID, rawGrant(t, e, keys.Shop, marshalBundle(t, b), "INV-1")
		}},
		{"bundle for another vault", "no-vault-section", func(t *testing.T) (string, string, error) {
			p := stdParties
			p.Vault = "vault:other.example"
			return viaShop(sealOrder(t, keys.Alice, home, nil, p, order.SealOptions{}), home)(t)
		}},
		{"cardholder named another carrier in the vault section", "wrong-carrier", func(t *testing.T) (string, string, error) {
			b := bundleFor(t, keys.Alice, home, order.SealOptions{})
			resealVault(t, b, order.VaultGrant{Token: home, Merchant: keys.Shop, Carrier: keys.OtherCarrier,
				Expires: time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
			return viaShop(b, home)(t)
		}},
		{"cardholder authorized another merchant", "wrong-merchant", func(t *testing.T) (string, string, error) {
			b := bundleFor(t, keys.Alice, home, order.SealOptions{})
			resealVault(t, b, order.VaultGrant{Token: home, Merchant: keys.OtherShop, Carrier: keys.Parcel,
				Expires: time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
			return viaShop(b, home)(t)
		}},
		{"presented by a merchant other than the bundle's", "wrong-merchant", func(t *testing.T) (string, string, error) {
			b := bundleFor(t, keys.Alice, home, order.SealOptions{})
			_, err := otherShop.Grant(ctx, b, "INV-1", approve(t, b))
			return home, b.OrderID, err
		}},
		{"bundle expired", "bundle-expired", viaShop(bundleFor(t, keys.Alice, home,
			order.SealOptions{Now: time.Now().Add(-3 * time.Hour), Lifetime: time.Hour}), home)},
		{"grant expired before it was presented", "grant-expired", viaShop(bundleFor(t, keys.Alice, home,
			order.SealOptions{Now: time.Now().Add(-time.Minute), GrantTTL: time.Second}), home)},
		{"token the vault never issued", "unknown-token", viaShop(bundleFor(t, keys.Alice, unknown, order.SealOptions{}), unknown)},
		{"not a bundle", "bad-bundle", func(t *testing.T) (string, string, error) {
			return home, "ord-none", rawGrant(t, e, keys.Shop, []byte(`{"v":1}`), "INV-1")
		}},
		{"a carrier asks for a grant", "forbidden-role", func(t *testing.T) (string, string, error) {
			b := bundleFor(t, keys.Alice, home, order.SealOptions{})
			_, err := parcel.Grant(ctx, b, "INV-1", approve(t, b))
			return home, b.OrderID, err
		}},
		{"the cardholder asks for a grant", "forbidden-role", func(t *testing.T) (string, string, error) {
			b := bundleFor(t, keys.Alice, home, order.SealOptions{})
			_, err := alice.Grant(ctx, b, "INV-1", approve(t, b))
			return home, b.OrderID, err
		}},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			token, orderID, err := tc.send(t)
			if err == nil {
				t.Fatalf("granted; want %s", tc.code)
			}
			wantProblem(t, err, tc.code)
			// No grant came of it: the carrier sees nothing.
			_, err = parcel.RevealGranted(ctx, token, orderID, "INV-1")
			wantProblem(t, err, "no-grant")
		})
	}

	n, err := vault.VerifyAudit(ctx, e.indexPath)
	if err != nil || n < len(refusals)+5 {
		t.Fatalf("audit: %d entries, %v", n, err)
	}
	e.assertNoCanary(t)
}

// TestRevealGranted: the granted carrier reveals the token for the order
// and invoice of the grant, display only, sealed for it alone, as many times
// as the grant allows; nobody else, and not for another invoice.
func TestRevealGranted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newVaultEnv(t)
	alice, shop := e.client(t, keys.Alice), e.client(t, keys.Shop)
	parcel, otherCarrier := e.client(t, keys.Parcel), e.client(t, keys.OtherCarrier)
	home := register(t, alice, api.TypeAddress, "home", false, addressJSON(canary+" 1")).Token
	want, err := alice.RevealOwn(ctx, home)
	if err != nil {
		t.Fatal(err)
	}
	b := bundleFor(t, keys.Alice, home, order.SealOptions{GrantUses: 2})

	// A merchant that merely knows the token (it is in its own section)
	// cannot have it revealed: there is no grant yet.
	wantProblem(t, func() error { _, err := parcel.RevealGranted(ctx, home, b.OrderID, "INV-1"); return err }(), "no-grant")
	wantProblem(t, func() error { _, err := shop.RevealGranted(ctx, home, b.OrderID, "INV-1"); return err }(), "forbidden-role")
	wantProblem(t, func() error { _, err := shop.RevealOwn(ctx, home); return err }(), "forbidden-role")

	if _, err := shop.Grant(ctx, b, "INV-1", approve(t, b)); err != nil {
		t.Fatal(err)
	}
	got, err := parcel.RevealGranted(ctx, home, b.OrderID, "INV-1")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("granted reveal: %q %v", got, err)
	}
	x := e.rec.last(t, keys.Parcel)
	if cc := x.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q", cc)
	}
	var rr api.RevealResponse
	if err := json.Unmarshal(x.respBody, &rr); err != nil || !rr.DisplayOnly || rr.Token != home || rr.Type != "adr" {
		t.Fatalf("grantee reveal response %+v %v", rr, err)
	}
	// Sealed with K(vault, carrier) for this token and order only.
	if v, err := api.OpenReveal(keys.Keys(t, keys.Parcel), keys.Vault, home, b.OrderID, rr.Value); err != nil || !bytes.Equal(v, want) {
		t.Fatalf("the carrier's own key: %q %v", v, err)
	}
	for _, id := range []string{keys.OtherCarrier, keys.Shop, keys.Alice} {
		if _, err := api.OpenReveal(keys.Keys(t, id), keys.Vault, home, b.OrderID, rr.Value); !errors.Is(err, api.ErrSeal) {
			t.Fatalf("%s opened the carrier's answer: %v", id, err)
		}
	}
	if _, err := api.OpenReveal(keys.Keys(t, keys.Parcel), keys.Vault, home, "ord-other", rr.Value); !errors.Is(err, api.ErrSeal) {
		t.Fatalf("the answer opened for another order: %v", err)
	}

	// Refusals, none of which uses up the grant.
	reveal := func(c *api.Client, token, orderID, invoice string) error {
		_, err := c.RevealGranted(ctx, token, orderID, invoice)
		return err
	}
	wantProblem(t, reveal(parcel, home, b.OrderID, "INV-2"), "invoice-mismatch")
	wantProblem(t, reveal(otherCarrier, home, b.OrderID, "INV-1"), "no-grant")
	wantProblem(t, reveal(parcel, home, "ord-other", "INV-1"), "no-grant")
	other := register(t, alice, api.TypeAddress, "work", false, addressJSON(canary+" 2")).Token
	wantProblem(t, reveal(parcel, other, b.OrderID, "INV-1"), "no-grant")
	wantProblem(t, reveal(alice, home, b.OrderID, "INV-1"), "forbidden-role")
	wantProblem(t, reveal(shop, home, b.OrderID, "INV-1"), "forbidden-role")
	wantProblem(t, reveal(e.client(t, keys.Bank), home, b.OrderID, "INV-1"), "forbidden-role")
	for _, x := range e.rec.all() {
		if x.status >= 400 && x.header.Get("Content-Type") != rfc9457.ContentType {
			t.Fatalf("refusal %s %s without a problem document", x.method, x.path)
		}
	}

	// The second use is the last.
	if got, err := parcel.RevealGranted(ctx, home, b.OrderID, "INV-1"); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("second use: %q %v", got, err)
	}
	wantProblem(t, reveal(parcel, home, b.OrderID, "INV-1"), "grant-used-up")
	e.assertNoCanary(t)
}

// TestGrantUsesConcurrent: uses are counted atomically.
func TestGrantUsesConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newVaultEnv(t)
	home := register(t, e.client(t, keys.Alice), api.TypeAddress, "home", false, addressJSON(canary+" 1")).Token
	b := bundleFor(t, keys.Alice, home, order.SealOptions{GrantUses: 3})
	if _, err := e.client(t, keys.Shop).Grant(ctx, b, "INV-1", approve(t, b)); err != nil {
		t.Fatal(err)
	}
	parcel := e.client(t, keys.Parcel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for range 8 {
		wg.Go(func() {
			_, err := parcel.RevealGranted(ctx, home, b.OrderID, "INV-1")
			code := "ok"
			var p *rfc9457.Problem
			if errors.As(err, &p) {
				code = p.Code
			} else if err != nil {
				code = err.Error()
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if codes["ok"] != 3 || codes["grant-used-up"] != 5 {
		t.Fatalf("8 concurrent reveals on a 3-use grant: %v", codes)
	}
}

// TestGrantPresentedConcurrently: one vault section presented by several
// merchant nodes at once (two runs of one relay job, each with an invoice
// of its own) makes one grant, and every presentation is answered with it,
// as a retry is — not grant-conflict, which failed an order that shipped
// on the other run (found by TestPostgresChaos).
func TestGrantPresentedConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newVaultEnv(t)
	home := register(t, e.client(t, keys.Alice), api.TypeAddress, "home", false, addressJSON(canary+" 1")).Token
	shop := e.client(t, keys.Shop)
	for round := range 5 {
		b := bundleFor(t, keys.Alice, home, order.SealOptions{GrantUses: 3})
		const nodes = 4
		var wg sync.WaitGroup
		grants := make([]*api.GrantResponse, nodes)
		errs := make([]error, nodes)
		for i := range nodes {
			wg.Go(func() { grants[i], errs[i] = shop.Grant(ctx, b, fmt.Sprintf("INV-%d-%d", round, i), "") })
		}
		wg.Wait()
		// The grant as every answer names it (a new pending grant's first
		// answer carries no id yet, and checkpoints move on).
		same := func(a, b *api.GrantResponse) bool {
			return a.Token == b.Token && a.Carrier == b.Carrier && a.OrderID == b.OrderID && a.Invoice == b.Invoice &&
				a.State == b.State && a.Expires == b.Expires && a.MaxUses == b.MaxUses
		}
		for i := range nodes {
			if errs[i] != nil || !same(grants[i], grants[0]) || grants[i].State != api.GrantPending {
				t.Fatalf("round %d, presentation %d: %+v %v (first: %+v)", round, i, grants[i], errs[i], grants[0])
			}
		}
	}
}

// TestGrantExpiry: past the expiry the cardholder sealed, the grant is dead.
func TestGrantExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newVaultEnv(t)
	home := register(t, e.client(t, keys.Alice), api.TypeAddress, "home", false, addressJSON(canary+" 1")).Token
	b := bundleFor(t, keys.Alice, home, order.SealOptions{GrantUses: 10, GrantTTL: time.Hour})
	shop, parcel := e.client(t, keys.Shop), e.client(t, keys.Parcel)
	g, err := shop.Grant(ctx, b, "INV-1", approve(t, b))
	if err != nil {
		t.Fatal(err)
	}
	if exp, _ := time.Parse(time.RFC3339, g.Expires); exp.After(time.Now().Add(time.Hour)) || exp.Before(time.Now().Add(58*time.Minute)) {
		t.Fatalf("grant expires %s, want in an hour", g.Expires)
	}
	if _, err := parcel.RevealGranted(ctx, home, b.OrderID, "INV-1"); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(55 * time.Minute)
	if _, err := parcel.RevealGranted(ctx, home, b.OrderID, "INV-1"); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	e.clk.Advance(6 * time.Minute)
	_, err = parcel.RevealGranted(ctx, home, b.OrderID, "INV-1")
	wantProblem(t, err, "grant-expired")
	// Nor can the merchant renew it with the same bundle.
	_, err = shop.Grant(ctx, b, "INV-1", approve(t, b))
	wantProblem(t, err, "grant-expired")
	e.assertNoCanary(t)
}

// TestRotationGrace: after rotation the owner's list shows the old token
// replaced by the new one; both resolve (and a grant on the old one works)
// during the grace period, the old one not after it.
func TestRotationGrace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newVaultEnv(t)
	alice, shop, parcel := e.client(t, keys.Alice), e.client(t, keys.Shop), e.client(t, keys.Parcel)
	old := register(t, alice, api.TypeAddress, "home", false, addressJSON(canary+" 1")).Token
	want, _ := alice.RevealOwn(ctx, old)
	b := bundleFor(t, keys.Alice, old, order.SealOptions{GrantUses: 3})
	if _, err := shop.Grant(ctx, b, "INV-1", approve(t, b)); err != nil {
		t.Fatal(err)
	}

	e.clk.Advance(time.Minute)
	if n, err := e.st.Rotate(ctx, time.Second, time.Hour); err != nil || n != 1 {
		t.Fatalf("rotate: %d %v", n, err)
	}
	entries, err := alice.List(ctx)
	if err != nil || len(entries) != 2 {
		t.Fatalf("list after rotation: %+v %v", entries, err)
	}
	oldE, newE := entries[0], entries[1]
	if oldE.Token != old || oldE.ReplacedBy != newE.Token || oldE.Expires == "" || newE.Epoch != 2 || newE.Label != "home" || newE.ReplacedBy != "" {
		t.Fatalf("list after rotation: %+v", entries)
	}
	for _, tok := range []string{old, newE.Token} {
		if v, err := alice.RevealOwn(ctx, tok); err != nil || !bytes.Equal(v, want) {
			t.Fatalf("reveal %s in grace: %q %v", tok, v, err)
		}
	}
	if v, err := parcel.RevealGranted(ctx, old, b.OrderID, "INV-1"); err != nil || !bytes.Equal(v, want) {
		t.Fatalf("granted reveal of the old token in grace: %q %v", v, err)
	}
	// The same value registered again maps to the live token.
	if r := register(t, alice, api.TypeAddress, "home", false, addressJSON(canary+" 1")); r.Token != newE.Token || r.Created {
		t.Fatalf("register after rotation: %+v, want %s", r, newE.Token)
	}

	e.clk.Advance(2 * time.Hour)
	if entries, err := alice.List(ctx); err != nil || len(entries) != 1 || entries[0].Token != newE.Token {
		t.Fatalf("list after grace: %+v %v", entries, err)
	}
	wantProblem(t, func() error { _, err := alice.RevealOwn(ctx, old); return err }(), "token-expired")
	if v, err := alice.RevealOwn(ctx, newE.Token); err != nil || !bytes.Equal(v, want) {
		t.Fatalf("new token after grace: %q %v", v, err)
	}
	wantProblem(t, func() error { _, err := parcel.RevealGranted(ctx, old, b.OrderID, "INV-1"); return err }(), "token-expired")
	// A fresh bundle for the dead token gets no grant.
	_, err = shop.Grant(ctx, bundleFor(t, keys.Alice, old, order.SealOptions{}), "INV-2", "")
	wantProblem(t, err, "token-expired")
	e.assertNoCanary(t)
}

// TestGrantBadInvoice: an invoice the store refuses is the caller's
// mistake (4xx), not a vault outage.
func TestGrantBadInvoice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newVaultEnv(t)
	home := register(t, e.client(t, keys.Alice), api.TypeAddress, "home", false, addressJSON(canary+" 1")).Token
	b := bundleFor(t, keys.Alice, home, order.SealOptions{})
	_, err := e.client(t, keys.Shop).Grant(ctx, b, "INV\x01", approve(t, b))
	if p := wantProblem(t, err, "invalid-request"); p.Status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d", p.Status)
	}
}

// TestWrongKey: a caller holding a key for the right identity from another
// key center is refused with wrong-key, and the client, which cannot verify
// the vault's signed refusal, reports it as such.
func TestWrongKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newVaultEnv(t)
	impostor := e.clientWithKey(t, keys.Rogue(t).Party(t, keys.Alice))
	_, err := impostor.Register(ctx, api.TypeAddress, "home", false, addressJSON(canary+" 1"))
	if !errors.Is(err, signedhttp.ErrForgedResponse) || !strings.Contains(err.Error(), `"wrong-key"`) {
		t.Fatalf("impostor: %v", err)
	}
	x := e.rec.last(t, keys.Alice)
	p, derr := rfc9457.Decode(x.respBody)
	if x.status != http.StatusUnauthorized || derr != nil || p.Code != "wrong-key" {
		t.Fatalf("impostor got HTTP %d %+v %v", x.status, p, derr)
	}
	if entries, err := e.client(t, keys.Alice).List(ctx); err != nil || len(entries) != 0 {
		t.Fatalf("the impostor registered something: %+v %v", entries, err)
	}
	e.assertNoCanary(t)
}

// TestCarrierDeposit: a carrier given an inline address deposits it as its
// own token (DESIGN.md §6.6) and reveals it later to print the label; no
// other carrier, cardholder or merchant can.
func TestCarrierDeposit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newVaultEnv(t)
	parcel, other := e.client(t, keys.Parcel), e.client(t, keys.OtherCarrier)
	addr := addressJSON(canary + " 4")
	deposit := func(c *api.Client, orderID string) *api.RegisterResponse {
		t.Helper()
		r, err := c.Deposit(ctx, keys.Shop, orderID, "INV-1", addr)
		if err != nil {
			t.Fatalf("deposit %s: %v", orderID, err)
		}
		return r
	}
	dep := deposit(parcel, "ord-inline-1")
	if !dep.Created {
		t.Fatal("deposit not created")
	}
	// A retried deposit of the same address gets the same token.
	if again := deposit(parcel, "ord-inline-1"); again.Token != dep.Token || again.Created {
		t.Fatalf("repeated deposit: %+v, want %s", again, dep.Token)
	}
	norm, _ := api.Normalize(api.TypeAddress, addr)
	// The deposit belongs to its order: revealed under its grant only.
	if v, err := parcel.RevealGranted(ctx, dep.Token, "ord-inline-1", "INV-1"); err != nil || !bytes.Equal(v, norm) {
		t.Fatalf("carrier reveals its deposit under the order's grant: %q %v", v, err)
	}
	wantProblem(t, func() error { _, err := parcel.RevealOwn(ctx, dep.Token); return err }(), "deposit-needs-grant")
	if got, err := parcel.List(ctx); err != nil || len(got) != 1 || got[0].Token != dep.Token || got[0].Label != "ord-inline-1" {
		t.Fatalf("carrier lists %+v %v", got, err)
	}
	tests := []struct {
		name string
		id   string
		code string
	}{
		{"another carrier", keys.OtherCarrier, "deposit-needs-grant"},
		{"a cardholder", keys.Alice, "unknown-token"},
		{"the merchant", keys.Shop, "forbidden-role"},
		{"an issuer", keys.Bank, "forbidden-role"},
	}
	for _, tt := range tests {
		c := e.client(t, tt.id)
		_, err := c.RevealOwn(ctx, dep.Token)
		wantProblem(t, err, tt.code)
	}
	// The other carrier's own deposit of the same place is another token.
	if o := deposit(other, "ord-inline-2"); o.Token == dep.Token {
		t.Fatal("two carriers share a token")
	}
	wantProblem(t, func() error { _, err := other.RevealGranted(ctx, dep.Token, "ord-inline-1", "INV-1"); return err }(), "no-grant")
	wantProblem(t, func() error { _, err := parcel.RevealGranted(ctx, dep.Token, "ord-inline-1", "INV-X"); return err }(), "invoice-mismatch")
	e.assertNoCanary(t)
}
