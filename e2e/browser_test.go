package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"flag"
	"fmt"
	stdhtml "html"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"orderseal/carrier"
	"orderseal/issuer"
	issuerstore "orderseal/issuer/store"
	"orderseal/merchant"
	merchantapi "orderseal/merchant/api"
	"orderseal/merchant/checkout"
	"orderseal/merchant/dashboard"
	harness "orderseal/tstest/cluster"
	"orderseal/tstest/keys"
)

var screenshots = flag.String("browser.screenshots", "", "write the checkout, preview, timeline and dashboard screenshots into this directory (docs/ for the README)")

// buildCheckout builds the page's sealing program with make web's flags
// (checkout.BuildFlags) and copies the loader of the same toolchain beside
// it.
func buildCheckout(dir string) error {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return err
	}
	cmd := exec.Command(gobin, append(append([]string{"build"}, checkout.BuildFlags...), "-o", filepath.Join(dir, checkout.WASMFile), "../cmd/checkoutwasm")...)
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build the checkout: %v\n%s", err, out)
	}
	if out, err := exec.Command("sh", "-c", `gzip -9 -c "$0" > "$0.gz"`, filepath.Join(dir, checkout.WASMFile)).CombinedOutput(); err != nil {
		return fmt.Errorf("gzip the checkout: %v\n%s", err, out)
	}
	root, err := exec.Command(gobin, "env", "GOROOT").Output()
	if err != nil {
		return err
	}
	exec, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(root)), "lib", "wasm", checkout.WASMExecFile))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, checkout.WASMExecFile), exec, 0o644)
}

// Modes of the front proxy between the browser and the merchant.
const (
	frontPass    = iota
	frontTamper  // flips one byte of the sealing program on its way
	frontRefused // the merchant is unreachable: every connection is cut
)

// front is the network between the browser and a daemon (the merchant,
// or the vault the page asks for her labels), started before the cluster
// so its origin can be named in the daemons' flags.
type front struct {
	srv    *httptest.Server
	target atomic.Pointer[url.URL]
	mode   atomic.Int32
	sent   atomic.Int32 // order submissions that reached the merchant
}

func newFront(t *testing.T) *front {
	f := &front{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(f.target.Load())
			r.Out.Host = r.In.Host
			if f.mode.Load() == frontTamper {
				r.Out.Header.Del("Accept-Encoding") // the raw program, to flip a byte of it
			}
		},
		ModifyResponse: func(resp *http.Response) error {
			if f.mode.Load() != frontTamper || !strings.HasSuffix(resp.Request.URL.Path, checkout.WASMFile) {
				return nil
			}
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			b[len(b)/2] ^= 0x01
			resp.Body = io.NopCloser(bytes.NewReader(b))
			return nil
		},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.mode.Load() == frontRefused || f.target.Load() == nil {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		if r.Method == http.MethodPost && r.URL.Path == merchantapi.PathOrders {
			f.sent.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// to points the front at the daemon at target.
func (f *front) to(t *testing.T, target string) {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f.target.Store(u)
}

// headlessChromium starts Debian's chromium, headless; a machine without it
// fails the test (make chromium installs it).
func headlessChromium(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("no chromium on PATH (%v): make chromium installs Debian's package", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1000, 900))
	ctx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	return ctx
}

// consoleLog is what a tab wrote to its console.
type consoleLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *consoleLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tab opens a new tab that collects the page's console.
func tab(t *testing.T, browser context.Context) (context.Context, *consoleLog) {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // the first run starts the tab, without a timeout
		t.Fatal(err)
	}
	console := &consoleLog{}
	go func(ctx context.Context) {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			console.mu.Lock()
			fmt.Fprintf(&console.b, "%s: %s\n", m.Type, m.Text)
			console.mu.Unlock()
		}
	}(ctx)
	timed, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(cancelT)
	return timed, console
}

// void runs a and drops its value.
func void[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := a(ctx, tg)
		return chromedp.Void{}, err
	}
}

// into runs a and stores its value in dst.
func into[T any](dst *T, a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		v, err := a(ctx, tg)
		*dst = v
		return chromedp.Void{}, err
	}
}

// attr stores an attribute of the first element sel matches in dst.
func attr(dst *string, sel, name string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		v, err := chromedp.AttributeValue(chromedp.CSS(sel), name)(ctx, tg)
		*dst = v.Value
		return chromedp.Void{}, err
	}
}

// set types a value into a field and tells the page it changed.
func set(sel, value string) chromedp.Action[chromedp.Void] {
	if value == "" { // chromedp's SetValue refuses an empty value
		return void(chromedp.Evaluate[any](fmt.Sprintf(`(e => { e.value = ""; e.dispatchEvent(new Event("input")) })(document.querySelector(%q))`, sel)))
	}
	return chromedp.Steps(chromedp.SetValue(chromedp.CSS(sel), value),
		void(chromedp.Evaluate[any](fmt.Sprintf(`document.querySelector(%q).dispatchEvent(new Event("input"))`, sel))))
}

// checkoutFields are the page's fields for an order of two paperbacks and
// a mug to an inline German address.
func checkoutFields(card, expiry string) map[string]string {
	return map[string]string{
		`input[data-sku="BOOK-1984.pb"]`: "2", `input[data-sku="mug_blue-350"]`: "1",
		"#buyer-name": "Alice Example", "#buyer-email": "alice@example.org", "#buyer-phone": "+49 151 12345678",
		"#country": "DE", "#addr-name": "Bob Beispiel", "#line1": addressCanary + " 12", "#postcode": "10115", "#city": "Berlin",
		// No CVC: the cardholder's key authenticates an online order, and a
		// wrong code is declined cvc-mismatch (issuer.TestOnlineCVCChecked);
		// the cluster's cards are enrolled without printing theirs.
		"#card-number": card, "#card-expiry": expiry, "#card-cvc": "",
	}
}

// fillCheckout fills the page's form once her labels are listed: to the
// saved address fields["#label"] names, or else to the inline address.
func fillCheckout(fields map[string]string) chromedp.Action[chromedp.Void] {
	ts := []chromedp.Action[chromedp.Void]{chromedp.WaitVisible(chromedp.CSS("body[data-labels]"))}
	if label, ok := fields["#label"]; ok {
		ts = append(ts, chromedp.Click(chromedp.CSS("#ship-saved")), chromedp.SetValue(chromedp.CSS("#label"), label))
	} else {
		ts = append(ts, chromedp.Click(chromedp.CSS("#ship-inline")))
	}
	for _, sel := range []string{`input[data-sku="BOOK-1984.pb"]`, `input[data-sku="mug_blue-350"]`, "#buyer-name", "#buyer-email", "#buyer-phone",
		"#country", "#addr-name", "#line1", "#postcode", "#city", "#card-number", "#card-expiry", "#card-cvc"} {
		if v, ok := fields[sel]; ok {
			ts = append(ts, set(sel, v))
		}
	}
	return chromedp.Steps(ts...)
}

func shot(name string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		if *screenshots == "" {
			return chromedp.Void{}, nil
		}
		png, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return chromedp.Void{}, err
		}
		return chromedp.Void{}, os.WriteFile(filepath.Join(*screenshots, name), png, 0o644)
	}
}

// text is an element's text.
func text(ctx context.Context, sel string) string {
	s, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	return s
}

// TestBrowserCheckout places orders through the merchant's checkout page in
// headless Chromium against the real daemons on suite OS2, and shows that
// what must fail fails on the page: the CSP, the program's integrity, and
// each bad input with a clear message and nothing sent.
func TestBrowserCheckout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin, web := filepath.Join(dir, "bin"), filepath.Join(dir, "web")
	if err := os.MkdirAll(web, 0o755); err != nil {
		t.Fatal(err)
	}
	built := make(chan error, 1)
	go func() { built <- buildCheckout(web) }()
	buildAll(t, bin)
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	// The page's origin is f's; the vault answers it, at vf.
	f, vf := newFront(t), newFront(t)
	c, err := harness.Start(ctx, harness.Config{Dir: filepath.Join(dir, "cluster"), BinDir: bin, Cardholders: 2, Logf: t.Logf,
		DaemonArgs: map[string][]string{harness.Merchant: {"-checkout", web, "-checkout-vault", vf.srv.URL},
			harness.Vault: {"-cors-origin", f.srv.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f.to(t, c.URL(harness.Merchant))
	vf.to(t, c.URL(harness.Vault))
	ch := c.Cardholders()[0]
	keyFile := c.KeyFile(ch.ID)
	page := f.srv.URL + checkout.Prefix
	browser := headlessChromium(t)

	t.Run("the program is served compressed, with the integrity the page names", func(t *testing.T) {
		tr := &http.Transport{DisableCompression: true}
		req, _ := http.NewRequest(http.MethodGet, page+checkout.WASMFile, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		gz, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil || resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("the program is not served gzip-compressed: %v %q", err, resp.Header.Get("Content-Encoding"))
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha512.Sum384(raw)
		want := "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
		pr, err := http.Get(page)
		if err != nil {
			t.Fatal(err)
		}
		html, _ := io.ReadAll(pr.Body)
		pr.Body.Close()
		if !strings.Contains(stdhtml.UnescapeString(string(html)), `data-wasm-integrity="`+want+`"`) {
			t.Fatalf("the page does not name the program's SHA-384 %s", want)
		}
		for h, v := range map[string]string{"Content-Security-Policy": "frame-ancestors 'none'", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
			if !strings.Contains(pr.Header.Get(h), v) {
				t.Errorf("page header %s = %q, want %q in it", h, pr.Header.Get(h), v)
			}
		}
		if csp := pr.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "'wasm-unsafe-eval'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("page CSP %q", csp)
		}
		// The page may fetch from the shop and her vault, nowhere else.
		if csp := pr.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "; connect-src 'self' "+vf.srv.URL+";") {
			t.Errorf("page CSP %q: connect-src is not 'self' and the vault's origin %s alone", csp, vf.srv.URL)
		}
		t.Logf("checkout program: %d bytes gzip-compressed (goal ≤ 3 MB), %d raw", len(gz), len(raw))
	})

	var readyMs []string
	var placed string // the order the page placed
	t.Run("an order placed in the page ships, sealed", func(t *testing.T) {
		tc, console := tab(t, browser)
		var ready, fetched, hashed, orderID, state string
		err := chromedp.Do(tc,
			chromedp.Navigate(page),
			chromedp.WaitVisible(chromedp.CSS(`body[data-state="ready"]`)),
			attr(&ready, "body", "data-ready-ms"),
			attr(&fetched, "body", "data-fetched-ms"),
			attr(&hashed, "body", "data-checked-ms"),
			chromedp.SetUploadFiles(chromedp.CSS("#key-file"), []string{keyFile}),
			chromedp.WaitVisible(chromedp.CSS("#checkout")),
			fillCheckout(checkoutFields(ch.Card, ch.Expiry)),
			shot("checkout.png"),
			chromedp.Click(chromedp.CSS("#review")),
			chromedp.WaitVisible(chromedp.CSS("#preview")),
			shot("preview.png"),
		)
		if err != nil {
			t.Fatalf("%v\nmessage: %s\n%s", err, text(tc, "#message"), console)
		}
		readyMs = append(readyMs, ready)
		t.Logf("page load → program fetched %s ms, hashed and compiled %s ms, ready to seal %s ms", fetched, hashed, ready)
		preview := text(tc, "#preview")
		for _, want := range []string{"card.number", "ship_to.address", "items"} {
			if !strings.Contains(preview, want) {
				t.Errorf("the preview lacks %s:\n%s", want, preview)
			}
		}
		if strings.Contains(preview, ch.Card) || strings.Contains(preview, addressCanary) {
			t.Error("the preview shows a value")
		}
		err = chromedp.Do(tc,
			chromedp.Click(chromedp.CSS("#place")),
			chromedp.WaitVisible(chromedp.CSS("#timeline")),
			chromedp.WaitVisible(chromedp.CSS(`body[data-order-state="shipped"]`)),
			attr(&orderID, "body", "data-order"),
			attr(&state, "body", "data-order-state"),
			shot("timeline.png"),
		)
		if err != nil {
			t.Fatalf("%v\nmessage: %s\n%s\nmerchant log:\n%s", err, text(tc, "#message"), console, tail(c.Path("merchant", "merchant.log")))
		}
		placed = orderID
		timeline := text(tc, "#events")
		for _, want := range []string{"received", "authorized", "shipped"} {
			if !strings.Contains(timeline, want) {
				t.Errorf("the timeline lacks %s: %q", want, timeline)
			}
		}
		// The issuer authorized the card it read; the carrier booked the
		// parcel; the merchant holds the token and ciphertext alone.
		ms, err := merchant.OpenReader(ctx, c.DSN(harness.Merchant))
		if err != nil {
			t.Fatal(err)
		}
		defer ms.Close()
		o, err := ms.Get(ctx, orderID)
		if err != nil {
			t.Fatal(err)
		}
		// An inline address: the merchant holds no token, the carrier the
		// vault's deposit token.
		if o.State != merchantapi.StateShipped || o.Cardholder != ch.ID || o.ShipToken != "" || o.Total != 2*1299+850 || o.Tracking == "" {
			t.Fatalf("merchant order %s: state %s cardholder %s token %q total %d tracking %q", orderID, o.State, o.Cardholder, o.ShipToken, o.Total, o.Tracking)
		}
		is, err := issuer.OpenStore(ctx, c.DSN(harness.Issuer), issuerstore.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer is.Close()
		auths, err := is.Authorizations(ctx, issuerstore.AuthFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if n := countFunc(auths, func(a issuerstore.Authorization) bool {
			return a.OrderID == orderID && a.CardID != "" && a.Sealer == ch.ID && a.Amount == 2*1299+850
		}); n != 1 {
			t.Fatalf("the issuer holds %d authorizations of order %s with the card it read", n, orderID)
		}
		cs, err := carrier.OpenReader(ctx, c.DSN(harness.Carrier))
		if err != nil {
			t.Fatal(err)
		}
		defer cs.Close()
		sh, err := cs.Lookup(ctx, o.Tracking)
		if err != nil || sh.OrderID != orderID || !strings.HasPrefix(sh.ShipToken, "tok_") || sh.RecipientName != "Bob Beispiel" {
			t.Fatalf("carrier shipment %s: order %s token %q recipient %q: %v", o.Tracking, sh.OrderID, sh.ShipToken, sh.RecipientName, err)
		}
		scanClear(t, c.Dir(), ch.Card, addressCanary)
	})

	t.Run("an order to her saved address ships, and the carrier reveals that address", func(t *testing.T) {
		// The page lists her labels at the vault across origins (its CORS
		// answers f's origin) with requests signed by her key; the order
		// carries the label's token, as cardholder order -ship-to home does.
		tc, console := tab(t, browser)
		fields := checkoutFields(ch.Card, ch.Expiry)
		for _, k := range []string{"#country", "#addr-name", "#line1", "#postcode", "#city"} {
			delete(fields, k)
		}
		fields["#label"] = "home"
		var labels, vaultLine, orderID string
		err := chromedp.Do(tc,
			chromedp.Navigate(page),
			chromedp.WaitVisible(chromedp.CSS(`body[data-state="ready"]`)),
			chromedp.SetUploadFiles(chromedp.CSS("#key-file"), []string{keyFile}),
			chromedp.WaitVisible(chromedp.CSS(`body[data-labels="1"]`)),
			into(&labels, chromedp.Text(chromedp.CSS("#label"))),
			fillCheckout(fields),
			chromedp.Click(chromedp.CSS("#review")),
			chromedp.WaitVisible(chromedp.CSS("#preview")),
			into(&vaultLine, chromedp.Text(chromedp.CSS("#vault-line"))),
			chromedp.Click(chromedp.CSS("#place")),
			chromedp.WaitVisible(chromedp.CSS(`body[data-order-state="shipped"]`)),
			attr(&orderID, "body", "data-order"),
		)
		if err != nil {
			t.Fatalf("%v\nmessage: %s\n%s\nvault log:\n%s", err, text(tc, "#message"), console, tail(c.Path("vault", "vault.log")))
		}
		if strings.TrimSpace(labels) != "home" || !strings.Contains(vaultLine, harness.VaultID) {
			t.Errorf("labels offered %q; preview's vault line %q", labels, vaultLine)
		}
		ms, err := merchant.OpenReader(ctx, c.DSN(harness.Merchant))
		if err != nil {
			t.Fatal(err)
		}
		defer ms.Close()
		o, err := ms.Get(ctx, orderID)
		if err != nil || o.ShipToken != ch.Token || o.State != merchantapi.StateShipped || o.Tracking == "" {
			t.Fatalf("merchant order %s: token %q (want her home's %s), state %s: %v", orderID, o.ShipToken, ch.Token, o.State, err)
		}
		// The carrier prints the label under the order's grant: her home.
		zpl, err := c.Run(ctx, "", "carrier", "label", o.Tracking, "-o", "-", "-format", "zpl", "-db", c.DSN(harness.Carrier),
			"-key", c.PartyKey(harness.CarrierID), "-vault-url", c.URL(harness.Vault), "-vault", harness.VaultID)
		if err != nil {
			t.Fatal(err)
		}
		home, other := harness.Address(ch.Index), harness.Address(c.Cardholders()[1].Index)
		if !strings.Contains(strings.ToUpper(zpl), strings.ToUpper(home.Line1)) || strings.Contains(strings.ToUpper(zpl), strings.ToUpper(other.Line1)) {
			t.Fatalf("the carrier's label does not show her home %q:\n%s", home.Line1, zpl)
		}
	})

	t.Run("a key kept on this device opens with its passphrase alone", func(t *testing.T) {
		tc, console := tab(t, browser)
		const pass = "her own long passphrase"
		var stored, wrong, who string
		var formShown bool
		readKept := `new Promise((ok, bad) => { const r = indexedDB.open("orderseal-checkout", 1); r.onerror = bad;
			r.onsuccess = () => { const g = r.result.transaction("keys").objectStore("keys").get("key"); g.onerror = bad;
			g.onsuccess = () => ok(g.result ? g.result.sealed.length + " " + new TextDecoder().decode(g.result.sealed) : "none"); }; })`
		err := chromedp.Do(tc,
			chromedp.Navigate(page),
			chromedp.WaitVisible(chromedp.CSS(`body[data-state="ready"]`)),
			set("#keep-pass", pass),
			chromedp.SetUploadFiles(chromedp.CSS("#key-file"), []string{keyFile}),
			chromedp.WaitVisible(chromedp.CSS("#checkout")),
			chromedp.WaitVisible(chromedp.CSS("#key-stored")),
			into(&stored, chromedp.Evaluate[string](readKept, chromedp.EvalAwaitPromise)),
			chromedp.Navigate(page),
			chromedp.WaitVisible(chromedp.CSS(`body[data-state="ready"]`)),
			chromedp.WaitVisible(chromedp.CSS("#key-stored")),
			set("#stored-pass", "not her passphrase at all"),
			chromedp.Click(chromedp.CSS("#stored-open")),
			chromedp.WaitVisible(chromedp.CSS("#message")),
			into(&wrong, chromedp.Text(chromedp.CSS("#message"))),
			into(&formShown, chromedp.Evaluate[bool](`!document.getElementById("checkout").hidden`)),
			set("#stored-pass", pass),
			chromedp.Click(chromedp.CSS("#stored-open")),
			chromedp.WaitVisible(chromedp.CSS("#checkout")),
			into(&who, chromedp.Text(chromedp.CSS("#key-who"))),
			chromedp.Click(chromedp.CSS("#stored-forget")),
			chromedp.WaitNotVisible(chromedp.CSS("#key-stored")),
		)
		if err != nil {
			t.Fatalf("%v\nmessage: %s\n%s", err, text(tc, "#message"), console)
		}
		key, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		if n, _, _ := strings.Cut(stored, " "); n != fmt.Sprint(len(key)+16) || strings.Contains(stored, ch.ID) || strings.Contains(stored, "identity") {
			t.Errorf("IndexedDB holds %.60q, want the %d-byte key file sealed (and its 16-byte tag)", stored, len(key))
		}
		if !strings.Contains(wrong, "wrong passphrase") || formShown {
			t.Errorf("a wrong passphrase: message %q, form shown %v", wrong, formShown)
		}
		if !strings.Contains(who, ch.ID) {
			t.Errorf("the kept key opened as %q", who)
		}
		if after, _ := chromedp.Run(tc, chromedp.Evaluate[string](readKept, chromedp.EvalAwaitPromise)); after != "none" {
			t.Errorf("after forgetting, IndexedDB holds %.40q", after)
		}
		if strings.Contains(console.String(), pass) {
			t.Error("the console holds the passphrase")
		}
	})

	t.Run("an operator finds the order in the dashboard", func(t *testing.T) {
		if placed == "" {
			t.Fatal("no order was placed")
		}
		const pw = "an operator's long passphrase"
		add := exec.Command(filepath.Join(bin, "merchant"), "operator", "add", "-db", c.DSN(harness.Merchant), "-name", "olga", "-role", "viewer")
		add.Stdin = strings.NewReader(pw + "\n")
		if out, err := add.CombinedOutput(); err != nil {
			t.Fatalf("merchant operator add: %v\n%s", err, out)
		}
		tc, console := tab(t, browser)
		var wrong, list, detail, csp, fits string
		err := chromedp.Do(tc,
			chromedp.Navigate(f.srv.URL+dashboard.Prefix),
			chromedp.WaitVisible(chromedp.CSS("#login")),
			set("#name", "olga"), set("#password", "not the passphrase"),
			chromedp.Click(chromedp.CSS("#submit")),
			chromedp.WaitVisible(chromedp.CSS(`#error[data-code="login-failed"]`)),
			into(&wrong, chromedp.Text(chromedp.CSS("#error"))),
			set("#name", "olga"), set("#password", pw),
			chromedp.Click(chromedp.CSS("#submit")),
			chromedp.WaitVisible(chromedp.CSS(`#orders tr[data-order="`+placed+`"]`)),
			into(&list, chromedp.Text(chromedp.CSS("main"))),
			into(&fits, chromedp.Evaluate[string](`(() => { const h = document.querySelector("header").getBoundingClientRect(), t = document.getElementById("orders").getBoundingClientRect();
				return t.right <= h.right && document.documentElement.scrollWidth <= window.innerWidth ? "" : "table right edge " + t.right + ", header " + h.right + ", page " + document.documentElement.scrollWidth + " wide in a " + window.innerWidth + " window" })()`)),
			shot("dashboard.png"),
			chromedp.Click(chromedp.CSS(`#orders tr[data-order="`+placed+`"] a`)),
			chromedp.WaitVisible(chromedp.CSS("#timeline")),
			into(&detail, chromedp.Text(chromedp.CSS("main"))),
			shot("dashboard-order.png"),
			into(&csp, chromedp.Evaluate[string](`(() => { window.violations = 0;
				document.addEventListener("securitypolicyviolation", () => window.violations++);
				const s = document.createElement("script"); s.textContent = "window.injected = true"; document.body.append(s);
				return String(window.injected === true) })()`)),
		)
		if err != nil {
			t.Fatalf("%v\n%s\nmerchant log:\n%s", err, console, tail(c.Path("merchant", "merchant.log")))
		}
		if fits != "" {
			t.Errorf("the orders table is wider than the header bar: %s", fits)
		}
		if !strings.Contains(wrong, "Wrong name or password") {
			t.Errorf("a wrong password: %q", wrong)
		}
		for _, want := range []string{placed, "shipped", "34.48 EUR"} {
			if !strings.Contains(list, want) && !strings.Contains(detail, want) {
				t.Errorf("the dashboard does not show %q", want)
			}
		}
		for _, want := range []string{"authorized", "shipped", ch.ID, "BOOK-1984.pb"} {
			if !strings.Contains(detail, want) {
				t.Errorf("the order page lacks %q:\n%s", want, detail)
			}
		}
		for _, secret := range []string{ch.Card, addressCanary, "Bob Beispiel", "alice@example.org", "Alice Example", "12345678"} {
			if strings.Contains(list, secret) || strings.Contains(detail, secret) {
				t.Errorf("the dashboard shows %q", secret)
			}
		}
		if csp != "false" {
			t.Error("an injected script ran on the dashboard")
		}
	})

	t.Run("the CSP blocks an injected inline script", func(t *testing.T) {
		tc, _ := tab(t, browser)
		var ran bool
		var blocked int
		err := chromedp.Do(tc,
			chromedp.Navigate(page),
			chromedp.WaitVisible(chromedp.CSS(`body[data-state="ready"]`)),
			void(chromedp.Evaluate[any](`window.violations = 0; document.addEventListener("securitypolicyviolation", () => window.violations++);
				const s = document.createElement("script"); s.textContent = "window.injected = true"; document.body.append(s);
				const b = document.createElement("button"); b.setAttribute("onclick", "window.injected = true"); document.body.append(b); b.click();`)),
			chromedp.Sleep(200*time.Millisecond),
			into(&ran, chromedp.Evaluate[bool](`window.injected === true`)),
			into(&blocked, chromedp.Evaluate[int](`window.violations`)),
		)
		if err != nil {
			t.Fatal(err)
		}
		if ran || blocked < 2 {
			t.Fatalf("injected script ran: %v; CSP violations reported: %d, want 2", ran, blocked)
		}
	})

	t.Run("a tampered program fails its integrity check", func(t *testing.T) {
		f.mode.Store(frontTamper)
		defer f.mode.Store(frontPass)
		tc, _ := tab(t, browser)
		var state string
		var disabled bool
		err := chromedp.Do(tc,
			chromedp.Navigate(page),
			chromedp.WaitVisible(chromedp.CSS(`body[data-state="broken"]`)),
			attr(&state, "body", "data-state"),
			into(&disabled, chromedp.Evaluate[bool](`document.getElementById("key-file").disabled && typeof orderseal === "undefined"`)),
		)
		if err != nil {
			t.Fatal(err)
		}
		if msg := text(tc, "#message"); !strings.Contains(msg, "integrity check") || !disabled {
			t.Fatalf("message %q, key input disabled and no program: %v", msg, disabled)
		}
	})

	// Each bad input is refused on the page with its message, and nothing
	// reaches the merchant.
	wrongRole := keys.OS2(t).WriteKeyFile(t, t.TempDir(), harness.MerchantID)
	expired := keys.OS2Center(t, "2025-01").WriteKeyFile(t, t.TempDir(), ch.ID)
	notKey := filepath.Join(t.TempDir(), "notes.key")
	if err := os.WriteFile(notKey, []byte(`{"identity":"cardholder:alice@example.org","note":"not a key"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		key     string
		fields  map[string]string // over checkoutFields; nil: the key is refused before the form
		refused bool              // the merchant is unreachable once the page is loaded
		vault   bool              // the vault is unreachable: her labels cannot be listed
		want    string
	}{
		{name: "a merchant's key", key: wrongRole, want: "not a cardholder's"},
		{name: "a file that is no key", key: notKey, want: "not an orderseal key file"},
		{name: "an expired key", key: expired, want: "cannot seal"},
		{name: "an unknown country", key: keyFile, fields: map[string]string{"#country": "ZZ"}, want: "country"},
		{name: "a malformed card number", key: keyFile, fields: map[string]string{"#card-number": "4111 1111 1111 1112"}, want: "card number"},
		{name: "a card number with letters", key: keyFile, fields: map[string]string{"#card-number": "4111abcd11111111"}, want: "card number"},
		{name: "the merchant unreachable", key: keyFile, refused: true, want: "the merchant cannot be reached"},
		{name: "the vault unreachable", key: keyFile, vault: true, want: "the vault cannot be reached"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.sent.Load()
			bt, console := tab(t, browser)
			run := []chromedp.Action[chromedp.Void]{chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`body[data-state="ready"]`))}
			if tc.refused {
				run = append(run, chromedp.Func(func(context.Context, *chromedp.Target) error { f.mode.Store(frontRefused); return nil }))
				defer f.mode.Store(frontPass)
			}
			if tc.vault {
				vf.mode.Store(frontRefused)
				defer vf.mode.Store(frontPass)
			}
			run = append(run, chromedp.SetUploadFiles(chromedp.CSS("#key-file"), []string{tc.key}))
			if tc.fields != nil {
				fields := checkoutFields(ch.Card, ch.Expiry)
				for k, v := range tc.fields {
					fields[k] = v
				}
				run = append(run, chromedp.WaitVisible(chromedp.CSS("#checkout")), fillCheckout(fields), chromedp.Click(chromedp.CSS("#review")))
			}
			run = append(run, chromedp.WaitVisible(chromedp.CSS("#message")))
			if err := chromedp.Do(bt, run...); err != nil {
				t.Fatalf("%v\n%s", err, console)
			}
			msg := text(bt, "#message")
			if !strings.Contains(msg, tc.want) {
				t.Fatalf("message %q, want %q in it", msg, tc.want)
			}
			var previewShown bool
			previewShown, _ = chromedp.Run(bt, chromedp.Evaluate[bool](`!document.getElementById("preview").hidden`))
			if previewShown || f.sent.Load() != before {
				t.Fatalf("preview shown %v, %d orders sent", previewShown, f.sent.Load()-before)
			}
			for _, secret := range []string{ch.Card, "4111111111111112", addressCanary} {
				if strings.Contains(console.String(), secret) {
					t.Fatal("the console holds a card number or address")
				}
			}
		})
	}
	t.Logf("page load to ready to seal: %s ms (goal ≤ 1500)", strings.Join(readyMs, ", "))
}

// scanClear checks that no file under dir but the key files, binaries and
// the cardholders' own JSON holds a secret in clear.
func scanClear(t *testing.T, dir string, secrets ...string) {
	t.Helper()
	scanned := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasPrefix(rel, "bin"+string(filepath.Separator)) || strings.HasSuffix(p, ".json") || strings.HasSuffix(p, ".key") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		scanned++
		for _, s := range secrets {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s holds a secret in clear", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if scanned < 4 {
		t.Fatalf("scanned only %d files", scanned)
	}
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
