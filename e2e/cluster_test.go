package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"orderseal/carrier"
	carrierstore "orderseal/carrier/store"
	"orderseal/internal/sqlitex"
	"orderseal/issuer"
	issuerstore "orderseal/issuer/store"
	"orderseal/keygen"
	"orderseal/merchant"
	merchantstore "orderseal/merchant/store"
	"orderseal/tstest/keys"
	"orderseal/vault"
	vaultstore "orderseal/vault/store"
)

// Identities of the checkout tests.
const (
	cAlice   = "cardholder:alice@example.org"
	cBob     = "cardholder:bob@example.org"
	cMallory = "cardholder:mallory@example.org"
	cShop    = "merchant:shop.example"
	cBank    = "issuer:bank.example"
	cParcel  = "carrier:parcel.example"
	cVault   = "vault:vault.shop.example"

	cCarol      = "consultant:carol"           // a phone consultant of the shop's call center
	cCallCenter = "company:callcenter.example" // the company running the shop's phone orders
	cRogueCo    = "company:elsewhere.example"  // a company the shop does not work with
)

// Canaries: they travel only sealed, and rest only encrypted in their one
// rightful store.
const (
	cardCanary    = "4111111111111111" // Alice's card
	bobCard       = "5555555555554444"
	addressCanary = "Canary-Lane-7f3a9"
)

// buildAll builds the five binaries into dir, with the race detector when
// this test binary has it, so the daemons are checked too.
func buildAll(t *testing.T, dir string) {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binaries")
	}
	// The test tag lets keygen honour ORDERSEAL_CENTER_KDF=fast (runIn sets it).
	args := []string{"build", "-tags", "orderseal_testkdf", "-o", dir + string(filepath.Separator)}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				args = append(args, "-race")
			}
		}
	}
	args = append(args, "../cmd/keygen", "../cmd/cardholder", "../cmd/merchant", "../cmd/issuer", "../cmd/carrier")
	if out, err := exec.Command(gobin, args...).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
}

// proxy sits between parties and records every body that crosses it, so the
// tests can scan what each party sent and answered. Its target is set once
// the daemon behind it has started.
type proxy struct {
	srv    *httptest.Server
	mu     sync.Mutex
	target *url.URL
	drop   func(*http.Request) bool // the request reaches the daemon, its answer is lost
}

// dropAnswers makes the proxy pass requests for which f is true and cut
// the connection instead of relaying their answer; nil relays every answer.
func (p *proxy) dropAnswers(f func(*http.Request) bool) {
	p.mu.Lock()
	p.drop = f
	p.mu.Unlock()
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request, rp http.Handler) {
	p.mu.Lock()
	drop := p.drop
	p.mu.Unlock()
	if drop == nil || !drop(r) {
		rp.ServeHTTP(w, r)
		return
	}
	rp.ServeHTTP(httptest.NewRecorder(), r) // the daemon answers; nobody hears it
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
	}
}

func newProxy(t *testing.T, name string, wl *wireLog) *proxy {
	p := &proxy{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			p.mu.Lock()
			target := p.target
			p.mu.Unlock()
			r.SetURL(target)
			r.Out.Host = r.In.Host // the signature covers the path, not the host
		},
		Transport: recordingRT{caller: "→" + name, log: wl},
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.ServeHTTP(w, r, rp) }))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *proxy) point(u string) {
	pu, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	p.mu.Lock()
	p.target = pu
	p.mu.Unlock()
}

// daemon is one party's server process.
type daemon struct {
	name, logPath, addrFile string
	metricsAddrFile         string
	args                    []string
	cmd                     *exec.Cmd
	exited                  chan struct{}
	url                     string
	metricsURL              string // its /metrics listener, apart from the API
}

// cluster is a whole orderseal deployment on loopback: key files, vault,
// issuer, carrier and merchant processes, each reached through a recording
// proxy.
type cluster struct {
	t       *testing.T
	dir     string
	wire    *wireLog
	daemons map[string]*daemon
	proxies map[string]*proxy
	cvcs    map[string]string // card number → the CVC 'issuer card add' printed for it
}

// with returns the cluster as seen from a subtest, so failures stop that
// subtest rather than its parent.
func (c *cluster) with(t *testing.T) *cluster {
	cc := *c
	cc.t = t
	return &cc
}

func (c *cluster) path(parts ...string) string {
	return filepath.Join(append([]string{c.dir}, parts...)...)
}
func (c *cluster) bin(name string) string { return c.path("bin", name) }

// keyFile writes id's key (once) and returns its path.
func (c *cluster) keyFile(id string) string {
	p := c.path("keys", keygen.KeyFileName(id))
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return keys.WriteKeyFile(c.t, c.path("keys"), id)
}

// run runs a binary to completion.
func (c *cluster) run(stdin string, name string, args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	return c.runIn(nil, stdin, name, args...)
}

// runIn runs a binary to completion as the user u (its working directory
// and environment); nil is the test's own.
func (c *cluster) runIn(u *user, stdin string, name string, args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(c.bin(name), args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "ORDERSEAL_CENTER_KDF=fast")
	if u != nil {
		cmd.Dir = u.work
		cmd.Env = append(cmd.Env, "HOME="+u.home, "XDG_CONFIG_HOME="+filepath.Join(u.home, ".config"), "TMPDIR="+u.tmp,
			"XDG_STATE_HOME="+filepath.Join(u.home, ".local", "state"))
	} else {
		cmd.Env = append(cmd.Env, "XDG_STATE_HOME="+c.path("state")) // the cardholder's order outbox, not the tester's
	}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		c.t.Fatalf("%s %v: %v", name, args, err)
	}
	return out.String(), errb.String(), code
}

// must runs a binary and fails the test unless it exits 0.
func (c *cluster) must(stdin, name string, args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(stdin, name, args...)
	if code != 0 {
		c.t.Fatalf("%s %s: exit %d\n%s%s", name, strings.Join(args, " "), code, out, errs)
	}
	return out
}

func (c *cluster) start(name, bin string, args ...string) *daemon {
	t := c.t
	t.Helper()
	d := &daemon{name: name, logPath: c.path(name, name+".log"), addrFile: c.path(name, "addr"), metricsAddrFile: c.path(name, "metrics-addr"),
		args: append(append([]string{}, args...), "-listen", "127.0.0.1:0", "-addr-file", c.path(name, "addr"),
			"-metrics-listen", "127.0.0.1:0", "-metrics-addr-file", c.path(name, "metrics-addr"), "-log-level", "debug")}
	c.daemons[name] = d
	c.launch(d, bin)
	return d
}

func (c *cluster) launch(d *daemon, bin string) {
	t := c.t
	t.Helper()
	os.Remove(d.addrFile)
	os.Remove(d.metricsAddrFile)
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	d.cmd = exec.Command(c.bin(bin), d.args...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.exited = make(chan struct{})
	cmd, exited := d.cmd, d.exited
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(d.addrFile); err == nil && strings.HasSuffix(string(b), "\n") {
			d.url = "http://" + strings.TrimSpace(string(b))
			// The metrics listener is up before the API's address is written.
			if m, err := os.ReadFile(d.metricsAddrFile); err == nil {
				d.metricsURL = "http://" + strings.TrimSpace(string(m))
			}
			if p := c.proxies[d.name]; p != nil {
				p.point(d.url)
			}
			return
		}
		select {
		case <-exited:
			t.Fatalf("%s exited at start (%v):\n%s", d.name, cmd.ProcessState, c.log(d.name))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start:\n%s", d.name, c.log(d.name))
		}
	}
}

// stop sends SIGTERM and expects a graceful exit 0 with no race reported.
func (c *cluster) stop(name string) {
	t := c.t
	t.Helper()
	d := c.daemons[name]
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s still running 30 s after SIGTERM", name)
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("%s exited %d after SIGTERM:\n%s", name, code, c.log(name))
	}
	if strings.Contains(c.log(name), "DATA RACE") {
		t.Fatalf("%s log reports a data race:\n%s", name, c.log(name))
	}
}

func (c *cluster) log(name string) string {
	b, _ := os.ReadFile(c.path(name, name+".log"))
	return string(b)
}

// url is how other parties reach a daemon: through its recording proxy.
func (c *cluster) url(name string) string { return c.proxies[name].srv.URL }

// newCluster builds the binaries, writes keys and starts the four daemons.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), wire: &wireLog{}, daemons: map[string]*daemon{}, proxies: map[string]*proxy{}, cvcs: map[string]string{}}
	for _, d := range []string{"bin", "keys", "vault", "issuer", "carrier", "merchant", "alice", "bob", "mallory"} {
		if err := os.MkdirAll(c.path(d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	buildAll(t, c.path("bin"))
	for _, name := range []string{"vault", "issuer", "carrier", "merchant"} {
		c.proxies[name] = newProxy(t, name, c.wire)
	}

	c.must("", "merchant", "vault", "init", "-data-key", c.path("vault", "data.key"))
	c.start("vault", "merchant", "vault", "serve", "-key", c.keyFile(cVault), "-index", c.path("vault", "index.db"),
		"-data", c.path("vault", "data.db"), "-backup", c.path("vault", "backup.db"), "-data-key", c.path("vault", "data.key"))

	c.must("", "issuer", "init", "-card-key", c.path("issuer", "card.key"))
	c.start("issuer", "issuer", "serve", "-key", c.keyFile(cBank), "-db", c.path("issuer", "issuer.db"), "-card-key", c.path("issuer", "card.key"))

	c.start("carrier", "carrier", "serve", "-key", c.keyFile(cParcel), "-db", c.path("carrier", "carrier.db"),
		"-vault-url", c.url("vault"), "-vault", cVault, "-merchant", cShop+"="+c.url("merchant"))

	if err := os.WriteFile(c.path("merchant", "catalog.json"), []byte(`{"currency":"EUR","products":[
		{"sku":"BOOK-1984.pb","name":"Nineteen Eighty-Four (paperback)","unit_price":1299},
		{"sku":"mug_blue-350","name":"Blue mug, 350 ml","unit_price":850},
		{"sku":"CAMERA-X100","name":"Compact camera X100","unit_price":129900}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c.start("merchant", "merchant", "serve", "-key", c.keyFile(cShop), "-db", c.path("merchant", "merchant.db"),
		"-catalog", c.path("merchant", "catalog.json"), "-issuer", cBank+"="+c.url("issuer"),
		"-carrier", cParcel+"="+c.url("carrier"), "-vault", cVault+"="+c.url("vault"),
		"-public-url", c.url("merchant"), "-relay-poll", "100ms", "-company", cCallCenter)
	return c
}

// enroll enrolls a card to a cardholder with a credit limit (minor units).
func (c *cluster) enroll(cardholder, number, expiry string, limit string) {
	c.t.Helper()
	out := c.must(number+"\n", "issuer", "card", "add", "-db", c.path("issuer", "issuer.db"), "-card-key", c.path("issuer", "card.key"),
		"-cardholder", cardholder, "-expiry", expiry, "-limit", limit, "-currency", "EUR", "-number-file", "-")
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "cvc "); ok {
			c.cvcs[number] = v
		}
	}
	if c.cvcs[number] == "" {
		c.t.Fatalf("issuer card add printed no cvc:\n%s", out)
	}
}

// wallet writes a cardholder's card and buyer files and returns their
// flags. The card file carries the CVC the issuer printed for an enrolled
// number (the issuer checks it), none for another.
func (c *cluster) wallet(who, id, number string) []string {
	c.t.Helper()
	cvc := ""
	if v := c.cvcs[number]; v != "" {
		cvc = `"cvc":"` + v + `",`
	}
	card := `{"number":"` + number + `","expiry":"2031-12",` + cvc + `"issuer":"` + cBank + `"}`
	if err := os.WriteFile(c.path(who, "card.json"), []byte(card), 0o600); err != nil {
		c.t.Fatal(err)
	}
	name := strings.ToUpper(who[:1]) + who[1:] + " Example"
	buyer := `{"name":"` + name + `","phone":"+4915112345678","email":"` + who + `@example.org"}`
	if err := os.WriteFile(c.path(who, "me.json"), []byte(buyer), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return []string{"-merchant", c.url("merchant"), "-merchant-id", cShop, "-trust", c.trustFile(), "-key", c.keyFile(id), "-card", c.path(who, "card.json"),
		"-buyer", c.path(who, "me.json"), "-vault-url", c.url("vault"), "-wait", "60s"}
}

// trustFile writes (once) the OS1 trust file of the cluster's cardholders
// and consultants: its issuer, carrier and vault.
func (c *cluster) trustFile() string {
	c.t.Helper()
	p := c.path("keys", "trust.txt")
	if err := os.WriteFile(p, []byte(cBank+"\n"+cParcel+"\n"+cVault+"\n"), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// merchantStore opens the merchant's store read-only, through its read
// interface, as the dashboard and the CLIs read it.
func (c *cluster) merchantStore() merchantstore.Reader {
	c.t.Helper()
	st, err := merchant.OpenReader(context.Background(), c.path("merchant", "merchant.db"))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { st.Close() })
	return st
}

// issuerStore opens the issuer's store read-only, without the card key.
func (c *cluster) issuerStore() issuerstore.Store {
	c.t.Helper()
	st, err := issuer.OpenStore(context.Background(), c.path("issuer", "issuer.db"), issuerstore.Options{ReadOnly: true})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { st.Close() })
	return st
}

// carrierStore opens the carrier's store read-only.
func (c *cluster) carrierStore() carrierstore.Reader {
	c.t.Helper()
	st, err := carrier.OpenReader(context.Background(), c.path("carrier", "carrier.db"))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { st.Close() })
	return st
}

// vaultIndex opens the vault's index read-only.
func (c *cluster) vaultIndex() vaultstore.IndexReader {
	c.t.Helper()
	idx, err := vault.OpenIndexReader(context.Background(), c.path("vault", "index.db"))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { idx.Close() })
	return idx
}

// rawDB opens a party's SQLite file read-only, for the few checks that
// inspect what rests in the file itself (ciphertext lengths), which no
// store interface shows by design. Every other read goes through a store.
func (c *cluster) rawDB(parts ...string) *sql.DB {
	c.t.Helper()
	db, err := sqlitex.Open(c.path(parts...), sqlitex.ReadOnly(), sqlitex.MustExist())
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { db.Close() })
	return db
}

func (c *cluster) scalar(db *sql.DB, q string, args ...any) int64 {
	c.t.Helper()
	var n int64
	if err := db.QueryRowContext(context.Background(), q, args...).Scan(&n); err != nil {
		c.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// available is a cardholder's available credit at the issuer (their first
// card's).
func (c *cluster) available(cardholder string) int64 {
	c.t.Helper()
	cards, err := c.issuerStore().Cards(context.Background())
	if err != nil {
		c.t.Fatalf("issuer cards: %v", err)
	}
	for _, card := range cards {
		if card.Cardholder == cardholder {
			return card.Available
		}
	}
	c.t.Fatalf("issuer cards: none of %s", cardholder)
	return 0
}

// countFunc counts the elements of s that f holds for.
func countFunc[T any](s []T, f func(T) bool) int {
	n := 0
	for _, v := range s {
		if f(v) {
			n++
		}
	}
	return n
}

// order reads one order at the merchant, failing the test when it is not there.
func (c *cluster) order(id string) *merchantstore.Order {
	c.t.Helper()
	o, err := c.merchantStore().Get(context.Background(), id)
	if err != nil {
		c.t.Fatalf("merchant order %s: %v", id, err)
	}
	return o
}

// waitState polls the merchant's store until the order reaches one of states.
func (c *cluster) waitState(orderID string, states ...string) string {
	c.t.Helper()
	orders := c.merchantStore()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var st string
		o, err := orders.Get(context.Background(), orderID)
		if err == nil {
			st = o.State
			for _, s := range states {
				if st == s {
					return st
				}
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("order %s is %q (%v), want one of %v\nmerchant log:\n%s", orderID, st, err, states, c.log("merchant"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
