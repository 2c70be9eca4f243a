package e2e

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"orderseal/internal/signedhttp"
	"orderseal/suite"
	"orderseal/tstest/keys"
	"orderseal/tstest/webtest"
	"orderseal/vault"
	"orderseal/vault/api"
)

// TestReplayedRevealAfterVaultRestart is issue 16 item 3: a carrier's
// reveal captured on the wire and replayed after the vault process
// restarts (on the same databases) is refused as a replay — 401
// replayed-nonce — because the vault's nonces are in its index, not in
// its memory. The replay uses up nothing of the grant, so the carrier's
// genuine reveal afterwards still succeeds, and the audit log holds the
// genuine reveals only.
func TestReplayedRevealAfterVaultRestart(t *testing.T) {
	ctx := context.Background()
	v := newVaultProc(t)
	v.start()
	wl := &wireLog{}
	aliceKey := keys.Party(t, vAlice)
	alice, shop := v.client(t, aliceKey, wl), v.client(t, keys.Party(t, vShop), wl)
	res, err := alice.Register(ctx, api.TypeAddress, "home", false, vAddress(0))
	if err != nil {
		t.Fatal(err)
	}
	home := res.Token
	b := sealVaultOrder(t, aliceKey, home)
	const uses = 2 // the genuine label print and its reprint (the grant allows vault.DefaultGrantUses)
	if _, err := shop.Grant(ctx, b, "INV-1", approve(t, b)); err != nil {
		t.Fatal(err)
	}

	tap := &webtest.Tap{}
	carrierAt := func(url string) *api.Client {
		c, err := api.NewClient(suite.NewKeys(keys.Party(t, vParcel), 8), url, vVault,
			&http.Client{Timeout: 30 * time.Second, Transport: tap})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if got, err := carrierAt(v.url).RevealGranted(ctx, home, b.OrderID, "INV-1"); err != nil || !bytes.Equal(got, vAddress(0)) {
		t.Fatalf("genuine reveal: %q %v", got, err)
	}
	captured := tap.Last(t)
	if captured.Target != api.PathReveal {
		t.Fatalf("captured %s %s, want the reveal", captured.Method, captured.Target)
	}
	if status, code := webtest.Replay(t, nil, v.url, captured); status != http.StatusUnauthorized || code != signedhttp.CodeReplayedNonce {
		t.Fatalf("replay to the running vault: HTTP %d %q, want 401 %q", status, code, signedhttp.CodeReplayedNonce)
	}

	// The vault restarts on the same index and data files.
	v.stop()
	v.start()
	for i := range 3 { // whichever the attacker tries, however often
		if status, code := webtest.Replay(t, nil, v.url, captured); status != http.StatusUnauthorized || code != signedhttp.CodeReplayedNonce {
			t.Fatalf("replay %d after the restart: HTTP %d %q, want 401 %q", i+1, status, code, signedhttp.CodeReplayedNonce)
		}
	}
	// The grant is not used up: the carrier's genuine reprint succeeds.
	if got, err := carrierAt(v.url).RevealGranted(ctx, home, b.OrderID, "INV-1"); err != nil || !bytes.Equal(got, vAddress(0)) {
		t.Fatalf("genuine reveal after the replays: %q %v", got, err)
	}
	v.stop()

	idx, err := vault.OpenIndexReader(ctx, v.indexPath)
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	g, err := idx.Grant(ctx, home, vParcel, b.OrderID)
	if err != nil || g.Uses != uses {
		t.Fatalf("grant after two genuine reveals and the replays: %+v %v, want %d uses", g, err, uses)
	}
	ok, err := idx.AuditFind(ctx, "reveal-grant", "ok")
	if err != nil || len(ok) != uses {
		t.Fatalf("audit log: %d successful reveals (%v), want the %d genuine ones", len(ok), err, uses)
	}
	all, err := idx.AuditFind(ctx, "reveal-grant", "")
	if err != nil || len(all) != uses {
		t.Fatalf("audit log: %d reveal entries (%v), want %d: a refused replay reaches no handler", len(all), err, uses)
	}
}
