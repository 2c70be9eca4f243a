package bench

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"orderseal/cardholder/compose"
	"orderseal/keygen"
	merchantapi "orderseal/merchant/api"
	"orderseal/merchant/checkout"
	"orderseal/order"
	"orderseal/order/address"
	"orderseal/suite"
	"orderseal/suite/keystore"
	cluster "orderseal/tstest/cluster"
)

// BenchmarkBrowserCheckout: the checkout's sealing program as make web
// builds it, served gzip-compressed by merchant/checkout, and the time from
// page load to ready to seal in Debian's headless Chromium (a fresh tab,
// no cache, each iteration), beside a native seal of a three-section order
// for scale. Run alone by `bench -only browser`.
func BenchmarkBrowserCheckout(b *testing.B) {
	dir := b.TempDir()
	wasm := filepath.Join(dir, checkout.WASMFile)
	build := exec.Command("go", append(append([]string{"build"}, checkout.BuildFlags...), "-o", wasm, "../cmd/checkoutwasm")...)
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build the checkout: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(wasm)
	if err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("sh", "-c", `gzip -9 -c "$0" > "$0.gz"`, wasm).CombinedOutput(); err != nil { // as make web
		b.Fatalf("gzip the checkout: %v\n%s", err, out)
	}
	root, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		b.Fatal(err)
	}
	loader, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(root)), "lib", "wasm", checkout.WASMExecFile))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, checkout.WASMExecFile), loader, 0o644); err != nil {
		b.Fatal(err)
	}
	site, err := checkout.New(checkout.Options{Dir: dir, MerchantID: "merchant:shop.example"})
	if err != nil {
		b.Fatal(err)
	}
	gz, _ := site.WASMSize()
	srv := httptest.NewServer(site)
	defer srv.Close()

	chromium, err := exec.LookPath("chromium")
	if err != nil {
		b.Fatalf("no chromium on PATH (%v): make chromium installs Debian's package", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.UserDataDir(b.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	browser, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	if err := chromedp.Do(browser); err != nil { // starts the browser, untimed
		b.Fatal(err)
	}
	var ready, fetched []float64
	b.ResetTimer()
	for range b.N {
		tabCtx, cancelT := chromedp.NewContext(browser)
		tctx, cancelD := context.WithTimeout(tabCtx, time.Minute)
		var r, f chromedp.AttributeResult
		err := chromedp.Do(tctx,
			chromedp.Navigate(srv.URL+checkout.Prefix),
			chromedp.WaitVisible(chromedp.CSS(`body[data-state="ready"]`)),
			chromedp.Func(func(ctx context.Context, tg *chromedp.Target) (err error) {
				if r, err = chromedp.AttributeValue(chromedp.CSS("body"), "data-ready-ms")(ctx, tg); err != nil {
					return err
				}
				f, err = chromedp.AttributeValue(chromedp.CSS("body"), "data-fetched-ms")(ctx, tg)
				return err
			}),
		)
		cancelD()
		cancelT()
		if err != nil {
			b.Fatal(err)
		}
		rv, err1 := strconv.ParseFloat(r.Value, 64)
		fv, err2 := strconv.ParseFloat(f.Value, 64)
		if err1 != nil || err2 != nil {
			b.Fatalf("ready %q, fetched %q", r.Value, f.Value)
		}
		ready, fetched = append(ready, rv), append(fetched, fv)
	}
	b.StopTimer()
	// The testing package runs a benchmark once with b.N = 1 before its
	// -benchtime run: the cluster's orders are placed once.
	sealed.Do(func() { sealed.page, sealed.native = sealBrowserAndNative(b, dir, browser) })
	if len(sealed.page) == 0 || len(sealed.native) == 0 {
		b.Fatal("the seal comparison failed in an earlier run")
	}
	inPage, native := sealed.page, sealed.native

	o, alice, parties, _ := loadSealFixture(b, keygen.DefaultK)
	var seal []float64
	for range 5 {
		t0 := time.Now()
		if _, err := order.Seal(o, suite.NewKeys(alice, 4), parties, order.SealOptions{Now: time.Now()}); err != nil {
			b.Fatal(err)
		}
		seal = append(seal, float64(time.Since(t0).Microseconds())/1000)
	}
	b.ReportMetric(float64(gz), "wasm-gzip-bytes")
	b.ReportMetric(float64(len(raw)), "wasm-raw-bytes")
	b.ReportMetric(mid(ready), "ready-ms")
	b.ReportMetric(slices.Min(ready), "ready-min-ms")
	b.ReportMetric(slices.Max(ready), "ready-max-ms")
	b.ReportMetric(mid(fetched), "fetched-ms")
	b.ReportMetric(mid(seal), "native-seal-ms")
	b.ReportMetric(mid(inPage), "page-seal-ms")
	b.ReportMetric(mid(native), "native-os2-seal-ms")
}

var sealed struct {
	sync.Once
	page, native []float64
}

// sealBrowserAndNative places orders through the checkout page against the
// real daemons (OS2, the suite cardholder order seals under by default)
// and seals the same order natively with order.Seal, each seal with a
// fresh key cache as the page's first; both bundles must open at the
// issuer, with the issuer's keystore. It answers the page's seal times (the
// program's own clock around order.Seal) and the native ones.
func sealBrowserAndNative(b *testing.B, web string, browser context.Context) (inPage, native []float64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin := filepath.Join(b.TempDir(), "bin")
	build := exec.Command("go", "build", "-tags", "orderseal_testkdf", "-o", bin+string(filepath.Separator),
		"../cmd/keygen", "../cmd/cardholder", "../cmd/merchant", "../cmd/issuer", "../cmd/carrier")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	c, err := cluster.Start(ctx, cluster.Config{Dir: filepath.Join(b.TempDir(), "cluster"), BinDir: bin, Cardholders: 1, Logf: b.Logf,
		DaemonArgs: map[string][]string{cluster.Merchant: {"-checkout", web}}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ch := c.Cardholders()[0]
	target, _ := url.Parse(c.URL(cluster.Merchant))
	var mu sync.Mutex
	var sent [][]byte // the bundles the page submitted
	rp := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == merchantapi.PathOrders {
			body, _ := io.ReadAll(r.Body)
			mu.Lock()
			sent = append(sent, body)
			mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rp.ServeHTTP(w, r)
	}))
	defer front.Close()

	// The order: two paperbacks and a mug to an inline address, as
	// e2e.TestBrowserCheckout places it.
	items := map[string]int64{"BOOK-1984.pb": 2, "mug_blue-350": 1}
	buyer := order.Buyer{Name: "Alice Example", Email: "alice@example.org", Phone: "+49 151 12345678"}
	ship := order.Address{Name: "Bob Beispiel", Line1: "Invalidenstrasse 12", PostalCode: "10115", City: "Berlin", Country: "DE"}
	fields := [][2]string{{`input[data-sku="BOOK-1984.pb"]`, "2"}, {`input[data-sku="mug_blue-350"]`, "1"},
		{"#buyer-name", buyer.Name}, {"#buyer-email", buyer.Email}, {"#buyer-phone", buyer.Phone},
		{"#country", ship.Country}, {"#addr-name", ship.Name}, {"#line1", ship.Line1}, {"#postcode", ship.PostalCode}, {"#city", ship.City},
		{"#card-number", ch.Card}, {"#card-expiry", ch.Expiry}}
	for range 3 {
		tabCtx, cancelT := chromedp.NewContext(browser)
		tctx, cancelD := context.WithTimeout(tabCtx, 2*time.Minute)
		run := []chromedp.Action[chromedp.Void]{
			chromedp.Navigate(front.URL + checkout.Prefix),
			chromedp.WaitVisible(chromedp.CSS(`body[data-state="ready"]`)),
			chromedp.SetUploadFiles(chromedp.CSS("#key-file"), []string{c.KeyFile(ch.ID)}),
			chromedp.WaitVisible(chromedp.CSS("body[data-labels]")),
			chromedp.Click(chromedp.CSS("#ship-inline")),
		}
		for _, f := range fields {
			run = append(run, chromedp.SetValue(chromedp.CSS(f[0]), f[1]),
				chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
					_, err := chromedp.Evaluate[any](`document.querySelector(`+strconv.Quote(f[0])+`).dispatchEvent(new Event("input"))`)(ctx, tg)
					return err
				}))
		}
		var ms chromedp.AttributeResult
		run = append(run, chromedp.Click(chromedp.CSS("#review")), chromedp.WaitVisible(chromedp.CSS("#preview")),
			chromedp.Click(chromedp.CSS("#place")), chromedp.WaitVisible(chromedp.CSS("body[data-seal-ms]")),
			chromedp.Func(func(ctx context.Context, tg *chromedp.Target) (err error) {
				ms, err = chromedp.AttributeValue(chromedp.CSS("body"), "data-seal-ms")(ctx, tg)
				return err
			}))
		err := chromedp.Do(tctx, run...)
		msg, _ := chromedp.Run(tctx, chromedp.Text(chromedp.CSS("#message")))
		cancelD()
		cancelT()
		if err != nil {
			b.Fatalf("placing the order in the page: %v (message %q)", err, msg)
		}
		v, err := strconv.ParseFloat(ms.Value, 64)
		if err != nil || v <= 0 {
			b.Fatalf("the page's seal time %q", ms.Value)
		}
		inPage = append(inPage, v)
	}

	// The same order, sealed natively under the same form.
	raw, err := os.ReadFile(c.KeyFile(ch.ID))
	if err != nil {
		b.Fatal(err)
	}
	key, err := keygen.ParsePartyKey(raw)
	if err != nil {
		b.Fatal(err)
	}
	defer key.Destroy()
	mc, err := merchantapi.NewClient(ch.Key, c.URL(cluster.Merchant), cluster.MerchantID, &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	form, err := mc.OrderForm(ctx)
	if err != nil {
		b.Fatal(err)
	}
	o := &order.Order{Buyer: buyer, Card: order.Card{Number: ch.Card, Expiry: ch.Expiry}, Currency: form.Currency,
		Plan: order.Plan{Installments: 1}, Recipient: order.Recipient{Name: ship.Name}}
	for _, p := range form.Catalog {
		if q := items[p.SKU]; q > 0 {
			o.Items = append(o.Items, order.Item{SKU: p.SKU, Name: p.Name, Qty: q, UnitPrice: p.UnitPrice})
			o.Total += q * p.UnitPrice
		}
	}
	a, err := address.Normalize(ship)
	if err != nil {
		b.Fatal(err)
	}
	o.ShipTo.Address, o.ShipTo.Country = &a, a.Country
	if o.Buyer.Phone, err = address.Phone(o.Buyer.Phone, ""); err != nil {
		b.Fatal(err)
	}
	o.Recipient.Phone = o.Buyer.Phone
	pol, err := compose.PolicyFor(form, o, a.Country)
	if err != nil {
		b.Fatal(err)
	}
	parties := order.Parties{Merchant: form.Merchant, Issuer: form.Issuers[0], Carrier: form.Carrier}
	var nb *order.Bundle
	for range 5 {
		keys := suite.NewKeys(key, 8)
		t0 := time.Now()
		nb, err = order.Seal(o, keys, parties, order.SealOptions{Directory: form.Directory, Policy: pol})
		native = append(native, float64(time.Since(t0).Microseconds())/1000)
		if err != nil {
			b.Fatal(err)
		}
	}

	// Both open at the issuer, with its own keystore.
	issuer, err := keystore.Open(c.PartyKey(cluster.IssuerID), keygen.RoleIssuer, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) != len(inPage) {
		b.Fatalf("%d bundles reached the merchant, %d orders placed", len(sent), len(inPage))
	}
	pb, err := order.ParseBundle(sent[len(sent)-1])
	if err != nil {
		b.Fatal(err)
	}
	for name, bundle := range map[string]*order.Bundle{"the page's": pb, "the native": nb} {
		sec, err := order.Open(bundle, issuer, order.RoleIssuer, order.OpenOptions{})
		if err != nil {
			b.Fatalf("%s bundle does not open at the issuer: %v", name, err)
		}
		if sec.Card == nil || sec.Card.Number != ch.Card || sec.Total == nil || sec.Total.Amount != o.Total {
			b.Fatalf("%s bundle's issuer section: card %v total %+v", name, sec.Card != nil, sec.Total)
		}
		if bundle.Suite != nb.Suite || policyID(bundle) != policyID(nb) || len(bundle.Sections) != len(nb.Sections) {
			b.Fatalf("%s bundle: suite %s policy %q, %d sections; the native %s %q %d", name, bundle.Suite, policyID(bundle), len(bundle.Sections), nb.Suite, policyID(nb), len(nb.Sections))
		}
	}
	b.Logf("seal of the same order (%s, %d sections): in the page %v ms, native %v ms", nb.Suite, len(nb.Sections), inPage, native)
	return inPage, native
}

func policyID(b *order.Bundle) string {
	if b.Policy == nil {
		return ""
	}
	return b.Policy.ID
}

func mid(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}
