// Command bench runs orderseal's benchmarks and reports every figure as a
// ratio against a baseline measured in the same process, beside its goal:
// `make bench` (about 13 minutes) and `make bench-quick` (under 3);
// `make bench-flood` runs the flood figures alone (`-only flood`, about 3
// minutes) and merges them into the last full run's results; `-only
// against` (about 6 minutes) compares this tree's daemons with those of an
// earlier commit (-against, built from git) at 32 clients: CPU per order
// from /proc, throughput, p99, and their profiles' top ten.
//
// It runs `go test -bench` on ./bench/, shows a progress bar, prints the
// ratio table, and writes bench/results.json, bench/report.md and
// bench/ratios.png.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// Figure is one line of results.json.
type Figure struct {
	Name          string  `json:"name"`
	Value         float64 `json:"value"`
	Unit          string  `json:"unit"`
	Baseline      string  `json:"baseline"`
	BaselineValue float64 `json:"baseline_value"`
	Ratio         float64 `json:"ratio"`
	Goal          string  `json:"goal"`
	Meets         *bool   `json:"meets"` // null: no goal set
	// Breakdown is informational: where the OS2 end-to-end figure's
	// difference goes, from the rounds' CPU profiles.
	Breakdown *Breakdown `json:"breakdown,omitempty"`

	goalMax float64 // the goal as a ratio (≤), for the chart; 0: none
}

// Results is results.json.
type Results struct {
	Figures []Figure  `json:"figures"`
	Pending []Pending `json:"pending,omitempty"` // goals not measured yet
}

// Pending is a goal that has no figure yet, and why.
type Pending struct {
	Name   string `json:"name"`
	Goal   string `json:"goal"`
	Reason string `json:"reason"`
}

// spec says where a figure comes from: a benchmark, the metric holding its
// own cost, the metric holding the paired baseline's, and the goal on the
// ratio (op cost / baseline cost, so lower is better).
type spec struct {
	name     string
	bench    string // full benchmark name without the -N suffix
	baseline string // what the baseline is
	baseUnit string // metric carrying the baseline's cost per op
	goalMax  float64
	goalText string

	// A figure with an absolute goal reports valueUnit (scaled from ns/op
	// by the ratio for its baseline) and meets it when value ≤ absMax.
	valueUnit string
	absMax    float64
}

// specs are the figures of the micro benchmarks in ./bench/.
var specs = []spec{
	{"Blom derivation, k=256", "BenchmarkDerive/k=256", "X25519 shared secret (crypto/ecdh)", "x25519-ns/op", 0, "", "", 0},
	{"Blom derivation, k=1024", "BenchmarkDerive/k=1024", "X25519 shared secret (crypto/ecdh)", "x25519-ns/op", 0.35, "≤ 0.35× X25519", "", 0},
	{"Blom derivation, k=4096", "BenchmarkDerive/k=4096", "X25519 shared secret (crypto/ecdh)", "x25519-ns/op", 0, "", "", 0},
	{"Seal, 3 sections, keys cached", "BenchmarkSealVsAge/cached", "age: 3 sections to 3 X25519 recipients", "age-ns/op", 1.0 / 20, "≥ 20× faster than age", "", 0},
	{"Seal, 3 sections, no key cached", "BenchmarkSealVsAge/uncached", "age: 3 sections to 3 X25519 recipients", "age-ns/op", 1.0 / 5, "≥ 5× faster than age", "", 0},
	{"Open one section, key cached", "BenchmarkOpenVsAge/cached", "age: decrypt one section", "age-ns/op", 0, "", "", 0},
	{"Open one section, key not cached", "BenchmarkOpenVsAge/uncached", "age: decrypt one section", "age-ns/op", 0, "", "", 0},
	{"OS2 pairwise derivation, k=1024, uncached", "BenchmarkOS2Pairwise", "bare SOK pairing: hash to G2 + pairing", "sok-pairing-ns/op", 1.2, "≤ 1.2× a bare SOK pairing", "", 0},
	{"OS2 seal, 4 sections, pairwise keys cached", "BenchmarkOS2SealVsAge/cached", "age: 4 sections to 4 ML-KEM-768+X25519 recipients", "age-pq-ns/op", 1.0, "≤ 1.0× age (post-quantum)", "", 0},
	{"OS2 seal, 4 sections, no key cached", "BenchmarkOS2SealVsAge/uncached", "age: 4 sections to 4 ML-KEM-768+X25519 recipients", "age-pq-ns/op", 0, "", "", 0},
	{"Vault register (signed HTTP)", "BenchmarkVaultRegister", "raw SQLite insert, same size and durability", "sqlite-insert-ns/op", 1 / 0.8, "≥ 0.8× raw insert throughput", "", 0},
	{"Vault reveal (signed HTTP, audited), 8 callers", "BenchmarkVaultReveal", "raw SQLite select of the same row, 8 readers", "sqlite-select-ns/op", 5, "≤ 5× a raw select", "", 0},
	{"Vault signed round trip, no audit (list own tokens), 8 callers: the floor under a reveal", "BenchmarkVaultSignedFloor", "raw SQLite select of the same row, 8 readers", "sqlite-select-ns/op", 0, "", "", 0},
	{"Vault batch tokenize, 10 000 addresses (signed HTTP, 1 000 a request)", "BenchmarkVaultBatchRegister", "10 000 single register requests, 32 callers",
		"single-ns/op", 1.0 / 5, "≥ 5× the throughput of single requests", "", 0},
	{name: "Issue 100 000 identities, k=1024, all cores (projected)", bench: "BenchmarkIssue", baseline: "per-identity Issue",
		baseUnit: "naive-ns/op", goalText: "< 300 s", valueUnit: "s/100k-ids", absMax: 300},
	{name: "Issue 100 000 OS2 identities, k=1024, all cores (projected)", bench: "BenchmarkIssueOS2", baseline: "per-identity Issue",
		baseUnit: "naive-ns/op", goalText: "< 360 s", valueUnit: "s/100k-ids", absMax: 360},
}

// result is one parsed benchmark line.
type result struct {
	name    string
	n       int64
	metrics map[string]float64
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$`)

// parseLine reads a `go test -bench` result line: name, iterations, then
// value-unit pairs. ok is false for any other line.
func parseLine(line string) (result, bool) {
	m := benchLine.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		return result{}, false
	}
	n, err := strconv.ParseInt(m[2], 10, 64)
	if err != nil {
		return result{}, false
	}
	f := strings.Fields(m[3])
	if len(f) == 0 || len(f)%2 != 0 {
		return result{}, false
	}
	r := result{name: m[1], n: n, metrics: map[string]float64{}}
	for i := 0; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return result{}, false
		}
		r.metrics[f[i+1]] = v
	}
	return r, true
}

// figures turns parsed results into figures, in spec order. A benchmark
// run several times (-count) contributes its median.
func figures(results []result) []Figure {
	var out []Figure
	for _, s := range specs {
		var ops, bases []float64
		for _, r := range results {
			if r.name != s.bench {
				continue
			}
			op, ok1 := r.metrics["ns/op"]
			base, ok2 := r.metrics[s.baseUnit]
			if ok1 && ok2 && base > 0 {
				ops, bases = append(ops, op), append(bases, base)
			}
		}
		if len(ops) == 0 {
			continue
		}
		f := Figure{Name: s.name, Value: median(ops), Unit: "ns/op", Baseline: s.baseline, BaselineValue: median(bases), Goal: s.goalText}
		ratios := make([]float64, len(ops))
		for i := range ops {
			ratios[i] = ops[i] / bases[i]
		}
		f.Ratio = round(median(ratios), 4)
		f.goalMax = s.goalMax
		if s.goalMax > 0 {
			meets := f.Ratio <= s.goalMax
			f.Meets = &meets
		}
		if s.valueUnit != "" {
			var vals []float64
			for _, r := range results {
				if v, ok := r.metrics[s.valueUnit]; ok && r.name == s.bench {
					vals = append(vals, v)
				}
			}
			if len(vals) > 0 {
				unit, _, _ := strings.Cut(s.valueUnit, "/") // "s/100k-ids": seconds
				f.Value, f.Unit = round(median(vals), 1), unit
				f.BaselineValue = round(f.Value/f.Ratio, 1)
				meets := f.Value <= s.absMax
				f.Meets = &meets
			}
		}
		out = append(out, f)
	}
	return out
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// progress draws a bar on w for done of total benchmarks.
func progress(w io.Writer, done, total int, current string, start time.Time) {
	const width = 30
	filled := width * done / max(total, 1)
	fmt.Fprintf(w, "\r\033[K[%s%s] %d/%d %s (%s)", strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		done, total, current, time.Since(start).Truncate(time.Second))
}

func main() {
	quick := flag.Bool("quick", false, "fewer iterations: the same figures in under 2 minutes")
	out := flag.String("out", "bench", "directory for results.json, report.md and ratios.png")
	from := flag.String("from", "", "read `go test -bench` output from this file instead of running it")
	only := flag.String("only", "", "run only this part and merge its figures into the results.json and report.md of -out: flood, postgres, browser, or against (this tree's daemons against -against's)")
	against := flag.String("against", defaultAgainst, "with -only against: the earlier commit (any git revision) whose daemons are the baseline")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch *only {
	case "":
		err = run(ctx, *quick, *out, *from)
	case "flood":
		err = runFloodOnly(ctx, *quick, *out)
	case "postgres":
		err = runPostgresOnly(ctx, *quick, *out)
	case "browser":
		err = runBrowserOnly(ctx, *quick, *out)
	case "against":
		err = runAgainstOnly(ctx, *quick, *out, *against)
	default:
		err = fmt.Errorf("-only %q: want flood, postgres, browser or against", *only)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: error:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, quick bool, outDir, from string) error {
	var results []result
	var raw strings.Builder
	var profile string // go tool pprof -top of the end-to-end run
	var bd *Breakdown  // of the OS2 end-to-end figure
	if from != "" {
		data, err := os.ReadFile(from)
		if err != nil {
			return err
		}
		raw.Write(data)
		for _, l := range strings.Split(string(data), "\n") {
			if r, ok := parseLine(l); ok {
				results = append(results, r)
			}
		}
	} else {
		work, err := os.MkdirTemp("", "orderseal-bench.")
		if err != nil {
			return err
		}
		defer os.RemoveAll(work)
		plan := newLoadPlan(quick, work)
		if results, err = runBenchmarks(ctx, quick, plan, &raw); err != nil {
			return err
		}
		if profile, err = profileTop(ctx, plan.profileDir, 25); err != nil {
			return err
		}
		if bd, err = mixBreakdown(plan.mixDirs(), results); err != nil {
			return fmt.Errorf("the OS2 end-to-end breakdown: %w", err)
		}
	}
	figs := append(append(append(figures(results), e2eFigures(results)...), floodFigures(results)...), pgFigures(results)...)
	for i := range figs {
		if figs[i].Name == os2E2EName {
			figs[i].Breakdown = bd
		}
	}
	if len(figs) == 0 {
		return errors.New("no benchmark figures were produced")
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	pending := pendingGoals(figs)
	data, err := json.MarshalIndent(Results{Figures: figs, Pending: pending}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(outDir, "results.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	if err := writeChart(filepath.Join(outDir, "ratios.png"), figs); err != nil {
		return err
	}
	mode := "full"
	if quick {
		mode = "quick"
	}
	if err := os.WriteFile(filepath.Join(outDir, "report.md"), []byte(report(figs, pending, mode, raw.String(), profile)), 0o644); err != nil {
		return err
	}
	printTable(os.Stdout, figs, pending)
	fmt.Fprintf(os.Stderr, "bench: wrote %s, %s and %s\n", filepath.Join(outDir, "results.json"),
		filepath.Join(outDir, "report.md"), filepath.Join(outDir, "ratios.png"))
	return nil
}

// runFloodOnly builds the programs, runs stress flood alone, prints its
// figures and merges them into outDir's results (mergeFlood).
func runFloodOnly(ctx context.Context, quick bool, outDir string) error {
	work, err := os.MkdirTemp("", "orderseal-bench.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	plan := newLoadPlan(quick, work)
	start := time.Now()
	progress(os.Stderr, 0, 2, "building the daemons and stress", start)
	if err := plan.build(ctx); err != nil {
		fmt.Fprintln(os.Stderr)
		return err
	}
	st := plan.floodStep()
	progress(os.Stderr, 1, 2, st.label, start)
	var raw strings.Builder
	results, err := plan.run(ctx, st, &raw)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return err
	}
	figs := floodFigures(results)
	if err := mergeFlood(outDir, figs, raw.String()); err != nil {
		return err
	}
	printTable(os.Stdout, figs, nil)
	fmt.Fprintf(os.Stderr, "bench: merged the flood figures into %s and %s\n", filepath.Join(outDir, "results.json"), filepath.Join(outDir, "report.md"))
	return nil
}

// runBenchmarks runs ./bench/ once per spec'd benchmark family, so the
// progress bar moves, then the end-to-end plan, and collects every result
// line (raw keeps the output).
func runBenchmarks(ctx context.Context, quick bool, plan *loadPlan, raw io.Writer) ([]result, error) {
	benchtime, count := "1s", "3"
	if quick {
		benchtime, count = "200ms", "1"
	}
	families := []string{}
	for _, s := range specs {
		fam := strings.SplitN(s.bench, "/", 2)[0]
		if !slices.Contains(families, fam) {
			families = append(families, fam)
		}
	}
	steps := plan.steps()
	total := len(families) + 1 + len(steps)
	start := time.Now()
	var results []result
	for i, fam := range families {
		progress(os.Stderr, i, total, fam, start)
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^"+fam+"$", "-benchtime", benchtime, "-count", count, "./bench/")
		rs, err := runLines(cmd, raw)
		if err != nil {
			fmt.Fprintln(os.Stderr)
			return nil, fmt.Errorf("%s: %w", fam, err)
		}
		results = append(results, rs...)
	}
	progress(os.Stderr, len(families), total, "building the real and the null relay stacks", start)
	if err := plan.build(ctx); err != nil {
		fmt.Fprintln(os.Stderr)
		return nil, err
	}
	for i, step := range steps {
		progress(os.Stderr, len(families)+1+i, total, step.label, start)
		rs, err := plan.run(ctx, step, raw)
		if err != nil {
			fmt.Fprintln(os.Stderr)
			return nil, err
		}
		results = append(results, rs...)
	}
	progress(os.Stderr, total, total, "done", start)
	fmt.Fprintln(os.Stderr)
	return results, nil
}

func verdict(f Figure) string {
	switch {
	case f.Meets == nil:
		return "-"
	case *f.Meets:
		return "meets"
	}
	return "MISSES"
}

func printTable(w io.Writer, figs []Figure, pending []Pending) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tVALUE\tBASELINE\tBASELINE VALUE\tRATIO\tGOAL\t")
	for _, f := range figs {
		fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s %s\t%.3f\t%s\t%s\n", f.Name, num(f.Value), f.Unit, f.Baseline, num(f.BaselineValue), f.Unit, f.Ratio, cmp.Or(f.Goal, "-"), verdict(f))
	}
	tw.Flush()
	for _, p := range pending {
		fmt.Fprintf(w, "not measured yet: %s (%s): %s\n", p.Name, p.Goal, p.Reason)
	}
}

// num prints a value with one decimal below 100, none above.
func num(v float64) string {
	if math.Abs(v) < 100 {
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func report(figs []Figure, pending []Pending, mode, raw, profile string) string {
	var b strings.Builder
	b.WriteString("# orderseal benchmarks\n\n")
	fmt.Fprintf(&b, "Mode: %s (`make bench%s`). Every ratio is a cost ratio against a baseline measured in the same process or the same script, so a noisy machine moves both: lower is better. ",
		mode, map[string]string{"quick": "-quick", "full": ""}[mode])
	b.WriteString("Micro benchmarks alternate blocks of the operation and its baseline. End to end, `stress load` drives closed-loop cardholders (each waits for its order to ship or be declined) through the real daemons on loopback, then through the same daemons on the null relay suite (`stress load -null`, package suite/null) — the same hops and durable writes with sections in the clear and no key derivation — as the physical limit; the two alternate. Their ratios are null relay orders/s ÷ orderseal orders/s and orderseal latency ÷ null relay latency (latency: first submit to the merchant's first settled state). The scale figure is orders/s with few stored orders ÷ orders/s with many, on one cluster filled between the two runs (`cluster.Seed`). ")
	b.WriteString("The OS2 end-to-end figure alternates OS1 and OS2 rounds of `stress load -suite os1|os2 -new 0.5` at 8 clients: half of the orders from the clients' returning cardholders, half from new ones, each placing one order with keys no daemon has derived yet; its ratio is OS1 orders/s ÷ OS2 orders/s, the median of the round pairs, and its CPU breakdown comes from those rounds' profiles. ")
	b.WriteString("The OS2 figures use a key center of k = 1024: a derivation beside a bare SOK pairing (hash to G2, pairing of fixed points); a seal of the four sections of an order shipping to a vault token, verifying every recipient's directory entry as each seal does, beside age encrypting the same four plaintexts to four post-quantum recipients, one file each (one file to four recipients would let every party read every section).\n\n")
	b.WriteString("![ratios](ratios.png)\n\n")
	b.WriteString("| figure | value | baseline | baseline value | ratio | goal | |\n|---|---:|---|---:|---:|---|---|\n")
	for _, f := range figs {
		fmt.Fprintf(&b, "| %s | %s %s | %s | %s %s | %.3f | %s | %s |\n", f.Name, num(f.Value), f.Unit, f.Baseline, num(f.BaselineValue), f.Unit, f.Ratio, cmp.Or(f.Goal, "-"), verdict(f))
	}
	if len(pending) > 0 {
		b.WriteString("\n## Goals not measured yet\n\n")
		for _, p := range pending {
			fmt.Fprintf(&b, "- %s (%s): %s.\n", p.Name, p.Goal, p.Reason)
		}
	}
	for _, f := range figs {
		if f.Name == os2E2EName && f.Breakdown != nil {
			b.WriteString(breakdownReport(f))
		}
	}
	if slices.ContainsFunc(figs, func(f Figure) bool { return strings.HasPrefix(f.Name, floodPrefix) }) {
		b.WriteString(floodReport(figs, raw))
	}
	if slices.ContainsFunc(figs, func(f Figure) bool { return strings.HasPrefix(f.Name, pgPrefix) }) {
		b.WriteString(pgReport(figs, pgResults(raw), raw))
	}
	if st := setupTimes(raw); st != "" {
		b.WriteString("\n## Cluster setup\n\n")
		b.WriteString("`stress load` from nothing to serving: key center, issuance (`keygen issue`, one batch), under OS2 each daemon's keystore and directory entry, card enrolment (a pool of new cardholders through the issuer's store in one process), vault addresses; median seconds of the runs:\n\n")
		b.WriteString(st)
	}
	if profile != "" {
		b.WriteString("\n## CPU profile of the end-to-end path\n\n")
		b.WriteString("The first orderseal round, every concurrency level: the merchant, issuer, carrier and vault daemons and the driver that seals and submits, merged (`go tool pprof -top`). Top costs:\n\n```\n")
		b.WriteString(profile)
		b.WriteString("```\n")
	}
	b.WriteString("\n## Raw output (`go test -bench`, `stress load`)\n\n```\n")
	b.WriteString(raw)
	b.WriteString("```\n")
	return b.String()
}
