package vault_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/text/unicode/norm"

	"orderseal/order"
	"orderseal/tstest/keys"
	"orderseal/vault"
	"orderseal/vault/api"
)

// TestRegisterRefusesBadParcelData: each bad address or phone of the
// vectors gets its own problem code, and nothing reaches any store.
func TestRegisterRefusesBadParcelData(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "parcel_addresses.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Refused []struct {
			Name, Type, Code string
			Value            json.RawMessage
		}
	}
	if err := json.Unmarshal(data, &v); err != nil || len(v.Refused) < 4 {
		t.Fatalf("vectors: %d, %v", len(v.Refused), err)
	}
	e := newVaultEnv(t)
	alice := e.client(t, keys.Alice)
	ctx := context.Background()
	for _, c := range v.Refused {
		t.Run(c.Name, func(t *testing.T) {
			value := []byte(c.Value)
			if c.Type == api.TypePhone {
				var s string
				if err := json.Unmarshal(c.Value, &s); err != nil {
					t.Fatal(err)
				}
				value = []byte(s)
			}
			_, err := alice.Register(ctx, c.Type, "x", false, value)
			wantProblem(t, err, c.Code)
		})
	}
	if l, err := alice.List(ctx); err != nil || len(l) != 0 {
		t.Fatalf("alice lists %v %v", l, err)
	}
	for _, p := range []string{e.dataPath, e.backupPath} {
		if n := countRecords(t, p); n != 0 {
			t.Fatalf("%s holds %d records after refusals", p, n)
		}
	}
}

// TestRegisterParcelAddresses: NFD Hangul dedupes with NFC, a new label
// renames the token (so -ship-to newlabel finds it), and the same address
// of two owners is one shared record with a token for each.
func TestRegisterParcelAddresses(t *testing.T) {
	e := newVaultEnv(t)
	ctx := context.Background()
	alice, bob := e.client(t, keys.Alice), e.client(t, keys.Bob)
	kr := order.Address{Name: "김민수", Line1: "테헤란로 152", City: "강남구", Region: "서울특별시", PostalCode: "06236", Country: "KR"}
	nfc, _ := json.Marshal(kr)
	nfdAddr := order.Address{Name: norm.NFD.String(kr.Name), Line1: norm.NFD.String(kr.Line1), City: norm.NFD.String(kr.City),
		Region: "서울", PostalCode: " 06236", Country: "kr"}
	nfd, _ := json.Marshal(nfdAddr)
	if string(nfd) == string(nfc) {
		t.Fatal("the NFD form is the NFC form")
	}

	first := register(t, alice, api.TypeAddress, "home", false, nfc)
	again := register(t, alice, api.TypeAddress, "seoul", false, nfd)
	if again.Token != first.Token || again.Created {
		t.Fatalf("NFD re-registration: %+v, want %s", again, first.Token)
	}
	l, err := alice.List(ctx)
	if err != nil || len(l) != 1 || l[0].Label != "seoul" {
		t.Fatalf("alice lists %+v %v; want the one token, labelled seoul", l, err)
	}
	got, err := alice.RevealOwn(ctx, first.Token)
	if err != nil || string(got) != string(nfc) {
		t.Fatalf("reveal %q %v; want the NFC address", got, err)
	}

	theirs := register(t, bob, api.TypeAddress, "friend", false, nfc)
	if theirs.Token == first.Token || !theirs.Created {
		t.Fatalf("bob got %+v", theirs)
	}
	if n := countRecords(t, e.dataPath); n != 3 {
		t.Fatalf("data store holds %d records, want 3 (two tokens, one shared address)", n)
	}
	if got, err := bob.RevealOwn(ctx, theirs.Token); err != nil || string(got) != string(nfc) {
		t.Fatalf("bob reveals %q %v", got, err)
	}
	if l, _ := bob.List(ctx); len(l) != 1 || l[0].Token != theirs.Token {
		t.Fatalf("bob lists %+v", l)
	}
}

// TestBatch: one signed request registers many entries with a result per
// entry (a refusal's own code for each bad one, nothing stored for them),
// and another reveals many, with a code for a token that is not the
// caller's; each outcome is audited.
func TestBatch(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "parcel_addresses.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Refused []struct {
			Name, Type, Code string
			Value            json.RawMessage
		}
	}
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	e := newVaultEnv(t)
	ctx := context.Background()
	alice, bob := e.client(t, keys.Alice), e.client(t, keys.Bob)
	var entries []api.BatchEntry
	var want []string // "" for a good entry, else the code
	for i := range 40 {
		a := order.Address{Name: "Kim", Line1: fmt.Sprintf("테헤란로 %d", i+1), City: "강남구", Region: "서울", PostalCode: "06236", Country: "KR"}
		b, _ := json.Marshal(a)
		entries = append(entries, api.BatchEntry{Type: api.TypeAddress, Label: fmt.Sprintf("kr%d", i), Value: b})
		want = append(want, "")
	}
	for _, c := range v.Refused {
		value := []byte(c.Value)
		if c.Type == api.TypePhone {
			var s string
			json.Unmarshal(c.Value, &s)
			value = []byte(s)
		}
		entries = append(entries, api.BatchEntry{Type: c.Type, Label: "bad", Value: value})
		want = append(want, c.Code)
	}
	entries = append(entries, api.BatchEntry{Type: api.TypePhone, Label: "mobile", Value: []byte("+82 10-1234-5678")})
	want = append(want, "")
	res, err := alice.RegisterBatch(ctx, entries)
	if err != nil {
		t.Fatal(err)
	}
	var toks []string
	for i, r := range res {
		if r.Code != want[i] || (r.Code == "") != (r.Token != "") {
			t.Fatalf("entry %d: %+v, want code %q", i, r, want[i])
		}
		if r.Token != "" {
			toks = append(toks, r.Token)
		}
	}
	if n := countRecords(t, e.dataPath); n != 2*len(toks) {
		t.Fatalf("%d records for %d tokens: refused entries were stored", n, len(toks))
	}
	// A request sealed by one owner and sent by another opens for no one.
	if _, err := bob.RegisterBatch(ctx, entries[:1]); err != nil {
		t.Fatal(err)
	}

	bobs := register(t, bob, api.TypeAddress, "x", false, addressJSON(canary+" 5")).Token
	got, err := alice.RevealBatch(ctx, append(toks, bobs, "tok_nonsense"))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got[:len(toks)] {
		if r.Code != "" || len(r.Value) == 0 {
			t.Fatalf("reveal %d: %+v", i, r)
		}
	}
	if got[0].Token != toks[0] || !strings.Contains(string(got[0].Value), "테헤란로 1\"") {
		t.Fatalf("first reveal %q", got[0].Value)
	}
	if got[len(toks)].Code != "unknown-token" || got[len(toks)].Value != nil || got[len(toks)+1].Code != "unknown-token" {
		t.Fatalf("another owner's token: %+v %+v", got[len(toks)], got[len(toks)+1])
	}
	idx, err := vault.OpenIndexReader(ctx, e.indexPath)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	evs, err := idx.AuditFind(ctx, "reveal-owner", "")
	if err != nil || len(evs) != len(toks)+2 {
		t.Fatalf("%d reveal audit entries, want %d: %v", len(evs), len(toks)+2, err)
	}
	e.assertNoCanary(t)
}
