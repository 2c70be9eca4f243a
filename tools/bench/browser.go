package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The browser checkout's figures (issue 20): the sealing program's size as
// served and the time from page load to ready to seal in headless
// Chromium, from BenchmarkBrowserCheckout (bench/browser_test.go), run
// alone with -only browser and merged into the last full run's results.
const (
	browserPrefix = "browser checkout: "
	browserSize   = browserPrefix + "program size, gzip"
	browserReady  = browserPrefix + "page load to ready to seal"
	browserSeal   = browserPrefix + "seal in the page vs native, same order"
	browserBench  = "BenchmarkBrowserCheckout"
	browserGoalMB = 3.0
	browserGoalMS = 1500.0
)

// browserFigures turns the BenchmarkBrowserCheckout line into its figures.
func browserFigures(results []result) []Figure {
	var r *result
	for i := range results {
		if results[i].name == browserBench {
			r = &results[i]
		}
	}
	if r == nil {
		return nil
	}
	m := r.metrics
	judge := func(f Figure, ok bool) Figure {
		f.Meets = &ok
		return f
	}
	var figs []Figure
	if gz, rawB := m["wasm-gzip-bytes"], m["wasm-raw-bytes"]; gz > 0 && rawB > 0 {
		mb := gz / 1e6
		figs = append(figs, judge(Figure{Name: browserSize, Value: round(mb, 3), Unit: "MB", Baseline: "the program uncompressed",
			BaselineValue: round(rawB/1e6, 3), Ratio: round(gz/rawB, 4), Goal: fmt.Sprintf("≤ %g MB", browserGoalMB)}, mb <= browserGoalMB))
	}
	if ready, seal := m["ready-ms"], m["native-seal-ms"]; ready > 0 && seal > 0 {
		figs = append(figs, judge(Figure{Name: browserReady, Value: round(ready, 0), Unit: "ms", Baseline: "a native seal of a three-section order (order.Seal)",
			BaselineValue: round(seal, 2), Ratio: round(ready/seal, 1), Goal: fmt.Sprintf("≤ %g ms", browserGoalMS)}, ready <= browserGoalMS))
	}
	if page, native := m["page-seal-ms"], m["native-os2-seal-ms"]; page > 0 && native > 0 {
		// No goal: issue 20 asks for the ratio.
		figs = append(figs, Figure{Name: browserSeal, Value: round(page, 2), Unit: "ms", Baseline: "order.Seal natively, a fresh key cache each seal",
			BaselineValue: round(native, 2), Ratio: round(page/native, 2)})
	}
	return figs
}

// browserSpread is the readiness line of the report: median and range.
func browserSpread(results []result) string {
	for _, r := range results {
		if r.name == browserBench && r.metrics["ready-min-ms"] > 0 {
			return fmt.Sprintf("\nPage load to ready to seal: median %.0f ms, range %.0f–%.0f ms over the run's loads.\n",
				r.metrics["ready-ms"], r.metrics["ready-min-ms"], r.metrics["ready-max-ms"])
		}
	}
	return ""
}

// browserReport is the report's section on the browser figures.
func browserReport(figs []Figure, spread, raw string) string {
	var b strings.Builder
	b.WriteString("\n## Browser checkout (issue 20)\n\n")
	b.WriteString("`BenchmarkBrowserCheckout` builds `cmd/checkoutwasm` as `make web` does (`GOOS=js GOARCH=wasm`, `-ldflags=-s -w`, gzip -9), serves it with `merchant/checkout`, and opens the page in a fresh tab of Debian's headless Chromium each iteration: page load to `ready to seal` is the page's own `performance.now()` when the program is fetched, its SHA-384 checked, compiled and started (the country list is drawn after). The median is reported; a native seal of a three-section order is beside it for scale. Then the page places three orders against the real daemons (OS2) and the same order is sealed natively with `order.Seal` under the same order form, each seal with a fresh key cache; both bundles must open at the issuer with its keystore, and the seal times (the program's own clock around `order.Seal`, medians) are compared.\n\n")
	b.WriteString("| figure | value | baseline | baseline value | ratio | goal | |\n|---|---:|---|---:|---:|---|---|\n")
	for _, f := range figs {
		fmt.Fprintf(&b, "| %s | %s %s | %s | %s %s | %.3f | %s | %s |\n", f.Name, num(f.Value), f.Unit, f.Baseline, num(f.BaselineValue), baseUnit(f), f.Ratio, f.Goal, verdict(f))
	}
	b.WriteString(spread)
	var lines []string
	for _, l := range strings.Split(raw, "\n") {
		if strings.HasPrefix(l, browserBench) {
			lines = append(lines, l)
		}
	}
	if len(lines) > 0 {
		b.WriteString("\n```\n" + strings.Join(lines, "\n") + "\n```\n")
	}
	return b.String()
}

func baseUnit(f Figure) string {
	if f.Name == browserSize {
		return "MB"
	}
	return "ms"
}

// runBrowserOnly runs BenchmarkBrowserCheckout alone, prints its figures
// and merges them into outDir's results.json and report.md.
func runBrowserOnly(ctx context.Context, quick bool, outDir string) error {
	n := "9x"
	if quick {
		n = "3x"
	}
	start := time.Now()
	progress(os.Stderr, 0, 1, "building the checkout program and timing its page in headless Chromium", start)
	var raw strings.Builder
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^"+browserBench+"$", "-benchtime", n, "./bench/")
	results, err := runLines(cmd, &raw)
	progress(os.Stderr, 1, 1, "done", start)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return err
	}
	figs := browserFigures(results)
	if len(figs) == 0 {
		return errors.New("the browser run produced no " + browserBench + " line")
	}
	if err := mergeSection(outDir, browserPrefix, "\n## Browser checkout (issue 20)\n", figs, browserReport(figs, browserSpread(results), raw.String())); err != nil {
		return err
	}
	printTable(os.Stdout, figs, nil)
	fmt.Fprintf(os.Stderr, "bench: merged the browser figures into %s and %s\n", filepath.Join(outDir, "results.json"), filepath.Join(outDir, "report.md"))
	return nil
}
