package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The PostgreSQL figures (issue 17): stress load -db sqlite|postgres runs
// the same closed-loop end-to-end load on each backend, each on a cluster
// of its own (PostgreSQL on a throwaway server, tstest/pgtest), and
// -merchants 3 runs three merchant nodes on one database behind a
// round-robin balancer. Lines: BenchmarkStore/<db>/nodes=N/clients=C, and
// with every merchant node capped at X cores (-merchant-cpu X, a cgroup
// v1 CPU quota per node) …/cpu=X.
const (
	pgPrefix     = "PostgreSQL"
	pgNodes      = 3
	pgClients    = 32
	pgNodesFig   = pgPrefix + ": 3 merchant nodes vs 1, 32 clients, uncapped: throughput"
	pgCappedFig  = pgPrefix + ": 3 merchant nodes vs 1, 32 clients, each node capped to a fixed CPU budget: throughput"
	pgNodesGoal  = "≥ 1.8× one node"
	pgHeading    = "\n## PostgreSQL: SQLite beside PostgreSQL, and 3 merchant nodes (issue 17)\n"
	pgHeadroom   = 0.8  // the share of the machine's cores the capped three-node run is planned to use
	pgBudgetStep = 0.05 // budgets are whole multiples of this many cores
	pgBudgetMin  = 0.1
)

var storeName = regexp.MustCompile(`^BenchmarkStore/(sqlite|postgres)/nodes=(\d+)/clients=(\d+)(?:/cpu=([0-9.]+))?$`)

// pgOthers are the processes besides the merchant nodes whose CPU time a
// line carries (postgres-cpu-s: the server and its backends).
var pgOthers = []string{"issuer", "carrier", "vault", "driver", "postgres"}

// pgSteps are the PostgreSQL part's runs: SQLite and PostgreSQL at the
// end-to-end levels, then one and three PostgreSQL nodes at pgClients,
// alternating for the ratio.
func (p *loadPlan) pgSteps() []step {
	window := []string{"-warm", p.warm.String(), "-measure", p.measure.String()}
	s := []step{
		{label: "SQLite, end to end", args: append([]string{"-db", "sqlite", "-clients", p.levels}, window...)},
		{label: "PostgreSQL, 1 merchant node, end to end", args: append([]string{"-db", "postgres", "-merchants", "1", "-clients", p.levels}, window...)},
	}
	for r := range p.pgRounds {
		s = append(s, step{label: fmt.Sprintf("PostgreSQL, %d merchant nodes, round %d", pgNodes, r+1),
			args: append([]string{"-db", "postgres", "-merchants", strconv.Itoa(pgNodes), "-clients", strconv.Itoa(pgClients)}, window...)})
		if r+1 < p.pgRounds {
			s = append(s, step{label: fmt.Sprintf("PostgreSQL, 1 merchant node, round %d", r+2),
				args: append([]string{"-db", "postgres", "-merchants", "1", "-clients", strconv.Itoa(pgClients)}, window...)})
		}
	}
	// The capped rounds, one node then three, each node at the budget
	// the uncapped one-node runs above give (pgBudget), the same for all.
	for r := range p.pgRounds {
		for _, n := range []int{1, pgNodes} {
			s = append(s, step{label: fmt.Sprintf("PostgreSQL, %d capped merchant node(s), round %d", n, r+1),
				args:     append([]string{"-db", "postgres", "-merchants", strconv.Itoa(n), "-clients", strconv.Itoa(pgClients)}, window...),
				argsFrom: p.budgetArgs})
		}
	}
	return s
}

// budgetArgs is the capped steps' -merchant-cpu, chosen once from the
// uncapped one-node runs at pgClients the plan has run so far.
func (p *loadPlan) budgetArgs() ([]string, error) {
	if p.pgBudget == 0 {
		b, err := pgBudget(p.done)
		if err != nil {
			return nil, err
		}
		p.pgBudget = b.cores
	}
	return []string{"-merchant-cpu", strconv.FormatFloat(p.pgBudget, 'f', 2, 64)}, nil
}

// budget is the CPU each capped merchant node gets, and what it was
// chosen from.
type budget struct {
	cores                 float64 // per node
	merchant, others, all float64 // CPU seconds per order settled: the merchant node, every other process, both
	machine               float64 // the machine's cores
}

// pgBudget chooses the per-node budget so that three capped nodes and
// everything else the run needs still fit in pgHeadroom of the machine:
// every order costs the merchant m CPU seconds and the issuer, carrier,
// vault, PostgreSQL and the load generator (sealing, balancer) o more, as
// the uncapped one-node runs measured them from /proc; three nodes at b
// cores each settle 3b/m orders a second, which need 3b·o/m cores of the
// others, so 3b(1 + o/m) ≤ headroom × cores. Rounded down to pgBudgetStep.
func pgBudget(results []result) (budget, error) {
	lines := storeLines(results, "postgres", 1, pgClients)
	var m, o, cores []float64
	var used []result
	for _, r := range lines {
		orders := r.metrics["orders/s"]
		merchant, ok := r.metrics["merchant-cpu-s"]
		if !ok || orders <= 0 || merchant <= 0 {
			continue
		}
		sum := 0.0
		for _, p := range pgOthers {
			v, ok := r.metrics[p+"-cpu-s"]
			if !ok {
				return budget{}, fmt.Errorf("%s carries no %s-cpu-s: the budget needs every process's CPU time", r.name, p)
			}
			sum += v
		}
		m, o, used = append(m, merchant), append(o, sum), append(used, r)
		cores = append(cores, cmp.Or(r.metrics["cores"], float64(runtime.NumCPU())))
	}
	if len(m) == 0 {
		return budget{}, fmt.Errorf("no uncapped BenchmarkStore/postgres/nodes=1/clients=%d line with CPU times to choose the merchant nodes' budget from", pgClients)
	}
	b := budget{machine: median(cores)}
	ratio := median(o) / median(m) // the others' CPU per unit of the merchant's; the window and orders cancel out
	raw := pgHeadroom * b.machine / (float64(pgNodes) * (1 + ratio))
	b.cores = math.Max(pgBudgetMin, math.Floor(raw/pgBudgetStep+1e-9)*pgBudgetStep)
	b.cores = math.Round(b.cores*100) / 100
	var pm, po []float64
	for i, r := range used {
		if r.n > 0 { // the orders settled in the window
			pm, po = append(pm, m[i]/float64(r.n)), append(po, o[i]/float64(r.n))
		}
	}
	if len(pm) > 0 {
		b.merchant, b.others = median(pm), median(po)
		b.all = b.merchant + b.others
	}
	return b, nil
}

// storeLines are the uncapped BenchmarkStore lines of db with nodes
// merchant nodes at clients, in the order they ran.
func storeLines(results []result, db string, nodes, clients int) []result {
	return storeLinesCapped(results, db, nodes, clients, "")
}

// storeLinesCapped are storeLines of the runs whose nodes were capped at
// cpu cores ("": uncapped).
func storeLinesCapped(results []result, db string, nodes, clients int, cpu string) []result {
	var out []result
	for _, r := range results {
		m := storeName.FindStringSubmatch(r.name)
		if m != nil && m[1] == db && m[2] == strconv.Itoa(nodes) && m[3] == strconv.Itoa(clients) && m[4] == cpu {
			out = append(out, r)
		}
	}
	return out
}

// cappedBudget is the budget the capped lines ran at ("" when none ran).
func cappedBudget(results []result) string {
	for _, r := range results {
		if m := storeName.FindStringSubmatch(r.name); m != nil && m[4] != "" {
			return m[4]
		}
	}
	return ""
}

func medianOf(rs []result, metric string) float64 {
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

// pgFigures turns the BenchmarkStore lines into figures: the nodes ratio
// (a cost ratio like every other: one node's orders/s ÷ three nodes'), and
// SQLite beside PostgreSQL at each level (PostgreSQL's cost: SQLite
// orders/s ÷ PostgreSQL orders/s, PostgreSQL latency ÷ SQLite latency).
func pgFigures(results []result) []Figure {
	var figs []Figure
	add := func(f Figure, goalMax float64) {
		if goalMax > 0 {
			meets := f.Ratio <= goalMax*(1+1e-3)
			f.Meets, f.goalMax = &meets, goalMax
		}
		figs = append(figs, f)
	}
	if cpu := cappedBudget(results); cpu != "" {
		one, three := storeLinesCapped(results, "postgres", 1, pgClients, cpu), storeLinesCapped(results, "postgres", pgNodes, pgClients, cpu)
		if a, b := medianOf(one, "orders/s"), medianOf(three, "orders/s"); a > 0 && b > 0 {
			add(Figure{Name: pgCappedFig, Value: round(b, 1), Unit: "orders/s",
				Baseline:      fmt.Sprintf("1 merchant node capped at the same %s cores, the same database, load and machine", cpu),
				BaselineValue: round(a, 1), Ratio: round(a/b, 4), Goal: pgNodesGoal}, 1/1.8)
		}
	}
	one, three := storeLines(results, "postgres", 1, pgClients), storeLines(results, "postgres", pgNodes, pgClients)
	if a, b := medianOf(one, "orders/s"), medianOf(three, "orders/s"); a > 0 && b > 0 {
		add(Figure{Name: pgNodesFig, Value: round(b, 1), Unit: "orders/s", Baseline: "1 merchant node, uncapped, the same database, load and machine",
			BaselineValue: round(a, 1), Ratio: round(a/b, 4)}, 0)
	}
	var levels []int
	for _, r := range results {
		if m := storeName.FindStringSubmatch(r.name); m != nil && m[1] == "sqlite" {
			n, _ := strconv.Atoi(m[3])
			if !slices.Contains(levels, n) {
				levels = append(levels, n)
			}
		}
	}
	slices.Sort(levels)
	const base = "SQLite: the same daemons and load, one node"
	for _, n := range levels {
		lite, pg := storeLines(results, "sqlite", 1, n), storeLines(results, "postgres", 1, n)
		if len(pg) == 0 {
			continue
		}
		if s, p := medianOf(lite, "orders/s"), medianOf(pg, "orders/s"); s > 0 && p > 0 {
			add(Figure{Name: fmt.Sprintf("%s, end to end, %d clients: throughput", pgPrefix, n), Value: round(p, 1), Unit: "orders/s",
				Baseline: base, BaselineValue: round(s, 1), Ratio: round(s/p, 4)}, 0)
		}
		for _, m := range []struct{ metric, label string }{{"p50-ms", "p50 latency"}, {"p99-ms", "p99 latency"}} {
			if s, p := medianOf(lite, m.metric), medianOf(pg, m.metric); s > 0 && p > 0 {
				add(Figure{Name: fmt.Sprintf("%s, end to end, %d clients: %s", pgPrefix, n, m.label), Value: round(p, 1), Unit: "ms",
					Baseline: base, BaselineValue: round(s, 1), Ratio: round(p/s, 4)}, 0)
			}
		}
	}
	return figs
}

// pgReport is the report's PostgreSQL section: the side-by-side table,
// the nodes figure, and how it is measured and what limits it.
func pgReport(figs []Figure, results []result, raw string) string {
	var b strings.Builder
	b.WriteString(pgHeading + "\n")
	b.WriteString("`stress load -db sqlite` and `stress load -db postgres` run the same end-to-end load — closed-loop cardholders, each waiting for its order to ship or be declined, 5 % above the card limit, 5 % to an inline address — on clusters of their own: every store in SQLite files, or every store in PostgreSQL (merchant, issuer, carrier, vault index, vault data and backup, each a database owned by a role of its own, on a throwaway server started by tstest/pgtest on this machine with its defaults: fsync on, every commit synced to the WAL before it returns, as SQLite syncs its commits). orders/s counts the orders settled inside the measurement window.\n\n")
	b.WriteString("| figure | value | baseline | baseline value | ratio | goal | |\n|---|---:|---|---:|---:|---|---|\n")
	for _, f := range figs {
		if strings.HasPrefix(f.Name, pgPrefix) {
			fmt.Fprintf(&b, "| %s | %s %s | %s | %s %s | %.3f | %s | %s |\n", f.Name, num(f.Value), f.Unit, f.Baseline, num(f.BaselineValue), f.Unit, f.Ratio, orDash(f.Goal), verdict(f))
		}
	}
	if cpu := cappedBudget(results); cpu != "" {
		one, three := storeLinesCapped(results, "postgres", 1, pgClients, cpu), storeLinesCapped(results, "postgres", pgNodes, pgClients, cpu)
		fmt.Fprintf(&b, "\n**How the capped nodes ratio is measured.** Each merchant node runs as if it were a machine of its own: `stress load -db postgres -merchants N -clients %d -merchant-cpu %s` puts every merchant node in a cgroup v1 CPU group of its own (`/sys/fs/cgroup/cpu`, `cpu.cfs_period_us` 100000, `cpu.cfs_quota_us` %.0f: %s cores each, removed after the run) and measures N = 1 against N = %d, one then three in each round, each on a fresh cluster and server; the figure is the median orders/s of the three-node runs over the one-node runs' (the table's ratio is its inverse). The issuer, carrier, vault, PostgreSQL and the load generator run uncapped.\n\n", pgClients, cpu, mustFloat(cpu)*1e5, cpu, pgNodes)
		if bud, err := pgBudget(results); err == nil {
			fmt.Fprintf(&b, "**How the budget was chosen.** From the uncapped one-node runs at %d clients (CPU seconds from /proc over the window): each order cost the merchant node %.1f ms and everything else %.1f ms (issuer, carrier, vault, the PostgreSQL server and its backends, and the load generator sealing every order and running the balancer), %.2f× the merchant's. Three nodes at b cores settle 3b/m orders a second and need 3b·o/m cores of the rest, so 3b(1 + o/m) ≤ %.0f %% of the machine's %.0f cores gives b = %.2f, rounded down to %.2f cores per node: the capped three-node run is planned to use %.2f of the %.0f cores, the rest left to the kernel and to other work on the shared machine.\n\n",
				pgClients, 1000*bud.merchant, 1000*bud.others, bud.others/bud.merchant, 100*pgHeadroom, bud.machine,
				pgHeadroom*bud.machine/(float64(pgNodes)*(1+bud.others/bud.merchant)), bud.cores, float64(pgNodes)*bud.cores*(1+bud.others/bud.merchant), bud.machine)
		}
		b.WriteString("| capped run | round | orders/s | machine busy (all work) | this run's processes | merchant nodes' CPU | throttled |\n|---|---:|---:|---:|---:|---:|---:|\n")
		rounds := max(len(one), len(three))
		for i := range rounds {
			for _, x := range []struct {
				label string
				rs    []result
			}{{"1 node", one}, {fmt.Sprintf("%d nodes", pgNodes), three}} {
				if i >= len(x.rs) {
					continue
				}
				r := x.rs[i]
				w := math.Max(windowOf(r), 1e-9)
				fmt.Fprintf(&b, "| %s at %s cores | %d | %.1f | %.0f %% | %.2f cores | %.2f cores | %.1f s |\n", x.label, cpu, i+1, r.metrics["orders/s"],
					100*r.metrics["cpu-busy"], ownCPU(r)/w, r.metrics["merchants-cpu-s"]/w, r.metrics["merchant-throttled-s"])
			}
			if i < len(one) && i < len(three) && one[i].metrics["orders/s"] > 0 {
				fmt.Fprintf(&b, "| ratio, round %d | | %.2f× | | | | |\n", i+1, three[i].metrics["orders/s"]/one[i].metrics["orders/s"])
			}
		}
		b.WriteString("\n")
		b.WriteString(cappedLimit(one, three, mustFloat(cpu)))
	}
	one, three := storeLines(results, "postgres", 1, pgClients), storeLines(results, "postgres", pgNodes, pgClients)
	busy1, busy3 := medianOf(one, "cpu-busy"), medianOf(three, "cpu-busy")
	cores := medianOf(append(one, three...), "cores")
	fmt.Fprintf(&b, "\n**Uncapped, beside it (no goal).** `stress load -db postgres -merchants %d -clients %d` against `-merchants 1`, uncapped, the runs alternating, each on a fresh cluster and server: three merchant nodes share the one merchant database behind a round-robin balancer in the load generator's process (the issuer, carrier and vault stay one node each), and the figure is the median orders/s of the three-node runs over the one-node runs'.\n\n", pgNodes, pgClients)
	fmt.Fprintf(&b, "**What limits the uncapped runs.** Everything runs on this one machine of %.0f cores: the merchant nodes, the issuer, carrier and vault, the PostgreSQL server, the balancer and the %d clients sealing every order. The machine's CPU was %.0f %% busy during the one-node window and %.0f %% during the three-node window (`cpu-busy`: /proc/stat, every process on the machine, other work included). ", cores, pgClients, 100*busy1, 100*busy3)
	if busy1 >= 0.85 {
		b.WriteString("With one node the cores are already saturated, so more merchant nodes have no CPU to run on: they share the same cores and add their own overhead (more connections, more outbox polling, lease contention), and the ratio measures the machine, not the design — the capped runs above give each node its own fixed share instead.\n")
	} else {
		b.WriteString("The one-node run left CPU idle, so the ratio shows how far more nodes turn it into orders.\n")
	}
	var lines []string
	for _, l := range strings.Split(raw, "\n") {
		if strings.HasPrefix(l, "BenchmarkStore/") || (strings.HasPrefix(l, "# ") && strings.Contains(l, "merchant nodes)")) {
			lines = append(lines, l)
		}
	}
	if len(lines) > 0 {
		b.WriteString("\n```\n" + strings.Join(lines, "\n") + "\n```\n")
	}
	return b.String()
}

// cappedLimit is the one-line statement of where the capped runs' limit
// is: the merchant node's quota (throttled, its CPU at the budget), or the
// machine (busy), or neither.
func cappedLimit(one, three []result, cpu float64) string {
	busy := medianOf(three, "cpu-busy")
	use := func(rs []result) float64 {
		if len(rs) == 0 {
			return 0
		}
		return medianOf(rs, "merchants-cpu-s") / math.Max(windowOf(rs[0]), 1e-9)
	}
	use1, use3, n := use(one), use(three), float64(pgNodes)
	switch {
	case use1 >= 0.85*cpu && use3 >= 0.85*n*cpu:
		return fmt.Sprintf("**Where the limit is.** Each merchant node's CPU budget: one capped node used %.2f of its %.2f cores, three used %.2f of their %.2f, all throttled by their quota, so each node added brings its own budget's worth of orders (the machine was %.0f %% busy with three, other work on the shared machine included).\n", use1, cpu, use3, n*cpu, 100*busy)
	case busy >= 0.9:
		return fmt.Sprintf("**Where the limit is.** The machine: it was %.0f %% busy during the capped three-node window (other work on the shared machine included), and the three nodes used %.2f of their %.2f cores.\n", 100*busy, use3, n*cpu)
	}
	return fmt.Sprintf("**Where the limit is.** Neither the budget nor the machine: one capped node used %.2f of its %.2f cores, three %.2f of %.2f, and the machine was %.0f %% busy with three; the latency of the closed loop bounds the orders.\n", use1, cpu, use3, n*cpu, 100*busy)
}

// ownCPU is the CPU seconds of a line's own processes over its window:
// every merchant node and everything else the run started (pgOthers).
func ownCPU(r result) float64 {
	sum := r.metrics["merchants-cpu-s"]
	for _, p := range pgOthers {
		sum += r.metrics[p+"-cpu-s"]
	}
	return sum
}

// windowOf is a line's measurement window in seconds: orders settled in
// it over orders/s.
func windowOf(r result) float64 {
	if v := r.metrics["orders/s"]; v > 0 {
		return float64(r.n) / v
	}
	return 0
}

func mustFloat(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runPostgresOnly builds the programs, runs the PostgreSQL part alone,
// prints its figures and merges them into outDir's results.
func runPostgresOnly(ctx context.Context, quick bool, outDir string) error {
	work, err := os.MkdirTemp("", "orderseal-bench.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	plan := newLoadPlan(quick, work)
	steps := plan.pgSteps()
	start := time.Now()
	progress(os.Stderr, 0, len(steps)+1, "building the daemons and stress", start)
	if err := plan.build(ctx); err != nil {
		fmt.Fprintln(os.Stderr)
		return err
	}
	var raw strings.Builder
	var results []result
	for i, st := range steps {
		progress(os.Stderr, i+1, len(steps)+1, st.label, start)
		rs, err := plan.run(ctx, st, &raw)
		if err != nil {
			fmt.Fprintln(os.Stderr)
			return err
		}
		results = append(results, rs...)
	}
	fmt.Fprintln(os.Stderr)
	figs := pgFigures(results)
	if len(figs) == 0 {
		return errors.New("the PostgreSQL runs produced no BenchmarkStore lines")
	}
	if err := mergeSection(outDir, pgPrefix, pgHeading, figs, pgReport(figs, results, raw.String())); err != nil {
		return err
	}
	printTable(os.Stdout, figs, nil)
	fmt.Fprintf(os.Stderr, "bench: merged the PostgreSQL figures into %s and %s\n", filepath.Join(outDir, "results.json"), filepath.Join(outDir, "report.md"))
	return nil
}

// mergeSection puts figs, the figures named with prefix, into outDir's
// results.json and section, headed heading, into its report.md, replacing
// the previous ones and keeping every other figure and section as the
// last full run wrote them; with no results of a full run yet, it writes
// these alone.
func mergeSection(outDir, prefix, heading string, figs []Figure, section string) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(outDir, "results.json")
	var res Results
	switch data, err := os.ReadFile(path); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(data, &res); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	res.Figures = slices.DeleteFunc(res.Figures, func(f Figure) bool { return strings.HasPrefix(f.Name, prefix) })
	res.Figures = append(res.Figures, figs...)
	res.Pending = slices.DeleteFunc(res.Pending, func(p Pending) bool { return strings.HasPrefix(p.Name, prefix) })
	out, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
		return err
	}
	rp := filepath.Join(outDir, "report.md")
	report, err := os.ReadFile(rp)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	r := string(report)
	if i := strings.Index(r, heading); i >= 0 {
		end := len(r)
		if j := strings.Index(r[i+len(heading):], "\n## "); j >= 0 {
			end = i + len(heading) + j
		}
		r = r[:i] + r[end:]
	}
	if i := strings.Index(r, "\n## Raw output"); i >= 0 { // before the raw output, which stays the full run's
		r = r[:i] + section + r[i:]
	} else {
		r += section
	}
	return os.WriteFile(rp, []byte(r), 0o644)
}

// pgResults are raw's BenchmarkStore result lines.
func pgResults(raw string) []result {
	var out []result
	for _, l := range strings.Split(raw, "\n") {
		if r, ok := parseLine(l); ok && storeName.MatchString(r.name) {
			out = append(out, r)
		}
	}
	return out
}
