package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The BenchmarkStore lines of testdata/postgres.txt make the nodes figure
// (medians: 3 nodes 75 orders/s, 1 node 85) and SQLite beside PostgreSQL
// at each level; only the nodes figure has a goal, judged from the values.
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
		{pgNodesFig, 75, 85, 1.1333, true, false},
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
	fast := strings.ReplaceAll(string(raw), "70.00 orders/s", "160.00 orders/s")
	fast = strings.ReplaceAll(fast, "80.00 orders/s\t400.0", "170.00 orders/s\t400.0")
	for _, f := range pgFigures(parse(fast)) {
		if f.Name == pgNodesFig && (f.Meets == nil || !*f.Meets) {
			t.Errorf("3 nodes at 165 orders/s against 85 for one: %+v, want the goal met", f)
		}
	}
	if figs := pgFigures(parse("PASS\n")); figs != nil {
		t.Errorf("figures without BenchmarkStore lines: %v", figs)
	}
	rep := pgReport(figs, parse(string(raw)), string(raw))
	for _, want := range []string{"98 % busy during the one-node window", "saturated", "BenchmarkStore/postgres/nodes=3/clients=32"} {
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
