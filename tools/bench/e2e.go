package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"orderseal/tstest/cluster"
)

// loadPlan is what the end-to-end part runs: stress load (tools/stress)
// against the real daemons, once on the default suite and once on the null
// relay suite (stress load -null: same hops, same durable writes, no
// sealing, no derivation), alternating, then the scale run on the default
// suite.
type loadPlan struct {
	levels        string        // concurrency levels
	warm, measure time.Duration // per level
	rounds        int           // sealed/null alternations
	stored        []int         // scale: stored orders, small then large
	scaleClients  int
	scaleWarm     time.Duration
	scaleMeasure  time.Duration
	profileDir    string // the first round's CPU profiles, sealed and null
	buildDir      string
	bin           string // binary directory
}

func newLoadPlan(quick bool, work string) *loadPlan {
	p := &loadPlan{levels: "1,8,32", warm: 2 * time.Second, measure: 6 * time.Second, rounds: 2,
		stored: []int{1_000, 1_000_000}, scaleClients: 8, scaleWarm: 2 * time.Second, scaleMeasure: 6 * time.Second,
		profileDir: filepath.Join(work, "profiles"), buildDir: work}
	if quick {
		p.warm, p.measure, p.rounds = time.Second, 3*time.Second, 1
		p.stored, p.scaleMeasure = []int{1_000, 100_000}, 4*time.Second
	}
	p.bin = filepath.Join(work, "bin")
	return p
}

// steps lists the runs in order, for the progress bar.
func (p *loadPlan) steps() []string {
	var s []string
	for r := range p.rounds {
		s = append(s, fmt.Sprintf("e2e sealed, round %d", r+1), fmt.Sprintf("e2e null relay, round %d", r+1))
	}
	return append(s, fmt.Sprintf("scale: %d then %d stored orders", p.stored[0], p.stored[1]))
}

// build builds the five programs and stress.
func (p *loadPlan) build(ctx context.Context) error {
	root, err := cluster.ModuleRoot()
	if err != nil {
		return err
	}
	pkgs := []string{"./tools/stress"}
	for _, b := range cluster.Binaries {
		pkgs = append(pkgs, "./cmd/"+b)
	}
	args := append([]string{"build", "-o", p.bin + string(filepath.Separator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// run runs step i and appends its bench lines to raw and results.
func (p *loadPlan) run(ctx context.Context, i int, raw io.Writer) ([]result, error) {
	dur := func(d time.Duration) string { return d.String() }
	var args, env []string
	switch {
	case i < 2*p.rounds && i%2 == 0:
		args = []string{"-clients", p.levels, "-warm", dur(p.warm), "-measure", dur(p.measure)}
		if i == 0 {
			args = append(args, "-cpuprofile", p.profileDir)
		}
	case i < 2*p.rounds:
		args = []string{"-null", "-clients", p.levels, "-warm", dur(p.warm), "-measure", dur(p.measure)}
		if i == 1 { // profiled like the first sealed round, so both pay the same
			args = append(args, "-cpuprofile", p.profileDir)
		}
		env = []string{"ORDERSEAL_NULL_RELAY=benchmark-only"}
	default:
		args = []string{"-clients", strconv.Itoa(p.scaleClients), "-stored", fmt.Sprintf("%d,%d", p.stored[0], p.stored[1]),
			"-warm", dur(p.scaleWarm), "-measure", dur(p.scaleMeasure)}
	}
	args = append([]string{"load", "-bin", p.bin}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, "stress"), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := runLines(cmd, raw)
	if err != nil {
		return nil, fmt.Errorf("stress %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// runLines runs cmd, copies its stdout to raw and parses the result lines
// in it; a failure carries the last lines of its stderr.
func runLines(cmd *exec.Cmd, raw io.Writer) ([]result, error) {
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var out []result
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		fmt.Fprintln(raw, sc.Text())
		if r, ok := parseLine(sc.Text()); ok {
			out = append(out, r)
		}
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, lastLines(stderr.String(), 15))
	}
	return out, nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// The OS2 end-to-end goal (issue 15): at 8 clients, the daemons on OS2
// move at least 0.6× the orders per second they move on OS1.
//
// NOT MEASURED YET. It needs daemons that speak OS2, which are being built.
// When `stress load` can run the cluster on OS2, add its rounds to the plan
// (loadPlan.steps and run, alternating with the OS1 rounds as the null relay
// does) with lines named BenchmarkE2E/os2/clients=N: e2eFigures turns them
// into this figure. Until those lines exist the goal is listed as pending
// (results.json "pending", the report), never given a value.
const (
	os2E2EName     = "End to end, 8 clients: OS2 throughput"
	os2E2EGoal     = "≥ 0.6× OS1"
	os2E2EClients  = 8
	os2E2EBaseline = "OS1: the same daemons and load"
)

// pendingGoals are the goals whose figure figs lack, with why.
func pendingGoals(figs []Figure) []Pending {
	if slices.ContainsFunc(figs, func(f Figure) bool { return f.Name == os2E2EName }) {
		return nil
	}
	return []Pending{{Name: os2E2EName, Goal: os2E2EGoal,
		Reason: "needs the daemons to speak OS2; stress load has no OS2 round yet (tools/bench/e2e.go)"}}
}

var e2eName = regexp.MustCompile(`^BenchmarkE2E/(sealed|null|os2)/clients=(\d+)$`)
var scaleName = regexp.MustCompile(`^BenchmarkScale/sealed/stored=(\d+)/clients=(\d+)$`)

// e2eFigures pairs the sealed and null relay lines of each concurrency
// level, and the scale lines, into figures. Every ratio is a cost ratio
// like the micro benchmarks' (lower is better): null relay orders/s ÷
// sealed orders/s, sealed latency ÷ null relay latency, orders/s with few
// stored orders ÷ orders/s with many.
func e2eFigures(results []result) []Figure {
	type key struct {
		mode    string
		clients int
	}
	by := map[key][]result{}
	var levels []int
	for _, r := range results {
		if m := e2eName.FindStringSubmatch(r.name); m != nil {
			n, _ := strconv.Atoi(m[2])
			by[key{m[1], n}] = append(by[key{m[1], n}], r)
			if !slices.Contains(levels, n) {
				levels = append(levels, n)
			}
		}
	}
	slices.Sort(levels)
	med := func(rs []result, metric string) float64 {
		var v []float64
		for _, r := range rs {
			if x, ok := r.metrics[metric]; ok {
				v = append(v, x)
			}
		}
		if len(v) == 0 {
			return 0
		}
		return median(v)
	}
	const nullBase = "null relay: same hops and writes, no sealing"
	var figs []Figure
	add := func(name string, value, base float64, unit, baseline string, costRatio float64, goal string, goalMax float64) {
		f := Figure{Name: name, Value: round(value, 1), Unit: unit, Baseline: baseline, BaselineValue: round(base, 1),
			Ratio: round(costRatio, 4), Goal: goal, goalMax: goalMax}
		if goalMax > 0 {
			meets := f.Ratio <= goalMax
			f.Meets = &meets
		}
		figs = append(figs, f)
	}
	for _, n := range levels {
		s, z := by[key{"sealed", n}], by[key{"null", n}]
		if len(s) == 0 || len(z) == 0 {
			continue
		}
		so, zo := med(s, "orders/s"), med(z, "orders/s")
		if so > 0 && zo > 0 {
			add(fmt.Sprintf("End to end, %d clients: throughput", n), so, zo, "orders/s", nullBase, zo/so, "≥ 0.9× null relay", 1/0.9)
		}
		for _, p := range []struct {
			metric, label, goal string
			max                 float64
		}{{"p50-ms", "p50 latency", "", 0}, {"p99-ms", "p99 latency", "≤ 1.2× null relay", 1.2}} {
			sv, zv := med(s, p.metric), med(z, p.metric)
			if sv > 0 && zv > 0 {
				add(fmt.Sprintf("End to end, %d clients: %s", n, p.label), sv, zv, "ms", nullBase, sv/zv, p.goal, p.max)
			}
		}
	}
	if s, o := by[key{"sealed", os2E2EClients}], by[key{"os2", os2E2EClients}]; len(s) > 0 && len(o) > 0 {
		so, oo := med(s, "orders/s"), med(o, "orders/s")
		if so > 0 && oo > 0 {
			add(os2E2EName, oo, so, "orders/s", os2E2EBaseline, so/oo, os2E2EGoal, 1/0.6)
		}
	}
	if len(levels) > 0 {
		top := levels[len(levels)-1]
		s, z := by[key{"sealed", top}], by[key{"null", top}]
		for _, d := range cluster.Daemons {
			sv, zv := med(s, d+"-MiB"), med(z, d+"-MiB")
			if sv > 0 && zv > 0 {
				add(fmt.Sprintf("RSS of the %s at %d clients", d, top), sv, zv, "MiB", nullBase, sv/zv, "", 0)
			}
		}
	}
	var small, large *result
	var nSmall, nLarge int
	for i, r := range results {
		if m := scaleName.FindStringSubmatch(r.name); m != nil {
			n, _ := strconv.Atoi(m[1])
			if small == nil || n < nSmall {
				small, nSmall = &results[i], n
			}
			if large == nil || n > nLarge {
				large, nLarge = &results[i], n
			}
		}
	}
	if small != nil && large != nil && nLarge > nSmall {
		lo, hi := small.metrics["orders/s"], large.metrics["orders/s"]
		if lo > 0 && hi > 0 {
			add(fmt.Sprintf("Throughput with %s stored orders", thousands(nLarge)), hi, lo, "orders/s",
				fmt.Sprintf("the same with %s stored orders", thousands(nSmall)), lo/hi, "≥ 0.8× with 1 000 stored", 1/0.8)
		}
	}
	return figs
}

// thousands writes n with a thin space between groups of three digits.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + " " + s[i:]
	}
	return s
}

// profileTop is `go tool pprof -top` over every profile of the sealed run
// (the four daemons and the driver sealing and submitting), merged.
func profileTop(ctx context.Context, dir string, n int) (string, error) {
	profs, err := filepath.Glob(filepath.Join(dir, "sealed-*.prof"))
	if err != nil || len(profs) == 0 {
		return "", fmt.Errorf("no CPU profiles in %s", dir)
	}
	slices.Sort(profs)
	args := append([]string{"tool", "pprof", "-top", "-nodecount", strconv.Itoa(n)}, profs...)
	out, err := exec.CommandContext(ctx, "go", args...).Output()
	if err != nil {
		return "", fmt.Errorf("go tool pprof: %w", err)
	}
	return string(out), nil
}
