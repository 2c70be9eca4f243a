package main

import (
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	cases := []struct {
		line    string
		ok      bool
		name    string
		metrics map[string]float64
	}{
		{"BenchmarkDerive/k=1024-2   	     200	     19017 ns/op	     51234 x25519-ns/op	         0.3712 ratio-vs-x25519", true,
			"BenchmarkDerive/k=1024", map[string]float64{"ns/op": 19017, "x25519-ns/op": 51234, "ratio-vs-x25519": 0.3712}},
		{"BenchmarkVaultRegister 	 100	 512 ns/op	 100 B/op", true, "BenchmarkVaultRegister", map[string]float64{"ns/op": 512, "B/op": 100}},
		{"BenchmarkX-8 10 1.5e+06 ns/op", true, "BenchmarkX", map[string]float64{"ns/op": 1.5e6}},
		{"PASS", false, "", nil},
		{"ok  	orderseal/bench	0.890s", false, "", nil},
		{"BenchmarkBroken-2 12 ns/op", false, "", nil},
		{"BenchmarkBroken-2 x 12 ns/op", false, "", nil},
		{"goos: linux", false, "", nil},
	}
	for _, c := range cases {
		r, ok := parseLine(c.line)
		if ok != c.ok {
			t.Errorf("%q: ok %v", c.line, ok)
			continue
		}
		if !ok {
			continue
		}
		if r.name != c.name || len(r.metrics) != len(c.metrics) {
			t.Errorf("%q: %+v", c.line, r)
		}
		for k, v := range c.metrics {
			if r.metrics[k] != v {
				t.Errorf("%q: %s = %v, want %v", c.line, k, r.metrics[k], v)
			}
		}
	}
}

const sample = `goos: linux
BenchmarkDerive/k=1024-2   	 200	 30000 ns/op	 100000 x25519-ns/op	 0.30 ratio-vs-x25519
BenchmarkDerive/k=1024-2   	 200	 40000 ns/op	 100000 x25519-ns/op	 0.40 ratio-vs-x25519
BenchmarkDerive/k=1024-2   	 200	 32000 ns/op	 100000 x25519-ns/op	 0.32 ratio-vs-x25519
BenchmarkSealVsAge/cached-2 	 200	 90000 ns/op	 900000 age-ns/op	 0.1 ratio-vs-age
BenchmarkVaultReveal-2 	 200	 5000 ns/op	 1000 sqlite-select-ns/op	 5 ratio-vs-sqlite-select
BenchmarkIssue-2 	 128	 4000000 ns/op	 10000000 naive-ns/op	 0.4 ratio-vs-naive	 250 ids/s	 200 s/100k-ids
PASS
`

func TestFiguresAndOutputs(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "bench.txt")
	if err := os.WriteFile(in, []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), true, dir, in); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res Results
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	byName := map[string]Figure{}
	for _, f := range res.Figures {
		byName[f.Name] = f
	}
	if is := byName["Issue 100 000 identities, k=1024, all cores (projected)"]; is.Value != 200 || is.Unit != "s" ||
		is.BaselineValue != 500 || is.Ratio != 0.4 || is.Meets == nil || !*is.Meets {
		t.Fatalf("issuance: %+v (200 s projected, under the 300 s goal)", is)
	}
	if len(res.Figures) != 4 {
		t.Fatalf("figures: %+v", res.Figures)
	}
	d := byName["Blom derivation, k=1024"]
	if d.Ratio != 0.32 || d.Value != 32000 || d.BaselineValue != 100000 || d.Meets == nil || !*d.Meets {
		t.Fatalf("derivation: %+v (median of three runs, goal 0.35)", d)
	}
	s := byName["Seal, 3 sections, keys cached"]
	if s.Ratio != 0.1 || s.Meets == nil || *s.Meets {
		t.Fatalf("seal: %+v (10× faster misses the 20× goal)", s)
	}
	if r := byName["Vault reveal (signed HTTP)"]; r.Meets != nil || r.Goal != "" {
		t.Fatalf("reveal has no goal: %+v", r)
	}
	// Every key of the contract's shape is present.
	var raw map[string][]map[string]any
	json.Unmarshal(data, &raw)
	for _, k := range []string{"name", "value", "unit", "baseline", "baseline_value", "ratio", "goal", "meets"} {
		if _, ok := raw["figures"][0][k]; !ok {
			t.Errorf("results.json lacks %q", k)
		}
	}
	rep, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil || !strings.Contains(string(rep), "ratios.png") || !strings.Contains(string(rep), "MISSES") ||
		!strings.Contains(string(rep), "Goals not measured yet") {
		t.Fatalf("report.md: %v\n%s", err, rep)
	}
	f, err := os.Open(filepath.Join(dir, "ratios.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() < 500 {
		t.Fatalf("chart: %v %v", err, img)
	}
	if err := run(t.Context(), true, dir, filepath.Join(dir, "missing.txt")); err == nil {
		t.Fatal("a missing input gave no error")
	}
	if err := os.WriteFile(in, []byte("PASS\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), true, dir, in); err == nil {
		t.Fatal("no figures gave no error")
	}
}

const e2eSample = `BenchmarkE2E/sealed/clients=8 	 261	 50.00 orders/s	 100.0 p50-ms	 300.0 p99-ms	 30.0 accept-p99-ms	 0 errors	 25.0 vault-MiB	 23.0 issuer-MiB	 25.0 carrier-MiB	 30.0 merchant-MiB
BenchmarkE2E/null/clients=8 	 261	 52.00 orders/s	 90.0 p50-ms	 200.0 p99-ms	 30.0 accept-p99-ms	 0 errors	 25.0 vault-MiB	 23.0 issuer-MiB	 25.0 carrier-MiB	 24.0 merchant-MiB
BenchmarkE2E/sealed/clients=8 	 261	 48.00 orders/s	 110.0 p50-ms	 280.0 p99-ms	 30.0 accept-p99-ms	 0 errors	 25.0 vault-MiB	 23.0 issuer-MiB	 25.0 carrier-MiB	 30.0 merchant-MiB
BenchmarkE2E/null/clients=8 	 261	 48.00 orders/s	 90.0 p50-ms	 240.0 p99-ms	 30.0 accept-p99-ms	 0 errors	 25.0 vault-MiB	 23.0 issuer-MiB	 25.0 carrier-MiB	 24.0 merchant-MiB
BenchmarkE2E/sealed/clients=1 	 99	 20.00 orders/s	 20.0 p50-ms	 40.0 p99-ms	 30.0 accept-p99-ms	 0 errors	 25.0 vault-MiB	 23.0 issuer-MiB	 25.0 carrier-MiB	 30.0 merchant-MiB
BenchmarkScale/sealed/stored=1000/clients=8 	 300	 60.00 orders/s	 100.0 p50-ms	 200.0 p99-ms	 30.0 accept-p99-ms	 0 errors	 25.0 vault-MiB	 23.0 issuer-MiB	 25.0 carrier-MiB	 30.0 merchant-MiB
BenchmarkScale/sealed/stored=1000000/clients=8 	 300	 40.00 orders/s	 150.0 p50-ms	 300.0 p99-ms	 30.0 accept-p99-ms	 0 errors	 25.0 vault-MiB	 23.0 issuer-MiB	 25.0 carrier-MiB	 30.0 merchant-MiB
`

func TestE2EFigures(t *testing.T) {
	var rs []result
	for _, l := range strings.Split(e2eSample, "\n") {
		if r, ok := parseLine(l); ok {
			rs = append(rs, r)
		}
	}
	figs := e2eFigures(rs)
	byName := map[string]Figure{}
	for _, f := range figs {
		byName[f.Name] = f
	}
	cases := []struct {
		name         string
		value, base  float64
		ratio        float64
		meets, judge bool
	}{
		// medians over the two rounds: sealed 49 orders/s, null 50
		{"End to end, 8 clients: throughput", 49, 50, 1.0204, true, true},
		{"End to end, 8 clients: p50 latency", 105, 90, 1.1667, false, false},
		{"End to end, 8 clients: p99 latency", 290, 220, 1.3182, false, true},
		{"RSS of the merchant at 8 clients", 30, 24, 1.25, false, false},
		{"Throughput with 1 000 000 stored orders", 40, 60, 1.5, false, true},
	}
	for _, c := range cases {
		f, ok := byName[c.name]
		if !ok {
			t.Errorf("no figure %q in %v", c.name, figs)
			continue
		}
		if f.Value != c.value || f.BaselineValue != c.base || f.Ratio != c.ratio {
			t.Errorf("%s: value %v base %v ratio %v, want %v %v %v", c.name, f.Value, f.BaselineValue, f.Ratio, c.value, c.base, c.ratio)
		}
		if (f.Meets != nil) != c.judge || (f.Meets != nil && *f.Meets != c.meets) {
			t.Errorf("%s: meets %v, want judged=%v meets=%v", c.name, f.Meets, c.judge, c.meets)
		}
	}
	// One client has no null relay line: no figure rather than a made-up one.
	for name := range byName {
		if strings.Contains(name, "1 clients") {
			t.Errorf("figure %q without its null relay baseline", name)
		}
	}
}

const os2Sample = `BenchmarkOS2Pairwise-2 	 600	 1850000 ns/op	 1.01 ratio-vs-sok-pairing	 1830000 sok-pairing-ns/op
BenchmarkOS2Pairwise-2 	 600	 2600000 ns/op	 1.30 ratio-vs-sok-pairing	 2000000 sok-pairing-ns/op
BenchmarkOS2Pairwise-2 	 600	 1900000 ns/op	 1.00 ratio-vs-sok-pairing	 1900000 sok-pairing-ns/op
BenchmarkOS2SealVsAge/cached-2 	 2000	 500000 ns/op	 1000000 age-pq-ns/op	 0.5 ratio-vs-age-pq
BenchmarkOS2SealVsAge/uncached-2 	 100	 8000000 ns/op	 1000000 age-pq-ns/op	 8 ratio-vs-age-pq
`

// The OS2 figures carry their goals; the median ratio decides.
func TestOS2Figures(t *testing.T) {
	var rs []result
	for _, l := range strings.Split(os2Sample, "\n") {
		if r, ok := parseLine(l); ok {
			rs = append(rs, r)
		}
	}
	byName := map[string]Figure{}
	for _, f := range figures(rs) {
		byName[f.Name] = f
	}
	for _, c := range []struct {
		name         string
		ratio        float64
		judge, meets bool
	}{
		{"OS2 pairwise derivation, k=1024, uncached", 1.0109, true, true}, // median of 1.0109, 1.3, 1.0
		{"OS2 seal, 4 sections, pairwise keys cached", 0.5, true, true},
		{"OS2 seal, 4 sections, no key cached", 8, false, false},
	} {
		f, ok := byName[c.name]
		if !ok {
			t.Errorf("no figure %q", c.name)
			continue
		}
		if f.Ratio != c.ratio || (f.Meets != nil) != c.judge || (f.Meets != nil && *f.Meets != c.meets) || (f.Goal != "") != c.judge {
			t.Errorf("%s: ratio %v goal %q meets %v, want %v judged=%v meets=%v", c.name, f.Ratio, f.Goal, f.Meets, c.ratio, c.judge, c.meets)
		}
	}
}

// The OS2 end-to-end goal is pending until stress load emits the mixed
// OS1 and OS2 lines, and then judged on the median of each round pair's
// ratio; lines of other mixes or levels do not count.
func TestOS2E2EFigure(t *testing.T) {
	parse := func(s string) []result {
		var rs []result
		for _, l := range strings.Split(s, "\n") {
			if r, ok := parseLine(l); ok {
				rs = append(rs, r)
			}
		}
		return rs
	}
	line := func(mode string, clients, pct int, rate float64) string {
		return fmt.Sprintf("BenchmarkE2E/%s/clients=%d/new=%d \t 200\t %.2f orders/s\t 150.0 p50-ms\t 400.0 p99-ms\t 300 run-orders\t 0.5 new-share\n",
			mode, clients, pct, rate)
	}
	cases := []struct {
		name        string
		extra       string
		pending     bool
		value, base float64
		ratio       float64 // cost ratio OS1 ÷ OS2
		meets       bool
	}{
		{"no mixed lines", "", true, 0, 0, 0, false},
		// the unmixed OS2 line of an older run is not the figure
		{"unmixed OS2 only", "BenchmarkE2E/os2/clients=8 \t 200\t 30.00 orders/s\n", true, 0, 0, 0, false},
		{"OS1 only", line("sealed", 8, 50, 40), true, 0, 0, 0, false},
		{"other mix or level", line("sealed", 8, 25, 40) + line("os2", 8, 25, 30) + line("sealed", 32, 50, 40) + line("os2", 32, 50, 30), true, 0, 0, 0, false},
		// pairs 40/30, 50/20, 44/33: ratios 1.3333, 2.5, 1.3333; median 1.3333
		{"three rounds meet", line("sealed", 8, 50, 40) + line("os2", 8, 50, 30) + line("sealed", 8, 50, 50) + line("os2", 8, 50, 20) +
			line("sealed", 8, 50, 44) + line("os2", 8, 50, 33), false, 30, 44, 1.3333, true},
		{"one round misses", line("sealed", 8, 50, 60) + line("os2", 8, 50, 30), false, 30, 60, 2, false},
		{"exactly 0.6×", line("sealed", 8, 50, 50) + line("os2", 8, 50, 30), false, 30, 50, 1.6667, true},
	}
	for _, c := range cases {
		figs := e2eFigures(parse(e2eSample + c.extra))
		p := slices.DeleteFunc(pendingGoals(figs), func(p Pending) bool { return p.Name != os2E2EName })
		var f *Figure
		for i := range figs {
			if figs[i].Name == os2E2EName {
				f = &figs[i]
			}
		}
		if c.pending {
			if len(p) != 1 || p[0].Name != os2E2EName || p[0].Goal == "" || p[0].Reason == "" || f != nil {
				t.Errorf("%s: pending %+v, figure %+v", c.name, p, f)
			}
			continue
		}
		if len(p) != 0 || f == nil {
			t.Errorf("%s: pending %+v, figure %v", c.name, p, f)
			continue
		}
		if f.Value != c.value || f.BaselineValue != c.base || f.Ratio != c.ratio || f.Goal != os2E2EGoal || f.Meets == nil || *f.Meets != c.meets {
			t.Errorf("%s: %+v, want value %v base %v ratio %v meets %v", c.name, *f, c.value, c.base, c.ratio, c.meets)
		}
	}
}

func TestSetupTimes(t *testing.T) {
	raw := `# sealed: cluster up in 4.0 s (k=1024, 32 cardholders, 0 new)
BenchmarkE2E/sealed/clients=1 	80	13.33 orders/s
# os2: cluster up in 9.0 s (k=1024, 8 cardholders, 300 new)
# sealed: cluster up in 6.0 s (k=1024, 32 cardholders, 0 new)
# os2: cluster up in 7.0 s (k=1024, 8 cardholders, 300 new)
# os2: cluster up in 8.0 s (k=1024, 8 cardholders, 300 new)
# os2: cluster up in soon s (k=1024, 8 cardholders, 300 new)
# null: cluster up in 2.0 s (k=1024, 32 cardholders, 0 new)
`
	want := "- sealed (k=1024, 32 cardholders, 0 new): 5.0 s (2 runs)\n- os2 (k=1024, 8 cardholders, 300 new): 8.0 s (3 runs)\n- null (k=1024, 32 cardholders, 0 new): 2.0 s (1 run)\n"
	if got := setupTimes(raw); got != want {
		t.Fatalf("setupTimes:\n%s\nwant\n%s", got, want)
	}
	if got := setupTimes("PASS\n"); got != "" {
		t.Fatalf("no setup lines: %q", got)
	}
}

// The mixed rounds alternate OS1 and OS2, each profiled into its round's
// directory, at os2E2EClients with half new cardholders.
func TestLoadPlanSteps(t *testing.T) {
	for _, c := range []struct {
		quick bool
		mix   int
	}{{false, 3}, {true, 1}} {
		p := newLoadPlan(c.quick, "/w")
		var mixed []step
		for _, s := range p.steps() {
			if slices.Contains(s.args, "-new") {
				mixed = append(mixed, s)
			}
		}
		if len(mixed) != 2*c.mix || len(p.mixDirs()) != c.mix {
			t.Fatalf("quick=%v: %d mixed steps, %d dirs", c.quick, len(mixed), len(p.mixDirs()))
		}
		for i, s := range mixed {
			args := strings.Join(s.args, " ")
			su := []string{"os1", "os2"}[i%2]
			want := fmt.Sprintf("-suite %s -clients %d -new %s -cpuprofile %s", su, os2E2EClients, mixNew, p.mixDirs()[i/2])
			if !strings.HasPrefix(args, want) {
				t.Errorf("quick=%v step %d: %q, want it to start %q", c.quick, i, args, want)
			}
		}
	}
}
