package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"orderseal/internal/signedhttp"
	"orderseal/internal/signedhttp/nonce"
	issuerapi "orderseal/issuer/api"
)

// The flood figures (issue 16 item 2 rerun as a benchmark): one cardholder
// identity offers the issuer floodRate signed requests a second for the
// flood window while closed-loop cardholders place orders through the
// merchant; the baseline is the same load without the flood, half of the
// window before it and half after, on the same cluster (stress flood).
const (
	floodRate    = 20000
	floodPrefix  = "Flood of one cardholder at the issuer"
	floodOrders  = floodPrefix + ": genuine order throughput"
	floodRefused = floodPrefix + ": genuine requests refused"
	floodRSS     = floodPrefix + ": issuer peak RSS"
	floodNonces  = floodPrefix + ": nonces recorded for the flooding identity"
	floodOffer   = floodPrefix + ": flood requests offered"
	floodAnswer  = floodPrefix + ": flood requests answered"
	floodBase    = "the same orders without the flood, before and after it"
	floodHeading = "\n## Flood of one cardholder at the issuer (issue 16)\n"
	// floodRSSMax is the memory goal: the flood may add at most the
	// bound floodBound states (it is a cost ratio, so ≤ 2× the baseline
	// peak, which it is well within).
	floodRSSMax = 2.0
)

// floodBound states the issuer's memory bound under a flood from one
// identity, from the limits that make it.
func floodBound() string {
	return fmt.Sprintf("a caller the route does not admit records no nonce (the role is checked first); "+
		"an admitted one holds at most %d live nonces as a person, %d as another party, in the issuer's database and, on SQLite, its memory (about 100 bytes each); "+
		"at most %d requests of one person are read at once, each body at most %d KiB: %.1f MiB of request memory per flooding identity",
		nonce.PersonQuota, nonce.DaemonQuota, signedhttp.DefaultPerPerson, issuerapi.MaxBody>>10,
		float64(signedhttp.DefaultPerPerson*issuerapi.MaxBody)/(1<<20))
}

var floodName = regexp.MustCompile(`^BenchmarkFlood/issuer/clients=(\d+)$`)

// floodStep is the stress flood run of the plan.
func (p *loadPlan) floodStep() step {
	return step{label: fmt.Sprintf("flood: %d req/s from one cardholder for %s, baseline %s", floodRate, p.floodWindow, p.floodWindow),
		cmd:  "flood",
		args: []string{"-rate", fmt.Sprint(floodRate), "-duration", p.floodWindow.String(), "-clients", "8"}}
}

// floodFigures turns the BenchmarkFlood line into its figures.
func floodFigures(results []result) []Figure {
	var r *result
	for i := range results {
		if floodName.MatchString(results[i].name) {
			r = &results[i] // the last run, if several
		}
	}
	if r == nil {
		return nil
	}
	m := r.metrics
	var figs []Figure
	judge := func(f Figure, ok bool) Figure {
		f.Meets = &ok
		return f
	}
	if got, base := m["orders/s"], m["base-orders/s"]; got > 0 && base > 0 {
		figs = append(figs, judge(Figure{Name: floodOrders, Value: round(got, 1), Unit: "orders/s", Baseline: floodBase,
			BaselineValue: round(base, 1), Ratio: round(base/got, 4), Goal: "≥ 0.8× without the flood", goalMax: 1 / 0.8},
			base/got <= 1/0.8*(1+1e-9)))
	}
	figs = append(figs, judge(Figure{Name: floodRefused, Value: m["refused-genuine"], Unit: "requests", Baseline: floodBase,
		BaselineValue: m["base-refused-genuine"], Goal: "0"}, m["refused-genuine"] == 0))
	if got, base := m["issuer-peak-MiB"], m["issuer-base-peak-MiB"]; got > 0 && base > 0 {
		figs = append(figs, judge(Figure{Name: floodRSS, Value: round(got, 1), Unit: "MiB", Baseline: floodBase,
			BaselineValue: round(base, 1), Ratio: round(got/base, 4), Goal: "bounded (see the report): ≤ 2× without the flood", goalMax: floodRSSMax},
			got/base <= floodRSSMax))
	}
	figs = append(figs, judge(Figure{Name: floodNonces, Value: m["flood-nonces"], Unit: "nonces", Baseline: "none: the issuer admits merchants only",
		Goal: "0"}, m["flood-nonces"] == 0))
	// The flood is real only if it was offered at its rate: the offered
	// rate is measured at the flood's sockets (written, or held back
	// because the issuer did not read them), never assumed.
	if offered := m["offered-req/s"]; offered > 0 {
		figs = append(figs, judge(Figure{Name: floodOffer, Value: round(offered, 0), Unit: "req/s", Baseline: "the rate the flood is set to",
			BaselineValue: floodRate, Ratio: round(floodRate/offered, 4), Goal: fmt.Sprintf("≥ %d req/s offered (0.95×)", floodRate)},
			offered >= 0.95*floodRate))
		// What the issuer answered has no goal: its refusal pacing keeps
		// it far below the offered rate, which is the defence.
		got := m["flood-req/s"]
		figs = append(figs, Figure{Name: floodAnswer, Value: round(got, 0), Unit: "req/s", Baseline: "offered by the flooding cardholder",
			BaselineValue: round(offered, 0), Ratio: round(got/offered, 4), Goal: "-"})
	}
	return figs
}

// floodReport is the report's section on the flood figures.
func floodReport(figs []Figure, raw string) string {
	var b strings.Builder
	b.WriteString(floodHeading + "\n")
	fmt.Fprintf(&b, "`stress flood` starts the real daemons, then places genuine orders with 8 closed-loop cardholders through the merchant (which relays each to the issuer) for half the window, then for the whole window while a ninth cardholder offers the issuer %d signed requests a second (fresh nonce and valid MAC each, over pipelined connections: the issuer admits merchants only), then for half the window again. ", floodRate)
	fmt.Fprintf(&b, "Genuine requests refused: the merchant's relay jobs retried or given up on, and orders not settled as designed, during the flood. The offered and answered rates are measured at the flood's sockets: offered counts the requests written and those held back because the issuer did not read them (its refusal pacing: each refusal spends a token of its caller's budget, %d a second with a burst of twice that, and of a budget for all callers, %d a second; a refusal without a token waits for one, which stalls the pipelined connection behind it, and past %s or the waiting bound it is answered at once and its connection closed); answered counts the issuer's answers.\n\n", signedhttp.DefaultCallerRefusals, signedhttp.DefaultAllRefusals, signedhttp.MaxPaceDelay)
	fmt.Fprintf(&b, "Memory bound: %s.\n\n", floodBound())
	b.WriteString("| figure | value | baseline | baseline value | ratio | goal | |\n|---|---:|---|---:|---:|---|---|\n")
	for _, f := range figs {
		if strings.HasPrefix(f.Name, floodPrefix) {
			fmt.Fprintf(&b, "| %s | %s %s | %s | %s %s | %.3f | %s | %s |\n", f.Name, num(f.Value), f.Unit, f.Baseline, num(f.BaselineValue), f.Unit, f.Ratio, f.Goal, verdict(f))
		}
	}
	var lines []string
	for _, l := range strings.Split(raw, "\n") {
		if strings.HasPrefix(l, "BenchmarkFlood/") || strings.HasPrefix(l, "# flood:") {
			lines = append(lines, l)
		}
	}
	if len(lines) > 0 {
		b.WriteString("\n```\n" + strings.Join(lines, "\n") + "\n```\n")
	}
	return b.String()
}

// mergeFlood puts the flood figures of this run into outDir's results.json
// and report.md, replacing the previous ones and keeping every other
// figure as the last full run measured it (`-only flood`). ratios.png is
// left as that run drew it.
func mergeFlood(outDir string, figs []Figure, raw string) error {
	if len(figs) == 0 {
		return errors.New("the flood run produced no BenchmarkFlood line")
	}
	if _, err := os.Stat(filepath.Join(outDir, "results.json")); err != nil {
		return fmt.Errorf("-only flood merges into the results of a full run: %w", err)
	}
	return mergeSection(outDir, floodPrefix, floodHeading, figs, floodReport(figs, raw))
}
