package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const floodSample = `# flood: cluster up in 7.9 s (k=1024, 9 cardholders)
BenchmarkFlood/issuer/clients=8 	163	34.00 orders/s	40.00 base-orders/s	8557 flood-req/s	20000 offered-req/s	0 refused-genuine	0 base-refused-genuine	27.5 issuer-peak-MiB	25.0 issuer-base-peak-MiB	0 flood-nonces	107676 flood-403	13 flood-s
`

// The flood line makes six figures, each with its goal judged from the
// measured values; none is assumed.
func TestFloodFigures(t *testing.T) {
	yes := true
	figs := floodFigures(parse(floodSample))
	byName := map[string]Figure{}
	for _, f := range figs {
		byName[f.Name] = f
	}
	for _, c := range []struct {
		name        string
		value, base float64
		ratio       float64
		meets       *bool // nil: a figure without a goal
	}{
		{floodOrders, 34, 40, 1.1765, &yes},
		{floodRefused, 0, 0, 0, &yes},
		{floodRSS, 27.5, 25, 1.1, &yes},
		{floodNonces, 0, 0, 0, &yes},
		{floodOffer, 20000, 20000, 1, &yes},
		{floodAnswer, 8557, 20000, 0.4279, nil},
	} {
		f, ok := byName[c.name]
		if !ok {
			t.Errorf("no figure %q", c.name)
			continue
		}
		if f.Value != c.value || f.BaselineValue != c.base || f.Ratio != c.ratio || (f.Meets == nil) != (c.meets == nil) ||
			(c.meets != nil && *f.Meets != *c.meets) || f.Goal == "" {
			t.Errorf("%s: %+v, want value %v base %v ratio %v meets %v", c.name, f, c.value, c.base, c.ratio, c.meets)
		}
	}
	slow := strings.Replace(floodSample, "34.00 orders/s", "35.00 orders/s", 1)
	slow = strings.Replace(slow, "0 refused-genuine", "3 refused-genuine", 1)
	slow = strings.Replace(slow, "20000 offered-req/s", "15000 offered-req/s", 1)
	for _, f := range floodFigures(parse(slow)) {
		if f.Name == floodRefused && *f.Meets {
			t.Error("3 genuine requests refused meets the goal of 0")
		}
		if f.Name == floodOffer && *f.Meets {
			t.Error("a flood offered at 15 000 req/s meets the goal of 20 000")
		}
	}
	if figs := floodFigures(parse("PASS\n")); figs != nil {
		t.Errorf("figures without a flood line: %v", figs)
	}
}

// -only flood replaces the flood figures of results.json and the report's
// flood section, and keeps everything else.
func TestMergeFlood(t *testing.T) {
	dir := t.TempDir()
	old := Results{Figures: []Figure{{Name: "Blom derivation, k=1024", Value: 1}, {Name: floodOrders, Value: 99}},
		Pending: []Pending{{Name: floodOrders, Goal: "g", Reason: "r"}, {Name: os2E2EName, Goal: "g", Reason: "r"}}}
	data, _ := json.Marshal(old)
	if err := os.WriteFile(filepath.Join(dir, "results.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	report := "# orderseal benchmarks\n\n| a | b |\n\n## Raw output (`go test -bench`, `stress load`)\n\n```\nraw\n```\n"
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(report), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 { // merging twice leaves one flood section
		if err := mergeFlood(dir, floodFigures(parse(floodSample)), floodSample); err != nil {
			t.Fatal(err)
		}
	}
	var got Results
	data, _ = os.ReadFile(filepath.Join(dir, "results.json"))
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Figures) != 7 || got.Figures[0].Name != "Blom derivation, k=1024" || len(got.Pending) != 1 || got.Pending[0].Name != os2E2EName {
		t.Fatalf("merged results: %+v", got)
	}
	for _, f := range got.Figures[1:] {
		if !strings.HasPrefix(f.Name, floodPrefix) || (f.Name == floodOrders && f.Value != 34) {
			t.Errorf("merged figure %+v", f)
		}
	}
	rep, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	r := string(rep)
	if strings.Count(r, "## Flood of one cardholder") != 1 || !strings.Contains(r, "BenchmarkFlood/issuer/clients=8") ||
		strings.Index(r, "## Flood") > strings.Index(r, "## Raw output") || !strings.Contains(r, "Memory bound:") {
		t.Fatalf("merged report:\n%s", r)
	}
	if err := mergeFlood(dir, nil, ""); err == nil {
		t.Fatal("merging no figures succeeded")
	}
}

func parse(s string) []result {
	var rs []result
	for _, l := range strings.Split(s, "\n") {
		if r, ok := parseLine(l); ok {
			rs = append(rs, r)
		}
	}
	return rs
}
