package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
)

func TestCategorize(t *testing.T) {
	for _, c := range []struct {
		stack []string // leaf first, as pprof stores it
		want  string
	}{
		{[]string{"github.com/cloudflare/circl/ecc/bls12381/ff.fiatFpMontMul", "github.com/cloudflare/circl/ecc/bls12381.finalExp",
			"github.com/cloudflare/circl/ecc/bls12381.Pair", "orderseal/suite/os2.derive", "orderseal/keygen.(*Cache).Pairwise"}, "pairing"},
		{[]string{"github.com/cloudflare/circl/ecc/bls12381.(*G2).Hash", "orderseal/suite/os2.sokPeer"}, "pairing"},
		{[]string{"crypto/sha3.(*Digest).Write", "github.com/cloudflare/circl/kem/mlkem/mlkem768.(*PublicKey).EncapsulateTo",
			"github.com/cloudflare/circl/kem/xwing.(*PublicKey).EncapsulateTo", "orderseal/order.encapsulate"}, "kem"},
		{[]string{"github.com/cloudflare/circl/math/fp25519.Mul", "github.com/cloudflare/circl/dh/x25519.ladderMontgomery"}, "kem"},
		{[]string{"crypto/sha3.(*Digest).Write", "github.com/cloudflare/circl/sign/mldsa/mldsa65.Verify", "orderseal/order.encapsulate"}, "mldsa"},
		// Blom's field is fp25519 too, but no X25519 frame is above it
		{[]string{"github.com/cloudflare/circl/math/fp25519.Mul", "orderseal/keygen.(*PartyKey).BlomSecret", "orderseal/keygen.(*Cache).Pairwise"}, "blom"},
		// OS2's derivation: its pairing counts as a pairing, whatever frame is above
		{[]string{"github.com/cloudflare/circl/ecc/bls12381.miller", "orderseal/keygen.(*PartyKey).BlomSecret"}, "pairing"},
		{[]string{"encoding/json.Marshal", "net/http.(*conn).serve"}, "rest"},
		{[]string{"runtime.mallocgc"}, "rest"},
		{nil, "rest"},
	} {
		if got := categorize(c.stack); got != c.want {
			t.Errorf("%v: %s, want %s", c.stack, got, c.want)
		}
	}
}

// cpuProfile builds a CPU profile whose samples are stacks (leaf first)
// holding ms milliseconds each.
func cpuProfile(samples map[int64][][]string) *profile.Profile {
	p := &profile.Profile{SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"}, Period: 10_000_000}
	fns := map[string]*profile.Function{}
	for ms, stacks := range samples {
		for _, st := range stacks {
			var locs []*profile.Location
			for _, name := range st {
				fn := fns[name]
				if fn == nil {
					fn = &profile.Function{ID: uint64(len(fns) + 1), Name: name}
					fns[name] = fn
					p.Function = append(p.Function, fn)
				}
				loc := &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: fn}}}
				p.Location = append(p.Location, loc)
				locs = append(locs, loc)
			}
			p.Sample = append(p.Sample, &profile.Sample{Location: locs, Value: []int64{ms / 10, ms * 1_000_000}})
		}
	}
	return p
}

var (
	pairStack = []string{"github.com/cloudflare/circl/ecc/bls12381.Pair", "orderseal/suite/os2.derive"}
	kemStack  = []string{"github.com/cloudflare/circl/kem/xwing.(*PrivateKey).DecapsulateTo"}
	dsaStack  = []string{"github.com/cloudflare/circl/sign/mldsa/mldsa65.Verify"}
	blomStack = []string{"orderseal/keygen.(*PartyKey).BlomSecret"}
	restStack = []string{"net/http.(*conn).serve"}
)

func TestCPUByCategory(t *testing.T) {
	p := cpuProfile(map[int64][][]string{30: {pairStack, pairStack}, 20: {kemStack}, 10: {dsaStack, blomStack}, 40: {restStack}})
	got, err := cpuByCategory(p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"pairing": 0.06, "kem": 0.02, "mldsa": 0.01, "blom": 0.01, "rest": 0.04}
	for k, v := range want {
		if d := got[k] - v; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s: %v s, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("categories %v", got)
	}
	p.SampleType = []*profile.ValueType{{Type: "alloc_space", Unit: "bytes"}, {Type: "inuse", Unit: "bytes"}}
	if _, err := cpuByCategory(p); err == nil {
		t.Error("a heap profile gave no error")
	}
}

// Two rounds' profiles, written and parsed back, divided by the orders:
// per process, per category, the daemons' total and the driver apart.
func TestMixBreakdown(t *testing.T) {
	dirs := []string{t.TempDir(), t.TempDir()}
	write := func(dir, name string, p *profile.Profile) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := p.Write(f); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range dirs {
		for _, proc := range processes {
			// OS1 per round and process: 100 ms of the rest, 10 of Blom.
			write(dir, "sealed-new50-"+proc+".prof", cpuProfile(map[int64][][]string{100: {restStack}, 10: {blomStack}}))
			// OS2: the same, plus 200 ms of pairings and 50 of KEM; the
			// driver also 20 ms of ML-DSA.
			os2 := map[int64][][]string{100: {restStack}, 10: {blomStack}, 200: {pairStack}, 50: {kemStack}}
			if proc == "driver" {
				os2[20] = [][]string{dsaStack}
			}
			write(dir, "os2-new50-"+proc+".prof", cpuProfile(os2))
		}
	}
	lines := []result{
		{name: "BenchmarkE2E/sealed/clients=8/new=50", metrics: map[string]float64{"orders/s": 40, "run-orders": 100, "new-share": 0.5}},
		{name: "BenchmarkE2E/os2/clients=8/new=50", metrics: map[string]float64{"orders/s": 20, "run-orders": 50, "new-share": 0.48}},
		{name: "BenchmarkE2E/sealed/clients=8/new=50", metrics: map[string]float64{"orders/s": 40, "run-orders": 100, "new-share": 0.52}},
		{name: "BenchmarkE2E/os2/clients=8/new=50", metrics: map[string]float64{"orders/s": 20, "run-orders": 50, "new-share": 0.5}},
		{name: "BenchmarkE2E/sealed/clients=8", metrics: map[string]float64{"orders/s": 40, "run-orders": 1000}}, // not mixed
	}
	b, err := mixBreakdown(dirs, lines)
	if err != nil {
		t.Fatal(err)
	}
	if b.Orders.OS1 != 200 || b.Orders.OS2 != 100 || b.NewShare.OS1 != 0.51 || b.NewShare.OS2 != 0.49 {
		t.Fatalf("orders %+v, new share %+v", b.Orders, b.NewShare)
	}
	// OS1: 2 rounds × 110 ms / 200 orders = 1.1 ms per order and process;
	// OS2: 2 × 360 / 100 = 7.2 (the driver 7.6).
	for _, c := range []struct {
		proc, cat     string
		os1, os2, dlt float64
	}{
		{"merchant", "pairing", 0, 4, 4},
		{"merchant", "kem", 0, 1, 1},
		{"merchant", "blom", 0.1, 0.2, 0.1},
		{"merchant", "rest", 1, 2, 1},
		{"merchant", "mldsa", 0, 0, 0},
		{"driver", "mldsa", 0, 0.4, 0.4},
		{"daemons", "pairing", 0, 16, 16},
		{"daemons", "rest", 4, 8, 4},
	} {
		r := b.row(c.proc, c.cat)
		if r.OS1 != c.os1 || r.OS2 != c.os2 || r.Delta != c.dlt {
			t.Errorf("%s %s: %+v, want %v %v %v", c.proc, c.cat, r, c.os1, c.os2, c.dlt)
		}
	}
	if b.Daemons.OS1 != 4.4 || b.Daemons.OS2 != 28.8 || b.Driver.OS1 != 1.1 || b.Driver.OS2 != 7.6 || b.DaemonRatio != 0.1528 {
		t.Fatalf("daemons %+v, driver %+v, ratio %v", b.Daemons, b.Driver, b.DaemonRatio)
	}
	if _, err := mixBreakdown([]string{t.TempDir()}, lines); err == nil {
		t.Error("missing profiles gave no error")
	}
	if _, err := mixBreakdown(dirs, lines[4:]); err == nil {
		t.Error("no mixed lines (no orders) gave no error")
	}
	f := Figure{Name: os2E2EName, Value: 20, BaselineValue: 40, Ratio: 2, Goal: os2E2EGoal, Breakdown: b}
	rep := breakdownReport(f)
	for _, want := range []string{"0.50× the orders per second", "| **every process** | **5.50** | **36.40** | **+30.90** |", "| driver | +4.00 | +1.00 | +0.40 | +0.10 | +1.00 | +6.50 | 7.60 |"} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}
}
