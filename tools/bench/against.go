package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"orderseal/tstest/cluster"
)

// The figures against an earlier build (issue 21): at againstClients
// closed-loop clients, every order from a returning cardholder (pairwise
// keys cached once warm), the daemons of this tree and the daemons of a
// fixed earlier commit, built from git into the work directory, run by
// the same stress load (this tree's: the load generator is the same code
// for both), rounds alternating and the order of the pair swapped each
// round. stress load reads every process's CPU time from /proc over the
// window (cpu-ms/order: the daemons' and the load generator's together,
// per order settled), and the machine's utilisation.
const (
	againstClients  = 32
	againstPrefix   = "Against an earlier build, 32 clients, returning cardholders"
	defaultAgainst  = "4ad0e3a" // main before issue 21's performance work
	againstHeading  = "\n## Against an earlier build (issue 21)\n"
	againstTopNodes = 10
)

var againstName = "BenchmarkE2E/sealed/clients=" + strconv.Itoa(againstClients)

// againstRun is one stress load line of the comparison.
type againstRun struct {
	base bool // the earlier build's daemons
	r    result
}

// runAgainstOnly builds this tree and rev, runs the comparison, prints its
// figures and merges them into outDir's results (mergeSection).
func runAgainstOnly(ctx context.Context, quick bool, outDir, rev string) error {
	work, err := os.MkdirTemp("", "orderseal-bench.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	plan := newLoadPlan(quick, work)
	rounds, warm, measure := 3, 3*time.Second, 8*time.Second
	if quick {
		rounds, warm, measure = 1, 2*time.Second, 4*time.Second
	}
	total := 2 + 2*rounds
	start := time.Now()
	progress(os.Stderr, 0, total, "building the daemons and stress", start)
	if err := plan.build(ctx); err != nil {
		fmt.Fprintln(os.Stderr)
		return err
	}
	progress(os.Stderr, 1, total, "building "+rev+" from git", start)
	baseBin := filepath.Join(work, "base-bin")
	commit, err := buildRev(ctx, rev, filepath.Join(work, "base-src"), baseBin)
	if err != nil {
		fmt.Fprintln(os.Stderr)
		return err
	}
	var raw strings.Builder
	fmt.Fprintf(&raw, "# against %s (%s): stress load -clients %d -warm %s -measure %s, %d rounds\n", rev, commit, againstClients, warm, measure, rounds)
	var runs []againstRun
	profiles := map[bool]string{false: filepath.Join(work, "profiles", "this"), true: filepath.Join(work, "profiles", "base")}
	done := 2
	for r := range rounds {
		order := []bool{false, true}
		if r%2 == 1 {
			order = []bool{true, false}
		}
		for _, base := range order {
			bin, label := plan.bin, "this tree"
			if base {
				bin, label = baseBin, rev
			}
			progress(os.Stderr, done, total, fmt.Sprintf("%s, round %d", label, r+1), start)
			args := []string{"load", "-bin", bin, "-clients", strconv.Itoa(againstClients), "-warm", warm.String(), "-measure", measure.String()}
			if r == 0 { // both profiled, so both pay the same
				args = append(args, "-cpuprofile", profiles[base])
			}
			fmt.Fprintf(&raw, "# %s, round %d\n", label, r+1)
			cmd := exec.CommandContext(ctx, filepath.Join(plan.bin, "stress"), args...)
			rs, err := runLines(cmd, &raw)
			if err != nil {
				fmt.Fprintln(os.Stderr)
				return fmt.Errorf("stress %s: %w", strings.Join(args, " "), err)
			}
			for _, x := range rs {
				if x.name == againstName {
					runs = append(runs, againstRun{base: base, r: x})
				}
			}
			done++
		}
	}
	progress(os.Stderr, total, total, "done", start)
	fmt.Fprintln(os.Stderr)
	figs := againstFigures(runs, rev)
	if len(figs) == 0 {
		return fmt.Errorf("no %s lines with CPU figures from both builds", againstName)
	}
	var tops [2]string
	for i, base := range []bool{false, true} {
		if tops[i], err = profileTopOf(ctx, profiles[base], "sealed-", againstTopNodes); err != nil {
			return err
		}
	}
	section := againstReport(figs, runs, rev, commit, tops)
	if err := mergeSection(outDir, againstPrefix, againstHeading, figs, section); err != nil {
		return err
	}
	printTable(os.Stdout, figs, nil)
	fmt.Print(section)
	fmt.Fprintf(os.Stderr, "bench: merged the figures against %s into %s and %s\n", rev, filepath.Join(outDir, "results.json"), filepath.Join(outDir, "report.md"))
	return nil
}

// buildRev extracts rev of the repository holding this module into src
// (git archive: the repository itself is left as it is) and builds the
// cluster's programs there into bin, as plan.build does this tree's. It
// returns the commit rev names.
func buildRev(ctx context.Context, rev, src, bin string) (string, error) {
	root, err := cluster.ModuleRoot()
	if err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--verify", rev+"^{commit}").Output()
	if err != nil {
		return "", fmt.Errorf("git rev-parse %s: %w", rev, err)
	}
	commit := strings.TrimSpace(string(out))
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	archive := exec.CommandContext(ctx, "git", "-C", root, "archive", "--format=tar", commit)
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		return "", err
	}
	untar.Stdin = pipe
	var stderr strings.Builder
	archive.Stderr, untar.Stderr = &stderr, &stderr
	if err := untar.Start(); err != nil {
		return "", err
	}
	if err := archive.Run(); err != nil {
		untar.Wait()
		return "", fmt.Errorf("git archive %s: %w\n%s", commit, err, stderr.String())
	}
	if err := untar.Wait(); err != nil {
		return "", fmt.Errorf("tar: %w\n%s", err, stderr.String())
	}
	args := []string{"build", "-tags", "orderseal_testkdf", "-o", bin + string(filepath.Separator)}
	for _, b := range cluster.Binaries {
		args = append(args, "./cmd/"+b)
	}
	build := exec.CommandContext(ctx, "go", args...)
	build.Dir = src
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build of %s: %w\n%s", rev, err, out)
	}
	return commit, nil
}

// againstFigures pairs this tree's lines with the earlier build's: CPU per
// order and p99 as this ÷ earlier, throughput as earlier ÷ this (cost
// ratios, lower is better), each the median of the rounds' ratios.
func againstFigures(runs []againstRun, rev string) []Figure {
	var this, base []result
	for _, x := range runs {
		if x.base {
			base = append(base, x.r)
		} else {
			this = append(this, x.r)
		}
	}
	n := min(len(this), len(base))
	if n == 0 {
		return nil
	}
	baseline := "the daemons of " + rev + ", same load in the same run"
	var figs []Figure
	add := func(name, metric, unit string, inverse bool, goal string, goalMax float64) {
		var ratios, tv, bv []float64
		for i := range n {
			t, b := this[i].metrics[metric], base[i].metrics[metric]
			if t <= 0 || b <= 0 {
				continue
			}
			tv, bv = append(tv, t), append(bv, b)
			if inverse {
				ratios = append(ratios, b/t)
			} else {
				ratios = append(ratios, t/b)
			}
		}
		if len(ratios) == 0 {
			return
		}
		f := Figure{Name: againstPrefix + ": " + name, Value: round(median(tv), 3), Unit: unit, Baseline: baseline,
			BaselineValue: round(median(bv), 3), Ratio: round(median(ratios), 4), Goal: goal, goalMax: goalMax}
		if goalMax > 0 {
			meets := f.Ratio <= goalMax*(1+1e-9)
			f.Meets = &meets
		}
		figs = append(figs, f)
	}
	add("CPU per order (every process)", "cpu-ms/order", "ms", false, "≤ 0.25× "+rev, 0.25)
	add("throughput", "orders/s", "orders/s", true, "≥ 4× "+rev, 0.25)
	add("p99 latency", "p99-ms", "ms", false, "≤ 0.5× "+rev, 0.5)
	add("machine utilisation", "busy-%", "%", false, "", 0)
	return figs
}

// againstReport is the report's section: the figures, each process's CPU
// per order for both builds, and the top ten of their merged profiles.
func againstReport(figs []Figure, runs []againstRun, rev, commit string, tops [2]string) string {
	var b strings.Builder
	b.WriteString(againstHeading)
	fmt.Fprintf(&b, "\n`go run ./tools/bench -only against -against %s`: this tree's daemons and those of %s (`%s`, built from git in the same run), "+
		"each under `stress load -clients %d` (this tree's load generator for both, every order from a returning cardholder), rounds alternating. "+
		"CPU is every process's user + system time over the measurement window from /proc (the four daemons and the load generator, which seals and submits); "+
		"machine utilisation is all cores' busy time over the window, other work on the machine included.\n\n", rev, rev, commit, againstClients)
	b.WriteString("| figure | this tree | " + rev + " | ratio | goal | |\n|---|---:|---:|---:|---|---|\n")
	for _, f := range figs {
		fmt.Fprintf(&b, "| %s | %s %s | %s %s | %.3f | %s | %s |\n", strings.TrimPrefix(f.Name, againstPrefix+": "), num(f.Value), f.Unit,
			num(f.BaselineValue), f.Unit, f.Ratio, cmp.Or(f.Goal, "-"), verdict(f))
	}
	b.WriteString("\nCPU per order settled, by process (ms, median of the rounds):\n\n| process | this tree | " + rev + " |\n|---|---:|---:|\n")
	for _, p := range append(slices.Clone(cluster.Daemons), "driver") {
		var t, z []float64
		for _, x := range runs {
			orders := float64(x.r.n) // settled in the window
			if s, ok := x.r.metrics[p+"-cpu-s"]; ok && orders > 0 {
				if x.base {
					z = append(z, 1000*s/orders)
				} else {
					t = append(t, 1000*s/orders)
				}
			}
		}
		if len(t) > 0 && len(z) > 0 {
			fmt.Fprintf(&b, "| %s | %.2f | %.2f |\n", p, median(t), median(z))
		}
	}
	for i, label := range []string{"this tree", rev} {
		fmt.Fprintf(&b, "\nCPU profile top ten, %s (first round; every daemon and the load generator merged, `go tool pprof -top`):\n\n```\n%s```\n", label, tops[i])
	}
	return b.String()
}

// profileTopOf is `go tool pprof -top` over the profiles in dir whose
// names start with prefix, merged.
func profileTopOf(ctx context.Context, dir, prefix string, n int) (string, error) {
	profs, err := filepath.Glob(filepath.Join(dir, prefix+"*.prof"))
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
