package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The BenchmarkStore lines of testdata/postgres.txt make the capped nodes
// figure (medians, each node at 0.20 cores: 3 nodes 40 orders/s, 1 node
// 21), the uncapped one beside it (3 nodes 75, 1 node 85) and SQLite
// beside PostgreSQL at each level; only the capped nodes figure has a
// goal, judged from the values.
func TestPgFigures(t *testing.T) {
	raw, err := os.ReadFile("testdata/postgres.txt")
	if err != nil {
		t.Fatal(err)
	}
	figs := pgFigures(parse(string(raw)))
	byName := map[string]Figure{}
	for _, f := range figs {
		byName[f.Name] = f
	}
	for _, c := range []struct {
		name               string
		value, base, ratio float64
		goal               bool
		meets              bool
	}{
		{pgCappedFig, 40, 21, 0.525, true, true},
		{pgNodesFig, 75, 85, 1.1333, false, false},
		{"PostgreSQL, end to end, 1 clients: throughput", 5, 6.7, 1.334, false, false},
		{"PostgreSQL, end to end, 32 clients: throughput", 85, 100, 1.1765, false, false},
		{"PostgreSQL, end to end, 32 clients: p99 latency", 875, 600, 1.4583, false, false},
	} {
		f, ok := byName[c.name]
		switch {
		case !ok:
			t.Errorf("no figure %q among %d", c.name, len(figs))
		case f.Value != c.value || f.BaselineValue != c.base || f.Ratio != c.ratio:
			t.Errorf("%s: %+v, want value %v base %v ratio %v", c.name, f, c.value, c.base, c.ratio)
		case c.goal && (f.Meets == nil || *f.Meets != c.meets || f.Goal != pgNodesGoal):
			t.Errorf("%s: goal %q meets %v, want %v", c.name, f.Goal, f.Meets, c.meets)
		case !c.goal && f.Meets != nil:
			t.Errorf("%s: judged against a goal it does not have", c.name)
		}
	}
	slow := strings.ReplaceAll(string(raw), "42.00 orders/s", "30.00 orders/s")
	slow = strings.ReplaceAll(slow, "38.00 orders/s", "34.00 orders/s")
	for _, f := range pgFigures(parse(slow)) {
		if f.Name == pgCappedFig && (f.Meets == nil || *f.Meets) {
			t.Errorf("3 capped nodes at 32 orders/s against 21 for one: %+v, want the goal missed", f)
		}
	}
	uncapped := strings.Join(slices.DeleteFunc(strings.Split(string(raw), "\n"), func(l string) bool { return strings.Contains(l, "/cpu=") }), "\n")
	for _, f := range pgFigures(parse(uncapped)) {
		if f.Name == pgCappedFig {
			t.Errorf("a capped figure without capped runs: %+v", f)
		}
	}
	if figs := pgFigures(parse("PASS\n")); figs != nil {
		t.Errorf("figures without BenchmarkStore lines: %v", figs)
	}
	rep := pgReport(figs, parse(string(raw)), string(raw))
	for _, want := range []string{"98 % busy during the one-node window", "saturated", "BenchmarkStore/postgres/nodes=3/clients=32",
		"`cpu.cfs_quota_us` 20000: 0.20 cores each", "each order cost the merchant node 11.8 ms and everything else 17.7 ms",
		"| 1 node at 0.20 cores | 1 | 20.0 | 55 % | 0.70 cores | 0.20 cores | 4.1 s |", "| ratio, round 1 | | 2.10× |", "| ratio, round 2 | | 1.73× |",
		"**Where the limit is.** Each merchant node's CPU budget: one capped node used 0.20 of its 0.20 cores, three used 0.59 of their 0.60"} {
		if !strings.Contains(rep, want) {
			t.Errorf("the report lacks %q:\n%s", want, rep)
		}
	}
}

// -only postgres replaces the PostgreSQL figures and section, and keeps
// everything else; without a full run's results it writes its own.
func TestMergeSection(t *testing.T) {
	dir := t.TempDir()
	old := Results{Figures: []Figure{{Name: "Blom derivation, k=1024", Value: 1}, {Name: pgNodesFig, Value: 99}}}
	data, _ := json.Marshal(old)
	os.WriteFile(filepath.Join(dir, "results.json"), data, 0o644)
	os.WriteFile(filepath.Join(dir, "report.md"), []byte("# orderseal benchmarks\n"+pgHeading+"\nold\n\n## Raw output\n\nraw\n"), 0o644)
	if err := mergeSection(dir, pgPrefix, pgHeading, []Figure{{Name: pgNodesFig, Value: 7}}, pgHeading+"\nnew\n"); err != nil {
		t.Fatal(err)
	}
	var res Results
	data, _ = os.ReadFile(filepath.Join(dir, "results.json"))
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Figures) != 2 || res.Figures[0].Value != 1 || res.Figures[1].Value != 7 {
		t.Errorf("figures %+v", res.Figures)
	}
	rep, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if r := string(rep); strings.Contains(r, "old") || !strings.Contains(r, "new\n\n## Raw output") {
		t.Errorf("report:\n%s", r)
	}
	fresh := t.TempDir()
	if err := mergeSection(fresh, pgPrefix, pgHeading, []Figure{{Name: pgNodesFig, Value: 7}}, pgHeading+"\nnew\n"); err != nil {
		t.Fatalf("without a full run's results: %v", err)
	}
}

// TestPgBudget: the per-node budget fits three nodes and everything else
// in pgHeadroom of the machine, from the uncapped one-node runs' CPU
// times: merchant 6 s, the others 9 s (1.5× the merchant's) on 2 cores
// give 0.8 × 2 / (3 × 2.5) = 0.213, rounded down to 0.20. Without those
// lines, or without a process's CPU time, there is no budget.
func TestPgBudget(t *testing.T) {
	raw, err := os.ReadFile("testdata/postgres.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, err := pgBudget(parse(string(raw)))
	if err != nil || b.cores != 0.2 || b.machine != 2 {
		t.Fatalf("budget %+v %v, want 0.20 cores of 2", b, err)
	}
	// 480 and 540 orders in the windows: 12.5 and 11.1 ms of the merchant's per order.
	if b.merchant < 0.0111 || b.merchant > 0.0125 || b.others/b.merchant < 1.49 || b.others/b.merchant > 1.51 {
		t.Errorf("per order: merchant %v s, others %v s", b.merchant, b.others)
	}
	cheap := strings.ReplaceAll(string(raw), "\t3.00 driver-cpu-s", "\t0.00 driver-cpu-s")
	if b, err := pgBudget(parse(cheap)); err != nil || b.cores != 0.25 {
		t.Errorf("others at 1× the merchant: %+v %v, want 0.8 × 2 / 6 = 0.267 → 0.25", b, err)
	}
	if _, err := pgBudget(parse(strings.ReplaceAll(string(raw), "postgres-cpu-s", "pg-cpu-s"))); err == nil || !strings.Contains(err.Error(), "postgres-cpu-s") {
		t.Errorf("without the server's CPU time: %v", err)
	}
	if _, err := pgBudget(parse("PASS\n")); err == nil {
		t.Error("a budget from no lines")
	}
}
