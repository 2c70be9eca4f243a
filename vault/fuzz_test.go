package vault_test

// Fuzz targets for every body the vault decodes — registrations, grants and
// granted reveals — each driven through the vault's handler behind
// web.Limit and the verifier by a correctly signed request. Seeds live in
// testdata/fuzz/<Target>/ (rewrite them with -webtest.write-corpus). Tokens
// are random, so the genuine grant and reveal of each run are built at its
// start and added beside the files.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"orderseal/internal/signedhttp"
	"orderseal/tstest/keys"
	"orderseal/tstest/webtest"

	"orderseal/order"
	"orderseal/vault"
	"orderseal/vault/api"
	"orderseal/vault/store"
)

var fuzzT0 = time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)

func fuzzNow() time.Time { return fuzzT0.Add(time.Minute) }

const (
	fuzzOrderID = "ord_fuzzfuzzfuzzfuzzfuzzfuzzaa"
	fuzzInvoice = "inv_fuzz0001"
)

// fuzzVault is a vault on stores of its own, its clock at fuzzNow, holding
// alice's address and a grant of it to the carrier for fuzzOrderID.
type fuzzVault struct {
	h     http.Handler
	st    *store.Store
	token string
	addr  []byte
}

func newFuzzVault(f *testing.F) *fuzzVault {
	f.Helper()
	dir := f.TempDir()
	for _, d := range []string{"index", "primary"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			f.Fatal(err)
		}
	}
	dk, err := store.CreateDataKey(filepath.Join(dir, "data.key"))
	if err != nil {
		f.Fatal(err)
	}
	st, err := vault.OpenStore(context.Background(), vault.StoreConfig{Index: filepath.Join(dir, "index", "index.db"),
		Data: filepath.Join(dir, "primary", "data.db"), DataKey: dk, Now: fuzzNow})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	v := &fuzzVault{st: st}
	v.addr, err = api.NormalizeAddress(order.Address{Name: "Bob Beispiel", Line1: canary + " 1", City: "Berlin", PostalCode: "10115", Country: "DE"})
	if err != nil {
		f.Fatal(err)
	}
	if v.token, _, err = st.Register(context.Background(), keys.Alice, store.TypeAddress, "home", v.addr, false, 0); err != nil {
		f.Fatal(err)
	}
	if err := st.AddGrant(context.Background(), store.Grant{Token: v.token, Merchant: keys.Shop, Carrier: keys.Parcel, OrderID: fuzzOrderID, State: store.GrantActive,
		Invoice: fuzzInvoice, Expires: fuzzT0.Add(24 * time.Hour), MaxUses: 1 << 30}); err != nil {
		f.Fatal(err)
	}
	v.h = vault.NewServer(keys.Keys(f, keys.Vault), st, vault.Options{Now: fuzzNow,
		Verifier: []signedhttp.Option{signedhttp.WithClock(fuzzNow), signedhttp.WithNonceStore(webtest.NeverSeen{})}}).Handler()
	return v
}

// post sends bodies to path signed as caller, and checks every answer is
// signed, below 500, and a problem unless 2xx.
func (v *fuzzVault) post(f *testing.F, caller, path string) func(t testing.TB, body []byte) *signedhttp.Response {
	c := signedhttp.NewClient(keys.Keys(f, caller), webtest.Client(v.h), signedhttp.WithClientClock(fuzzNow))
	return func(t testing.TB, body []byte) *signedhttp.Response {
		t.Helper()
		resp, err := c.Do(context.Background(), keys.Vault, http.MethodPost, "http://vault.fuzz"+path, body)
		if err != nil {
			t.Fatalf("an answer to a signed request does not verify: %v", err)
		}
		webtest.CheckAnswer(t, resp)
		return resp
	}
}

func mustJSON(f *testing.F, v any) []byte {
	f.Helper()
	out, err := json.Marshal(v)
	if err != nil {
		f.Fatal(err)
	}
	return out
}

// FuzzRegister: no registration body makes the vault panic or answer
// anything but a signed 2xx or problem; what it accepts re-encodes to the
// same request, and its token reveals the normalized value to the owner.
func FuzzRegister(f *testing.F) {
	v := newFuzzVault(f)
	alice := keys.Keys(f, keys.Alice)
	sealed := func(typ, label string, shareable bool, value []byte) *api.RegisterRequest {
		r := &api.RegisterRequest{Type: typ, Label: label, Shareable: shareable}
		if err := api.SealRegister(alice, keys.Vault, r, value); err != nil {
			f.Fatal(err)
		}
		return r
	}
	webtest.WriteCorpus(f, "address", mustJSON(f, sealed(api.TypeAddress, "home", false, addressJSON(canary+" 2"))))
	webtest.WriteCorpus(f, "phone", mustJSON(f, sealed(api.TypePhone, "mobile", true, []byte("+49 151 1234-5678"))))
	webtest.WriteCorpus(f, "email", mustJSON(f, sealed(api.TypeEmail, "", false, []byte("Alice@Example.org"))))
	webtest.WriteCorpus(f, "national-id", mustJSON(f, sealed(api.TypeNationalID, "id", false, []byte("l01x00t47"))))
	webtest.WriteCorpus(f, "country-zz", mustJSON(f, sealed(api.TypeAddress, "bad", false, []byte(`{"name":"X","line1":"Y 1","city":"Z","country":"ZZ"}`))))
	relabelled := sealed(api.TypeAddress, "home", false, addressJSON(canary+" 3"))
	relabelled.Label = "work"
	webtest.WriteCorpus(f, "relabelled", mustJSON(f, relabelled))
	post := v.post(f, keys.Alice, api.PathTokens)
	vaultKeys := keys.Keys(f, keys.Vault)
	webtest.MustAccept(f, webtest.Corpus(f), func(b []byte) int { return post(f, b).Status })

	f.Fuzz(func(t *testing.T, body []byte) {
		resp := post(t, body)
		if resp.Status >= 300 {
			return
		}
		var req api.RegisterRequest
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("accepted a request that does not decode: %v", err)
		}
		webtest.RoundTrip(t, &req, api.MaxBody)
		value, err := api.OpenRegister(vaultKeys, keys.Alice, &req)
		if err != nil {
			t.Fatalf("accepted a value that does not open: %v", err)
		}
		var out api.RegisterResponse
		if err := json.Unmarshal(resp.Body, &out); err != nil {
			t.Fatal(err)
		}
		got, err := v.st.Reveal(context.Background(), out.Token)
		norm, nerr := api.Normalize(req.Type, value)
		if err != nil || nerr != nil || !bytes.Equal(got, norm) {
			t.Fatalf("token %s reveals %q (%v), want %q (%v)", out.Token, got, err, norm, nerr)
		}
	})
}

// grantRequest is what the merchant relays for a bundle shipped to token.
func grantRequest(f *testing.F, b *order.Bundle, invoice string, maxUses int) []byte {
	f.Helper()
	r, err := b.ForRole(order.RoleVault)
	if err != nil {
		f.Fatal(err)
	}
	raw, err := r.MarshalJSON()
	if err != nil {
		f.Fatal(err)
	}
	return mustJSON(f, api.GrantRequest{Bundle: raw, Invoice: invoice, MaxUses: maxUses})
}

// FuzzGrant: the same for grant requests, the merchant presenting a
// bundle's vault section.
func FuzzGrant(f *testing.F) {
	v := newFuzzVault(f)
	at := order.SealOptions{Now: fuzzT0, OrderID: "ord_fuzzfuzzfuzzfuzzfuzzfuzzab"}
	genuine := grantRequest(f, bundleFor(f, keys.Alice, v.token, at), fuzzInvoice, 2)
	webtest.WriteCorpus(f, "grant", genuine)
	webtest.WriteCorpus(f, "other-owner", grantRequest(f, bundleFor(f, keys.Bob, v.token, at), fuzzInvoice, 0))
	webtest.WriteCorpus(f, "no-invoice", grantRequest(f, bundleFor(f, keys.Alice, v.token, at), "", 0))
	f.Add(genuine) // this run's token; the files name another run's
	post := v.post(f, keys.Shop, api.PathGrants)
	webtest.MustAccept(f, append(webtest.Corpus(f), genuine), func(b []byte) int { return post(f, b).Status })

	f.Fuzz(func(t *testing.T, body []byte) {
		resp := post(t, body)
		if resp.Status >= 300 {
			return
		}
		var req api.GrantRequest
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("accepted a request that does not decode: %v", err)
		}
		again := webtest.RoundTrip(t, &req, api.MaxBody)
		b := webtest.BundleRoundTrip(t, again.Bundle)
		var g api.GrantResponse
		if err := json.Unmarshal(resp.Body, &g); err != nil || g.Token != v.token || g.OrderID != b.OrderID || g.Carrier != keys.Parcel {
			t.Fatalf("granted %s (%v) for bundle %s", resp.Body, err, b.OrderID)
		}
	})
}

// FuzzRevealGranted: the same for a carrier's reveal under a grant; what
// is revealed opens, for the carrier, to the address.
func FuzzRevealGranted(f *testing.F) {
	v := newFuzzVault(f)
	genuine := mustJSON(f, api.RevealGrantRequest{Token: v.token, OrderID: fuzzOrderID, Invoice: fuzzInvoice})
	webtest.WriteCorpus(f, "reveal", genuine)
	webtest.WriteCorpus(f, "other-invoice", mustJSON(f, api.RevealGrantRequest{Token: v.token, OrderID: fuzzOrderID, Invoice: "inv_other"}))
	webtest.WriteCorpus(f, "bad-token", mustJSON(f, api.RevealGrantRequest{Token: "tok_x", OrderID: fuzzOrderID, Invoice: fuzzInvoice}))
	f.Add(genuine)
	post := v.post(f, keys.Parcel, api.PathReveal)
	webtest.MustAccept(f, append(webtest.Corpus(f), genuine), func(b []byte) int {
		return post(f, b).Status
	})
	carrierKeys := keys.Keys(f, keys.Parcel)

	f.Fuzz(func(t *testing.T, body []byte) {
		resp := post(t, body)
		if resp.Status >= 300 {
			return
		}
		var req api.RevealGrantRequest
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("accepted a request that does not decode: %v", err)
		}
		again := webtest.RoundTrip(t, &req, 4<<10)
		if *again != (api.RevealGrantRequest{Token: v.token, OrderID: fuzzOrderID, Invoice: fuzzInvoice}) {
			t.Fatalf("revealed for %+v", again)
		}
		var out api.RevealResponse
		if err := json.Unmarshal(resp.Body, &out); err != nil || !out.DisplayOnly {
			t.Fatalf("reveal answer %s (%v)", resp.Body, err)
		}
		value, err := api.OpenReveal(carrierKeys, keys.Vault, v.token, fuzzOrderID, out.Value)
		if err != nil || !bytes.Equal(value, v.addr) {
			t.Fatalf("revealed %q (%v)", value, err)
		}
	})
}

// FuzzRegisterBatch: no batch body makes the vault panic or answer
// anything but a signed 2xx or problem; an accepted batch answers every
// item, and each token reveals its item's normalized value.
func FuzzRegisterBatch(f *testing.F) {
	v := newFuzzVault(f)
	alice := keys.Keys(f, keys.Alice)
	item := func(typ, label string, value []byte) api.RegisterRequest {
		r := api.RegisterRequest{Type: typ, Label: label}
		if err := api.SealRegister(alice, keys.Vault, &r, value); err != nil {
			f.Fatal(err)
		}
		return r
	}
	webtest.WriteCorpus(f, "batch", mustJSON(f, api.BatchRegisterRequest{Items: []api.RegisterRequest{
		item(api.TypeAddress, "home", addressJSON(canary+" 7")), item(api.TypePhone, "mobile", []byte("+82 10-1234-5678")),
		item(api.TypeAddress, "bad", []byte(`{"name":"K","line1":"L 1","city":"C","region":"서울","postal_code":"0623","country":"KR"}`))}}))
	webtest.WriteCorpus(f, "empty", []byte(`{"items":[]}`))
	post := v.post(f, keys.Alice, api.PathTokensBatch)
	vaultKeys := keys.Keys(f, keys.Vault)
	webtest.MustAccept(f, webtest.Corpus(f), func(b []byte) int { return post(f, b).Status })

	f.Fuzz(func(t *testing.T, body []byte) {
		resp := post(t, body)
		if resp.Status >= 300 {
			return
		}
		var req api.BatchRegisterRequest
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("accepted a request that does not decode: %v", err)
		}
		var out api.BatchRegisterResponse
		if err := json.Unmarshal(resp.Body, &out); err != nil || len(out.Results) != len(req.Items) {
			t.Fatalf("answer %s (%v) for %d items", resp.Body, err, len(req.Items))
		}
		for i, r := range out.Results {
			if r.Code != "" {
				continue
			}
			value, err := api.OpenRegister(vaultKeys, keys.Alice, &req.Items[i])
			if err != nil {
				t.Fatalf("item %d got a token for a value that does not open", i)
			}
			norm, nerr := api.Normalize(req.Items[i].Type, value)
			got, err := v.st.Reveal(context.Background(), r.Token)
			if err != nil || nerr != nil || !bytes.Equal(got, norm) {
				t.Fatalf("item %d: token %s reveals %q (%v), want %q (%v)", i, r.Token, got, err, norm, nerr)
			}
		}
	})
}

// FuzzRevealBatch: the same for a batch reveal; every answer names its
// token, and only the owner's tokens carry a value.
func FuzzRevealBatch(f *testing.F) {
	v := newFuzzVault(f)
	webtest.WriteCorpus(f, "reveal", mustJSON(f, api.BatchRevealRequest{Tokens: []string{"tok_aaaaaaaaaaaaaaaaaaaaaaaaaa_adr", "x"}}))
	f.Add(mustJSON(f, api.BatchRevealRequest{Tokens: []string{v.token}}))
	post := v.post(f, keys.Bob, api.PathRevealBatch)
	webtest.MustAccept(f, webtest.Corpus(f), func(b []byte) int { return post(f, b).Status })
	f.Fuzz(func(t *testing.T, body []byte) {
		resp := post(t, body)
		if resp.Status >= 300 {
			return
		}
		var req api.BatchRevealRequest
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("accepted a request that does not decode: %v", err)
		}
		var out api.BatchRevealResponse
		if err := json.Unmarshal(resp.Body, &out); err != nil || len(out.Results) != len(req.Tokens) {
			t.Fatalf("answer %s (%v)", resp.Body, err)
		}
		for i, r := range out.Results {
			if r.Token != req.Tokens[i] || r.Value != nil {
				t.Fatalf("bob was answered %+v for %q (the fuzz vault's tokens are alice's)", r, req.Tokens[i])
			}
		}
	})
}
