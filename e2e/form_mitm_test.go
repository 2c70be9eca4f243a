package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	merchantapi "orderseal/merchant/api"
	"orderseal/order"
	"orderseal/suite"
	"orderseal/tstest/keys"
)

// Identities of the man in the middle: a merchant, a carrier and a vault
// the key center issued keys to, but not the ones Alice's shop works with.
const (
	cEvilShop    = "merchant:evil"
	cEvilCarrier = "carrier:evil"
	cEvilVault   = "vault:evil"
)

// mitm is a forward HTTP proxy on the cardholder's network path to the
// merchant she names http://shop.example (issue 16, item 1). Honest, it
// forwards to the real merchant; "merchant" sends everything to the evil
// merchant instead; "carrier" forwards to the real merchant but rewrites
// the order form's carrier and vault to the evil ones. It keeps every
// bundle that passes it.
type mitm struct {
	srv           *httptest.Server
	honest, evil  *url.URL
	mu            sync.Mutex
	mode          string
	bundles       [][]byte
	forms, orders int
}

func newMITM(t *testing.T, honest, evil string) *mitm {
	m := &mitm{}
	var err error
	if m.honest, err = url.Parse(honest); err != nil {
		t.Fatal(err)
	}
	if m.evil, err = url.Parse(evil); err != nil {
		t.Fatal(err)
	}
	m.srv = httptest.NewServer(m)
	t.Cleanup(m.srv.Close)
	return m
}

func (m *mitm) set(mode string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mode, m.bundles, m.forms, m.orders = mode, nil, 0, 0
}

func (m *mitm) seen() (bundles [][]byte, forms, orders int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bundles, m.forms, m.orders
}

func (m *mitm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Hostname() != "shop.example" {
		http.Error(w, "no route", http.StatusBadGateway)
		return
	}
	body, _ := io.ReadAll(r.Body)
	m.mu.Lock()
	mode := m.mode
	switch {
	case r.URL.Path == merchantapi.PathOrderForm:
		m.forms++
	case r.Method == http.MethodPost && r.URL.Path == merchantapi.PathOrders:
		m.orders++
		m.bundles = append(m.bundles, body)
	}
	m.mu.Unlock()
	target := m.honest
	if mode == "merchant" {
		target = m.evil
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, target.String()+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if mode == "carrier" && r.URL.Path == merchantapi.PathOrderForm && resp.StatusCode == http.StatusOK {
		var f map[string]any
		if json.Unmarshal(rb, &f) == nil {
			f["carrier"], f["vault"] = cEvilCarrier, cEvilVault
			rb, _ = json.Marshal(f)
		}
	}
	for k, v := range resp.Header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(rb)
}

// orderVia runs cardholder order with the proxy as her HTTP proxy and her
// own config directory (which holds her OS1 trust file).
func (c *cluster) orderVia(m *mitm, home string, args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(c.bin("cardholder"), append([]string{"order"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "HTTP_PROXY="+m.srv.URL, "http_proxy="+m.srv.URL, "NO_PROXY=", "no_proxy=",
		"HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		c.t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestOrderFormMITM is issue 16, item 1: a man in the middle between Alice
// and the merchant she chose rewrites the order form. Swapping the merchant
// made the issuer pay merchant:evil; swapping the carrier and vault got the
// bundle refused, but only after the attacker held a carrier section sealed
// to carrier:evil. The form is now fetched signed, signed back, pinned to
// the host she chose: she refuses before sealing, and nothing reaches the
// issuer. Without the attacker the same path orders normally.
func TestOrderFormMITM(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns every daemon")
	}
	c := newCluster(t)
	c.enroll(cAlice, cardCanary, "2031-12", "50000")
	alice := c.wallet("alice", cAlice, cardCanary)
	token := c.registerAddress(cAlice, "home", false)

	if err := os.MkdirAll(c.path("evil"), 0o700); err != nil {
		t.Fatal(err)
	}
	evil := c.start("evil", "merchant", "serve", "-key", c.keyFile(cEvilShop), "-db", c.path("evil", "merchant.db"),
		"-catalog", c.path("merchant", "catalog.json"), "-issuer", cBank+"="+c.url("issuer"),
		"-carrier", cParcel+"="+c.url("carrier"), "-vault", cVault+"="+c.url("vault"), "-relay-poll", "100ms")
	m := newMITM(t, c.daemons["merchant"].url, evil.url)

	// Alice's config: under OS1 she trusts her shop's real parties.
	home := c.path("alice", "home")
	trust := filepath.Join(home, ".config", "orderseal", "trust.txt")
	if err := os.MkdirAll(filepath.Dir(trust), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trust, []byte("# Alice's parties\n"+cBank+"\n"+cParcel+"\n"+cVault+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Her usual flags, but the merchant is the name she typed, through the proxy.
	args := []string{"-merchant", "http://shop.example"}
	for i := 0; i < len(alice); i++ {
		if alice[i] == "-merchant" || alice[i] == "-merchant-id" {
			i++
			continue
		}
		args = append(args, alice[i])
	}
	args = append(args, "-item", "BOOK-1984.pb=1", "-ship-to", token, "-wait", "20s")

	t.Run("merchant swapped", func(t *testing.T) {
		c := c.with(t)
		m.set("merchant")
		before := c.available(cAlice)
		out, errs, code := c.orderVia(m, home, args...)
		_, _, orders := m.seen()
		if code == 0 || orders != 0 {
			t.Fatalf("the order went to %s: exit %d, %d bundle(s) submitted, debited %d\nstdout %s\nstderr %s",
				cEvilShop, code, orders, before-c.available(cAlice), out, errs)
		}
		if got := c.available(cAlice); got != before {
			t.Fatalf("the issuer debited %d", before-got)
		}
		if !strings.Contains(errs, "error:") {
			t.Fatalf("no one-line error on stderr:\n%s", errs)
		}
		t.Logf("refused: %s", strings.TrimSpace(errs))
	})

	t.Run("carrier and vault swapped", func(t *testing.T) {
		c := c.with(t)
		m.set("carrier")
		before := c.available(cAlice)
		out, errs, code := c.orderVia(m, home, args...)
		bundles, forms, orders := m.seen()
		for _, raw := range bundles {
			b, err := order.ParseBundle(raw)
			if err != nil {
				continue
			}
			if s, err := order.Open(b, suite.NewKeys(keys.Party(t, cEvilCarrier), 4), order.RoleCarrier, order.OpenOptions{}); err == nil {
				t.Errorf("%s opened Alice's carrier section of order %s", cEvilCarrier, s.OrderID)
			}
		}
		if code == 0 || orders != 0 || forms == 0 {
			t.Fatalf("exit %d, %d form fetch(es), %d bundle(s) submitted\nstdout %s\nstderr %s", code, forms, orders, out, errs)
		}
		if got := c.available(cAlice); got != before {
			t.Fatalf("the issuer debited %d", before-got)
		}
		t.Logf("refused: %s", strings.TrimSpace(errs))
	})

	t.Run("honest path orders", func(t *testing.T) {
		c := c.with(t)
		m.set("honest")
		out, errs, code := c.orderVia(m, home, args...)
		if code != 0 || !strings.Contains(out, merchantapi.StateShipped) {
			t.Fatalf("exit %d\nstdout %s\nstderr %s\nmerchant log:\n%s", code, out, errs, c.log("merchant"))
		}
	})
}
