package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	merchantapi "orderseal/merchant/api"
	"orderseal/order"
)

// TestRedTeamCardDataRetention reproduces issue 16 item 7 with the real
// binaries: after online orders (approved and declined) and a phone order
// whose issuer section carries the CVC have been answered, the merchant's
// store keeps no issuer section, only the SHA-256 of its ciphertext; an
// identical resubmission is still the same order; and once every daemon has
// stopped no database, WAL or log file holds an issuer section's ciphertext,
// a CVC or a card number.
func TestRedTeamCardDataRetention(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns every daemon")
	}
	c := newCluster(t)
	c.enroll(cAlice, cardCanary, "2031-12", "50000")
	c.enroll(cBob, bobCard, "2031-12", "1000")
	alice := c.wallet("alice", cAlice, cardCanary)
	bob := c.wallet("bob", cBob, bobCard)
	c.registerAddress(cAlice, "home", false)
	c.registerAddress(cBob, "home", false)

	shipped, state, _, code, errs := c.orderCLI(alice, "-item", "BOOK-1984.pb=1", "-ship-to", "home")
	if code != 0 || state != merchantapi.StateShipped {
		t.Fatalf("alice's order %s: exit %d %s\n%s", shipped, code, state, errs)
	}
	declined, state, _, _, errs := c.orderCLI(bob, "-item", "BOOK-1984.pb=1", "-ship-to", "home")
	if state != merchantapi.StateDeclined {
		t.Fatalf("bob's order %s: %s\n%s", declined, state, errs)
	}
	// A phone order: its issuer section carries the card's CVC.
	out := c.must(doraCard+"\n", "issuer", "card", "add", "-db", c.path("issuer", "issuer.db"), "-card-key", c.path("issuer", "card.key"),
		"-cardholder", cDora, "-expiry", "2031-12", "-limit", "100000", "-currency", "EUR", "-number-file", "-")
	cvc := ""
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "cvc "); ok {
			cvc = strings.TrimSpace(v)
		}
	}
	if len(cvc) != 3 {
		t.Fatalf("issuer card add printed no cvc:\n%s", out)
	}
	if err := os.MkdirAll(c.path("consultant"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"dora.buyer.json":   `{"name":"Dora Example","phone":"+4915112345679","email":"dora@example.org"}`,
		"dora.address.json": `{"name":"Dora Example","line1":"Kastanienallee 3","city":"Berlin","postal_code":"10435","country":"DE"}`,
	} {
		if err := os.WriteFile(c.path("consultant", name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	carol := c.newUser("carol")
	if _, code, errs := c.login(carol, cCallCenter, "desk-7"); code != 0 {
		t.Fatalf("login: exit %d\n%s", code, errs)
	}
	phone, code, stdout, errs := c.phoneOrder(carol, "desk-7", doraCard+"\n12/31\n"+cvc+"\n")
	if code != 0 || !strings.Contains(stdout, "shipped") {
		t.Fatalf("phone order %s: exit %d\n%s%s", phone, code, stdout, errs)
	}

	// The issuer sections as the merchant received them.
	sent := map[string][]byte{} // order id → issuer section ciphertext
	var aliceBundle *order.Bundle
	for _, ex := range c.wire.all() {
		if ex.caller != "→merchant" || ex.method != http.MethodPost || !strings.HasPrefix(ex.path, "/v1/") || ex.status/100 != 2 {
			continue
		}
		raw := ex.req
		var wrapped struct {
			Bundle json.RawMessage `json:"bundle"`
		}
		if json.Unmarshal(raw, &wrapped) == nil && len(wrapped.Bundle) > 0 {
			raw = wrapped.Bundle
		}
		b, err := order.ParseBundle(raw)
		if err != nil {
			continue
		}
		ct := issuerCT(t, raw)
		if ct == nil {
			t.Fatalf("bundle %s sent without an issuer section", b.OrderID)
		}
		sent[b.OrderID] = ct
		if b.OrderID == shipped {
			aliceBundle = b
		}
	}
	for _, id := range []string{shipped, declined, phone} {
		if sent[id] == nil {
			t.Fatalf("no bundle of %s on the wire", id)
		}
	}

	db := c.rawDB("merchant", "merchant.db")
	for _, id := range []string{shipped, declined, phone} {
		if ct := issuerCT(t, c.order(id).Bundle); ct != nil {
			t.Errorf("after the issuer's answer the merchant still stores %s's issuer section", id)
		}
		var h []byte
		if err := db.QueryRowContext(context.Background(), `SELECT issuer_section_sha256 FROM orders WHERE order_id = ?`, id).Scan(&h); err != nil {
			t.Errorf("%s: issuer section hash: %v", id, err)
		} else if want := sha256.Sum256(sent[id]); !bytes.Equal(h, want[:]) {
			t.Errorf("%s: issuer section hash %x, want SHA-256 of its ciphertext %x", id, h, want)
		}
	}

	// An identical resubmission is the same order, answered the same, and
	// does not bring the issuer section back.
	acc, err := c.merchantClient(cAlice).Submit(context.Background(), aliceBundle)
	if err != nil || acc.OrderID != shipped || acc.State != merchantapi.StateShipped {
		t.Fatalf("resubmission: %+v %v", acc, err)
	}
	if issuerCT(t, c.order(shipped).Bundle) != nil {
		t.Error("a resubmission stored the issuer section again")
	}

	for _, name := range []string{"merchant", "carrier", "issuer", "vault"} {
		c.stop(name)
	}
	cvcPattern := regexp.MustCompile(`(?i)cvc\W{0,4}(` + c.cvcs[cardCanary] + `|` + c.cvcs[bobCard] + `|` + cvc + `)\b`) // the wallets' CVCs and Dora's
	var chunks [][]byte
	for _, ct := range sent {
		chunks = append(chunks, []byte(base64.RawURLEncoding.EncodeToString(ct)[:40]), ct[:24])
	}
	scanned := 0
	for _, party := range []string{"merchant", "issuer", "carrier", "vault"} {
		err := filepath.WalkDir(c.path(party), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			scanned++
			rel, _ := filepath.Rel(c.dir, p)
			for _, canary := range []string{cardCanary, bobCard, doraCard} {
				if bytes.Contains(data, []byte(canary)) {
					t.Errorf("%s holds the card number %s… in clear", rel, canary[:6])
				}
			}
			if m := cvcPattern.Find(data); m != nil {
				t.Errorf("%s holds a CVC: %q", rel, m)
			}
			for _, ch := range chunks {
				if bytes.Contains(data, ch) {
					t.Errorf("%s holds an issuer section's ciphertext after the issuer answered", rel)
					break
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if scanned < 6 {
		t.Fatalf("scanned only %d files", scanned)
	}
}

// issuerCT returns the ciphertext of a bundle's issuer section, nil when it
// has none.
func issuerCT(t *testing.T, bundle []byte) []byte {
	t.Helper()
	var b struct {
		Sections map[string]struct {
			CT string `json:"ct"`
		} `json:"sections"`
	}
	if err := json.Unmarshal(bundle, &b); err != nil {
		t.Fatalf("bundle: %v", err)
	}
	s, ok := b.Sections[string(order.RoleIssuer)]
	if !ok {
		return nil
	}
	ct, err := base64.RawURLEncoding.DecodeString(s.CT)
	if err != nil || len(ct) < 24 {
		t.Fatalf("issuer section ct %q: %v", s.CT, err)
	}
	return ct
}
