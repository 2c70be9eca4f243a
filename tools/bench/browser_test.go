package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBrowserFigures: the benchmark line becomes the size and readiness
// figures, judged against 3 MB and 1.5 s.
func TestBrowserFigures(t *testing.T) {
	for _, tc := range []struct {
		line             string
		sizeOK, readyOK  bool
		sizeMB, readyMS  float64
		readyRatio, nFig int
	}{
		{"BenchmarkBrowserCheckout-2 \t 5\t 1.0 ns/op\t 2982226 wasm-gzip-bytes\t 12363235 wasm-raw-bytes\t 900 ready-ms\t 400 fetched-ms\t 9.0 native-seal-ms",
			true, true, 2.982, 900, 100, 2},
		{"BenchmarkBrowserCheckout \t 5\t 1.0 ns/op\t 6053958 wasm-gzip-bytes\t 25680106 wasm-raw-bytes\t 5717 ready-ms\t 3227 fetched-ms\t 10 native-seal-ms",
			false, false, 6.054, 5717, 572, 2},
	} {
		r, ok := parseLine(tc.line)
		if !ok {
			t.Fatalf("line not parsed: %q", tc.line)
		}
		figs := browserFigures([]result{r})
		if len(figs) != tc.nFig {
			t.Fatalf("%d figures: %+v", len(figs), figs)
		}
		size, ready := figs[0], figs[1]
		if size.Name != browserSize || size.Value != tc.sizeMB || *size.Meets != tc.sizeOK {
			t.Errorf("size %+v, want %v MB meets %v", size, tc.sizeMB, tc.sizeOK)
		}
		if ready.Name != browserReady || ready.Value != tc.readyMS || *ready.Meets != tc.readyOK || int(ready.Ratio+0.5) != tc.readyRatio {
			t.Errorf("ready %+v, want %v ms meets %v ratio %d", ready, tc.readyMS, tc.readyOK, tc.readyRatio)
		}
	}
	r, _ := parseLine("BenchmarkBrowserCheckout 9 1.0 ns/op 2982226 wasm-gzip-bytes 12363235 wasm-raw-bytes 1400 ready-ms 1200 ready-min-ms 2100 ready-max-ms 400 fetched-ms 0.05 native-seal-ms 6.5 page-seal-ms 1.3 native-os2-seal-ms")
	figs := browserFigures([]result{r})
	if len(figs) != 3 || figs[2].Name != browserSeal || figs[2].Value != 6.5 || figs[2].BaselineValue != 1.3 || figs[2].Ratio != 5 || figs[2].Meets != nil {
		t.Fatalf("the seal figure: %+v", figs)
	}
	if s := browserSpread([]result{r}); !strings.Contains(s, "median 1400 ms, range 1200–2100 ms") {
		t.Fatalf("spread %q", s)
	}
	if figs := browserFigures(nil); figs != nil {
		t.Fatalf("no line, figures %+v", figs)
	}
}

// TestMergeBrowserSection: -only browser replaces its own figures and section and
// keeps the rest of a full run's results.
func TestMergeBrowserSection(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "results.json"), []byte(`{"figures":[{"name":"seal","value":1},{"name":"browser checkout: old","value":9}]}`), 0o644)
	os.WriteFile(filepath.Join(dir, "report.md"), []byte("# Report\n\n## Browser checkout (issue 20)\n\nold\n\n## Raw output\n\nraw\n"), 0o644)
	r, _ := parseLine("BenchmarkBrowserCheckout 5 1.0 ns/op 2982226 wasm-gzip-bytes 12363235 wasm-raw-bytes 900 ready-ms 400 fetched-ms 9.0 native-seal-ms")
	figs := browserFigures([]result{r})
	if err := mergeSection(dir, browserPrefix, "\n## Browser checkout (issue 20)\n", figs, browserReport(figs, "", "")); err != nil {
		t.Fatal(err)
	}
	res, _ := os.ReadFile(filepath.Join(dir, "results.json"))
	if s := string(res); !strings.Contains(s, `"seal"`) || strings.Contains(s, "old") || !strings.Contains(s, browserReady) {
		t.Fatalf("results.json:\n%s", s)
	}
	rep, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if s := string(rep); strings.Contains(s, "\nold\n") || strings.Count(s, "## Browser checkout") != 1 || !strings.Contains(s, "## Raw output\n\nraw") || !strings.Contains(s, "meets") {
		t.Fatalf("report.md:\n%s", s)
	}
}
