package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAgainstFigures(t *testing.T) {
	line := func(s string) result {
		r, ok := parseLine(againstName + " \t" + s)
		if !ok {
			t.Fatalf("unparsed: %s", s)
		}
		return r
	}
	runs := []againstRun{
		{false, line("400\t40.0 orders/s\t100 p50-ms\t200.0 p99-ms\t2.00 merchant-cpu-s\t5.000 cpu-ms/order\t60.0 busy-%")},
		{true, line("100\t10.0 orders/s\t300 p50-ms\t500.0 p99-ms\t2.00 merchant-cpu-s\t20.000 cpu-ms/order\t90.0 busy-%")},
		{true, line("110\t11.0 orders/s\t300 p50-ms\t500.0 p99-ms\t2.00 merchant-cpu-s\t20.000 cpu-ms/order\t90.0 busy-%")},
		{false, line("300\t30.0 orders/s\t100 p50-ms\t300.0 p99-ms\t2.00 merchant-cpu-s\t6.000 cpu-ms/order\t60.0 busy-%")},
	}
	figs := againstFigures(runs, "abc1234")
	want := map[string]struct {
		ratio float64
		meets *bool
	}{
		"CPU per order (every process)": {0.2750, ptr(false)}, // 5/20, 6/20
		"throughput":                    {0.3083, ptr(false)}, // 10/40, 11/30
		"p99 latency":                   {0.5000, ptr(true)},  // 200/500, 300/500
		"machine utilisation":           {0.6667, nil},
	}
	if len(figs) != len(want) {
		t.Fatalf("%d figures: %+v", len(figs), figs)
	}
	for _, f := range figs {
		w, ok := want[strings.TrimPrefix(f.Name, againstPrefix+": ")]
		if !ok {
			t.Fatalf("unexpected figure %q", f.Name)
		}
		if f.Ratio != w.ratio || (f.Meets == nil) != (w.meets == nil) || (f.Meets != nil && *f.Meets != *w.meets) {
			t.Errorf("%s: ratio %v meets %v, want %v %v", f.Name, f.Ratio, f.Meets, w.ratio, w.meets)
		}
	}
	section := againstReport(figs, runs, "abc1234", "abc1234ffff", [2]string{"top this\n", "top base\n"})
	for _, s := range []string{"| merchant | 5.83 | 19.09 |", "top this", "top base", "≤ 0.25× abc1234"} {
		if !strings.Contains(section, s) {
			t.Errorf("report lacks %q:\n%s", s, section)
		}
	}

	// Merged into an earlier run's files, replacing only its own section.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte("# r\n\n## Other\n\nkept\n\n## Raw output\n\nraw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := mergeSection(dir, againstPrefix, againstHeading, figs, section); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	if strings.Count(string(r), againstHeading) != 1 || !strings.Contains(string(r), "kept") ||
		strings.Index(string(r), againstHeading) > strings.Index(string(r), "## Raw output") {
		t.Fatalf("merged report:\n%s", r)
	}
}

func ptr(b bool) *bool { return &b }
