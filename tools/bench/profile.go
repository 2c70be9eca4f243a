package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/pprof/profile"

	"orderseal/tstest/cluster"
)

// cpuCategory is a share of a CPU profile: a sample belongs to the first
// category, in cpuCategories order, one of whose functions is on its stack.
type cpuCategory struct {
	key, label string
	match      []string // substrings of a function's full name
}

// cpuCategories split the end-to-end CPU the way the OS2 goal asks: the
// pairings, the KEM, the directory's signatures, Blom (OS1's only
// derivation, OS2's half of one) and the rest.
var cpuCategories = []cpuCategory{
	{"pairing", "pairings", []string{"circl/ecc/bls12381"}},
	{"kem", "KEM (X-Wing)", []string{"xwing", "mlkem", "x25519"}},
	{"mldsa", "ML-DSA (directory entries)", []string{"mldsa"}},
	{"blom", "Blom derivation", []string{"keygen.(*PartyKey).BlomSecret"}},
}

const restCategory = "rest"

// categoryKeys are the keys of cpuCategories, then the rest.
func categoryKeys() []string {
	var k []string
	for _, c := range cpuCategories {
		k = append(k, c.key)
	}
	return append(k, restCategory)
}

// categorize is a sample's category from the function names on its stack.
func categorize(funcs []string) string {
	for _, c := range cpuCategories {
		for _, f := range funcs {
			for _, m := range c.match {
				if strings.Contains(f, m) {
					return c.key
				}
			}
		}
	}
	return restCategory
}

// cpuByCategory reads a CPU profile and returns the seconds of CPU it
// holds per category.
func cpuByCategory(p *profile.Profile) (map[string]float64, error) {
	idx := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("not a CPU profile (no cpu/nanoseconds sample type)")
	}
	out := map[string]float64{}
	for _, k := range categoryKeys() {
		out[k] = 0
	}
	var funcs []string
	for _, s := range p.Sample {
		funcs = funcs[:0]
		for _, loc := range s.Location {
			for _, l := range loc.Line {
				if l.Function != nil {
					funcs = append(funcs, l.Function.Name)
				}
			}
		}
		out[categorize(funcs)] += float64(s.Value[idx]) / 1e9
	}
	return out, nil
}

// processes are the processes of a run whose CPU the breakdown reports: the
// four daemons and the load generator (stress load's own profile, the
// driver that seals and submits).
var processes = append(slices.Clone(cluster.Daemons), "driver")

// runCPU is the CPU of one suite's rounds: seconds per process and
// category, over the orders those rounds settled.
type runCPU struct {
	seconds map[string]map[string]float64 // process → category → CPU seconds
	orders  int
}

// readRunCPU adds up the profiles prefix-<process>.prof in every directory
// of dirs.
func readRunCPU(dirs []string, prefix string, orders int) (runCPU, error) {
	r := runCPU{seconds: map[string]map[string]float64{}, orders: orders}
	for _, proc := range processes {
		r.seconds[proc] = map[string]float64{}
		for _, dir := range dirs {
			path := filepath.Join(dir, prefix+"-"+proc+".prof")
			f, err := os.Open(path)
			if err != nil {
				return r, err
			}
			p, err := profile.Parse(f)
			f.Close()
			if err != nil {
				return r, fmt.Errorf("%s: %w", path, err)
			}
			by, err := cpuByCategory(p)
			if err != nil {
				return r, fmt.Errorf("%s: %w", path, err)
			}
			for k, v := range by {
				r.seconds[proc][k] += v
			}
		}
	}
	return r, nil
}

// Breakdown explains the OS2 end-to-end figure: CPU milliseconds per order
// under OS1 and OS2, per process and category, from the rounds' CPU
// profiles (informational: results.json carries it beside the figure).
type Breakdown struct {
	Unit   string `json:"unit"`
	Orders struct {
		OS1 int `json:"os1"`
		OS2 int `json:"os2"`
	} `json:"orders"` // orders the profiles cover, warm-up and drain included
	NewShare struct {
		OS1 float64 `json:"os1"`
		OS2 float64 `json:"os2"`
	} `json:"new_share"` // median share of orders from new cardholders
	Rows []BreakdownRow `json:"rows"`
	// Daemons and Driver are the totals of the four daemons and of the load
	// generator, apart: the driver shares the machine with the daemons.
	Daemons BreakdownRow `json:"daemons"`
	Driver  BreakdownRow `json:"driver"`
	// DaemonRatio is OS1 ÷ OS2 daemon CPU per order: the throughput ratio
	// the daemons alone would reach, bound by CPU, with the load generated
	// elsewhere.
	DaemonRatio float64 `json:"daemon_ratio"`
}

// BreakdownRow is one process's (or all daemons') CPU in one category.
type BreakdownRow struct {
	Process  string  `json:"process"`  // a daemon, "daemons" (the four), or "driver"
	Category string  `json:"category"` // pairing, kem, mldsa, blom, rest, or "all"
	OS1      float64 `json:"os1"`      // CPU ms per order
	OS2      float64 `json:"os2"`
	Delta    float64 `json:"delta"` // OS2 − OS1
}

// breakdown divides each suite's CPU by its orders.
func breakdown(os1, os2 runCPU) (*Breakdown, error) {
	if os1.orders <= 0 || os2.orders <= 0 {
		return nil, fmt.Errorf("no orders to divide the CPU by (OS1 %d, OS2 %d)", os1.orders, os2.orders)
	}
	b := &Breakdown{Unit: "CPU ms per order"}
	b.Orders.OS1, b.Orders.OS2 = os1.orders, os2.orders
	per := func(r runCPU, procs []string, cats []string) float64 {
		var s float64
		for _, p := range procs {
			for _, c := range cats {
				s += r.seconds[p][c]
			}
		}
		return 1000 * s / float64(r.orders)
	}
	row := func(proc string, procs, cats []string, cat string) BreakdownRow {
		a, z := round(per(os1, procs, cats), 3), round(per(os2, procs, cats), 3)
		return BreakdownRow{Process: proc, Category: cat, OS1: a, OS2: z, Delta: round(z-a, 3)}
	}
	cats := categoryKeys()
	for _, proc := range append([]string{"daemons"}, processes...) {
		procs := []string{proc}
		if proc == "daemons" {
			procs = cluster.Daemons
		}
		for _, c := range cats {
			b.Rows = append(b.Rows, row(proc, procs, []string{c}, c))
		}
	}
	b.Daemons = row("daemons", cluster.Daemons, cats, "all")
	b.Driver = row("driver", []string{"driver"}, cats, "all")
	if b.Daemons.OS2 > 0 {
		b.DaemonRatio = round(b.Daemons.OS1/b.Daemons.OS2, 4)
	}
	return b, nil
}

// categoryLabel is a category's words for the report.
func categoryLabel(key string) string {
	for _, c := range cpuCategories {
		if c.key == key {
			return c.label
		}
	}
	return "the rest"
}

// row finds the row of process and category.
func (b *Breakdown) row(process, category string) BreakdownRow {
	for _, r := range b.Rows {
		if r.Process == process && r.Category == category {
			return r
		}
	}
	return BreakdownRow{Process: process, Category: category}
}

// breakdownReport is the report's section on f's breakdown.
func breakdownReport(f Figure) string {
	b := f.Breakdown
	var s strings.Builder
	s.WriteString("\n## OS2 end to end: where the difference goes\n\n")
	fmt.Fprintf(&s, "At %d clients, half of the orders from new cardholders (one order each, no pairwise key cached by any daemon or by the cardholder: OS1 pays a Blom derivation per party, OS2 a Blom derivation and a SOK pairing) and half from returning ones (keys cached on both sides), OS2 moves %.2f× the orders per second of OS1 (%s vs %s orders/s, median of the alternating rounds' ratios; goal %s: %s). ",
		os2E2EClients, 1/f.Ratio, num(f.Value), num(f.BaselineValue), f.Goal, verdict(f))
	fmt.Fprintf(&s, "Share of orders from new cardholders: OS1 %.0f%%, OS2 %.0f%%. ", 100*b.NewShare.OS1, 100*b.NewShare.OS2)
	fmt.Fprintf(&s, "CPU per order from every mixed round's profiles (%d OS1 orders, %d OS2, warm-up and drain included), the load generator apart from the daemons:\n\n",
		b.Orders.OS1, b.Orders.OS2)
	all := BreakdownRow{OS1: b.Daemons.OS1 + b.Driver.OS1, OS2: b.Daemons.OS2 + b.Driver.OS2}
	all.Delta = all.OS2 - all.OS1
	share := func(d float64) string {
		if all.Delta == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f%%", 100*d/all.Delta)
	}
	s.WriteString("| CPU ms per order | OS1 | OS2 | OS2 − OS1 | of the difference |\n|---|---:|---:|---:|---:|\n")
	for _, who := range []struct {
		proc, label string
		total       BreakdownRow
	}{{"daemons", "daemons", b.Daemons}, {"driver", "load generator", b.Driver}} {
		for _, c := range categoryKeys() {
			r := b.row(who.proc, c)
			fmt.Fprintf(&s, "| %s: %s | %.2f | %.2f | %+.2f | %s |\n", who.label, categoryLabel(c), r.OS1, r.OS2, r.Delta, share(r.Delta))
		}
		fmt.Fprintf(&s, "| **%s, all** | **%.2f** | **%.2f** | **%+.2f** | %s |\n", who.label, who.total.OS1, who.total.OS2, who.total.Delta, share(who.total.Delta))
	}
	fmt.Fprintf(&s, "| **every process** | **%.2f** | **%.2f** | **%+.2f** | 100%% |\n\n", all.OS1, all.OS2, all.Delta)
	fmt.Fprintf(&s, "The daemons alone spend %.2f ms per order on OS1 and %.2f on OS2: %.2f×, the throughput ratio a CPU-bound deployment would see with its cardholders on other machines. Per daemon, OS2 − OS1 in ms per order:\n\n",
		b.Daemons.OS1, b.Daemons.OS2, b.DaemonRatio)
	s.WriteString("| process |")
	for _, c := range categoryKeys() {
		fmt.Fprintf(&s, " %s |", c)
	}
	s.WriteString(" all | OS2 all |\n|---|")
	s.WriteString(strings.Repeat("---:|", len(categoryKeys())+2) + "\n")
	for _, p := range processes {
		fmt.Fprintf(&s, "| %s |", p)
		var d, o float64
		for _, c := range categoryKeys() {
			r := b.row(p, c)
			d, o = d+r.Delta, o+r.OS2
			fmt.Fprintf(&s, " %+.2f |", r.Delta)
		}
		fmt.Fprintf(&s, " %+.2f | %.2f |\n", d, o)
	}
	s.WriteString("\nCPU per order counts all of a profile, so what a daemon does per second rather than per order (the merchant's relay poll, the outbox's claims, the runtime) weighs more per order in the slower suite: part of the rest's difference is that, not the composition. The daemons are the merchant, issuer, carrier and vault; the load generator is `stress load` itself, sealing and submitting every order. A sample counts in the first category, in the order of the table, one of whose functions is on its stack: pairings `circl/ecc/bls12381` (Pair, miller, finalExp, hash to G1/G2, the field towers), KEM `xwing`, `mlkem`, `x25519` (encapsulation in the load generator, decapsulation in the daemons), ML-DSA `mldsa` (the directory entries a seal verifies), Blom `keygen.(*PartyKey).BlomSecret`; the rest is HTTP, JSON, SQLite, the AEAD, hashing, signed requests and the runtime.\n")
	return s.String()
}
