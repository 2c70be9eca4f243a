package bench

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"orderseal/keygen"
	"orderseal/merchant/checkout"
	"orderseal/order"
	"orderseal/suite"
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
	b.ReportMetric(mid(fetched), "fetched-ms")
	b.ReportMetric(mid(seal), "native-seal-ms")
}

func mid(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}
