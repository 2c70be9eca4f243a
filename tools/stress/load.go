package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"orderseal/suite/null"
	"orderseal/suite/os1"
	"orderseal/suite/os2"
	"orderseal/tstest/cluster"
)

// loadOptions are the flags of "stress load".
type loadOptions struct {
	levels    []int
	stored    []int
	warm      time.Duration
	measure   time.Duration
	profile   string
	seed      uint64
	k         int
	bin       string
	dir       string
	keep      bool
	null      bool
	suite     string  // "os1" or "os2"
	newRate   float64 // share of orders from new cardholders
	newPool   int     // new cardholders made up front; 0: enough for the levels
	db        string  // "sqlite" or "postgres"; set: lines named BenchmarkStore/<db>/nodes=N/clients=C
	pgPID     int     // the PostgreSQL server's postmaster (-db postgres): its CPU is counted
	caps      *cpuCaps
	merchants int // merchant nodes (postgres)
	// merchantCPU caps each merchant node at this many cores (a cgroup v1
	// CFS quota of its own, cgroup.go); 0: uncapped. The lines then end
	// in /cpu=<cores>.
	merchantCPU float64
}

// suites are the names -suite takes: the key center's suite and the mode
// that names the lines ("sealed" stays OS1, the figures' meaning before OS2
// became the default).
var suites = map[string]struct{ name, mode string }{
	"os1": {os1.Name, "sealed"},
	"os2": {os2.Name, "os2"},
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// load measures closed-loop throughput and latency of the real daemons at
// each concurrency level and prints one `go test -bench` style line per
// level, which tools/bench reads:
//
//	BenchmarkE2E/sealed/clients=8  <orders>  41.2 orders/s  95 p50-ms  210 p99-ms  31.0 merchant-MiB …
//
// The mode names the suite: "sealed" is OS1 (-suite os1, the default), "os2"
// is OS2 (-suite os2), and "null" is the null relay under -null: the key
// center issues keys of the null relay suite (package suite/null: the same
// hops and durable writes, no sealing, no derivation), which every process
// refuses unless ORDERSEAL_NULL_RELAY=benchmark-only is set. With -new F, a
// share F of the orders comes from new cardholders, each placing one order
// with keys no daemon has derived yet (cluster.Config.NewCardholders), and
// the lines end in /new=<percent>. With -stored, the cluster is first
// filled to each number of stored orders in turn (cluster.Seed) and the
// lines are named BenchmarkScale/<mode>/stored=N/clients=C.
//
// Every line also carries each process's CPU seconds over the window
// (<daemon>-cpu-s, driver-cpu-s for this load generator, from /proc), their
// sum per order settled in it (cpu-ms/order) and the machine's utilisation
// (busy-%, every core); run-orders, the orders settled over the whole level
// (warm-up and drain included: what a CPU profile covers); and with -new,
// new-share, the share of them placed by new cardholders.
func load(ctx context.Context, args []string) int {
	o := loadOptions{}
	fs := flag.NewFlagSet("stress load", flag.ExitOnError)
	levels := fs.String("clients", "1,8,32", "concurrency levels: closed-loop cardholders, comma-separated")
	stored := fs.String("stored", "", "stored-order counts to fill the cluster to before measuring, ascending (e.g. 1000,1000000)")
	fs.DurationVar(&o.warm, "warm", 2*time.Second, "load before each measurement window")
	fs.DurationVar(&o.measure, "measure", 8*time.Second, "measurement window per level")
	fs.StringVar(&o.profile, "cpuprofile", "", "directory for CPU profiles of every daemon and of this driver (seal + submit)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the orders' random choices (the same in every mode)")
	fs.IntVar(&o.k, "k", 1024, "key center k")
	fs.StringVar(&o.bin, "bin", "", "directory of prebuilt binaries (default: build them)")
	fs.StringVar(&o.dir, "dir", "", "work directory (default: a new one under $TMPDIR, removed after)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory")
	fs.BoolVar(&o.null, "null", false, "run on the null relay suite (needs "+null.EnvVar+"="+null.EnvValue+")")
	fs.StringVar(&o.suite, "suite", "os1", "the key center's suite: os1 (lines named sealed) or os2")
	fs.Float64Var(&o.newRate, "new", 0, "share of orders placed by new cardholders, whose pairwise keys no daemon has cached (0 to 1)")
	fs.IntVar(&o.newPool, "new-pool", 0, "new cardholders to make up front (0: enough for the levels at 120 orders/s)")
	fs.StringVar(&o.db, "db", "", "the stores' backend: sqlite, or postgres on a throwaway server (tstest/pgtest); lines then named BenchmarkStore/<db>/nodes=N/clients=C")
	fs.IntVar(&o.merchants, "merchants", 1, "merchant nodes on one database behind a round-robin balancer (-db postgres)")
	fs.Float64Var(&o.merchantCPU, "merchant-cpu", 0, "cap every merchant node at this many cores, each in a cgroup v1 CPU quota of its own under "+cgroupCPU+" (needs root; -db only), as if each node had a machine of its own")
	fs.Parse(args)
	suiteSet := false
	fs.Visit(func(f *flag.Flag) { suiteSet = suiteSet || f.Name == "suite" })
	var err error
	if o.levels, err = parseInts(*levels); err == nil {
		o.stored, err = parseInts(*stored)
	}
	switch _, ok := suites[o.suite]; {
	case err != nil:
	case !ok:
		err = fmt.Errorf("-suite %q: want os1 or os2", o.suite)
	case o.null && suiteSet:
		err = errors.New("-null and -suite name two suites")
	case o.newRate < 0 || o.newRate > 1 || o.newPool < 0:
		err = errors.New("-new is a share from 0 to 1, -new-pool a count")
	case o.newRate > 0 && len(o.stored) > 0:
		err = errors.New("-new does not go with -stored")
	case o.db != "" && o.db != "sqlite" && o.db != "postgres":
		err = fmt.Errorf("-db %q: want sqlite or postgres", o.db)
	case o.merchants < 1 || (o.merchants > 1 && o.db != "postgres"):
		err = errors.New("-merchants N > 1 needs -db postgres (the nodes share one database)")
	case o.db != "" && (len(o.stored) > 0 || o.newRate > 0):
		err = errors.New("-db does not go with -stored or -new")
	case o.merchantCPU < 0 || o.merchantCPU > float64(runtime.NumCPU()) || (o.merchantCPU > 0 && o.db == ""):
		err = fmt.Errorf("-merchant-cpu %v: want cores between 0 and %d, with -db", o.merchantCPU, runtime.NumCPU())
	}
	if err != nil || len(o.levels) == 0 || fs.NArg() > 0 || o.measure <= 0 || !slices.IsSorted(o.stored) {
		fmt.Fprintf(os.Stderr, "stress load: error: bad flags (%v); see stress load -h\n", err)
		return 2
	}
	if err := o.run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "stress load: error: %v\n", err)
		return 1
	}
	return 0
}

func (o *loadOptions) run(ctx context.Context) error {
	mode, suiteName := suites[o.suite].mode, suites[o.suite].name
	if o.null {
		if err := (null.Suite{}).Available(); err != nil {
			return err
		}
		mode, suiteName = "null", null.Name
	}
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "orderseal-load.")
		if err != nil {
			return err
		}
		dir = d
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(os.Stderr, "load %s: %s\n", mode, fmt.Sprintf(format, a...))
	}
	cfg := cluster.Config{Dir: dir, BinDir: o.bin, K: o.k, Suite: suiteName, Cardholders: slices.Max(o.levels), Logf: logf}
	if o.merchantCPU > 0 {
		// Before anything is started: a run that cannot cap fails at once.
		if err := checkWritable(cgroupCPU); err != nil {
			return err
		}
	}
	if o.db == "postgres" {
		pg, pgPID, stop, err := throwawayPostgres()
		if err != nil {
			return err
		}
		defer stop()
		cfg.Postgres, cfg.Merchants = pg, o.merchants
		o.pgPID = pgPID
	}
	prefix, suffix := mode, ""
	if o.newRate > 0 {
		pct := int(math.Round(100 * o.newRate))
		prefix, suffix = fmt.Sprintf("%s-new%d", mode, pct), fmt.Sprintf("/new=%d", pct)
		cfg.NewCardholders = cmp.Or(o.newPool, o.poolFor(120))
	}
	var profile *os.File
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o700); err != nil {
			return err
		}
		cfg.DaemonArgs = map[string][]string{}
		for _, name := range cluster.Daemons {
			p, err := filepath.Abs(filepath.Join(o.profile, prefix+"-"+name+".prof"))
			if err != nil {
				return err
			}
			cfg.DaemonArgs[name] = []string{"-cpuprofile", p}
		}
		f, err := os.OpenFile(filepath.Join(o.profile, prefix+"-driver.prof"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		profile = f
	}
	t0 := time.Now()
	c, err := cluster.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	// On stdout, where tools/bench keeps it in the report's raw output.
	fmt.Printf("# %s: cluster up in %.1f s (k=%d, %d cardholders, %d new%s)\n", mode, time.Since(t0).Seconds(), o.k,
		cfg.Cardholders, c.NewCardholders(), o.storeNote())
	if profile != nil {
		// After the setup, whose key loading and address registration
		// are no part of an order's cost.
		if err := pprof.StartCPUProfile(profile); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.merchantCPU > 0 {
		pids := map[string]int{}
		for _, node := range c.MerchantNodes() {
			pids[node] = c.PID(node)
		}
		caps, err := capNodes(cgroupCPU, pids, c.MerchantNodes(), o.merchantCPU)
		if err != nil {
			return err
		}
		o.caps = caps
		// Removed whichever way the run ends; a daemon still running then
		// is moved back to the root group first.
		defer func() {
			if err := caps.remove(); err != nil {
				logf("%v", err)
			}
		}()
		fmt.Printf("# merchant nodes capped at %.2f cores each (cgroup v1 CFS quota %d µs per %d µs)\n", o.merchantCPU,
			int64(math.Round(o.merchantCPU*float64(cfsPeriod/time.Microsecond))), cfsPeriod/time.Microsecond)
	}
	if len(o.stored) == 0 {
		for _, n := range o.levels {
			name := fmt.Sprintf("BenchmarkE2E/%s/clients=%d%s", mode, n, suffix)
			if o.db != "" {
				name = fmt.Sprintf("BenchmarkStore/%s/nodes=%d/clients=%d", o.db, o.merchants, n)
				if o.merchantCPU > 0 {
					name += fmt.Sprintf("/cpu=%.2f", o.merchantCPU)
				}
			}
			if err := o.level(ctx, c, name, n); err != nil {
				return err
			}
		}
		return c.StopAll() // writes the daemons' profiles
	}
	// A real shipped order for the seeding to copy.
	if _, err := o.measureLevel(ctx, c, 1, 0, 2*time.Second); err != nil {
		return err
	}
	for _, target := range o.stored {
		if err := c.StopAll(); err != nil {
			return err
		}
		t0 := time.Now()
		n, err := c.Seed(ctx, target)
		if err != nil {
			return err
		}
		logf("%d stored orders (seeded in %s)", n, time.Since(t0).Round(100*time.Millisecond))
		if err := c.EnsureUp(ctx); err != nil {
			return err
		}
		for _, n := range o.levels {
			if err := o.level(ctx, c, fmt.Sprintf("BenchmarkScale/%s/stored=%d/clients=%d", mode, target, n), n); err != nil {
				return err
			}
		}
	}
	return c.StopAll()
}

// poolFor is how many new cardholders the levels can use at rate orders/s
// each, warm-up included, plus the drain's worth of margin.
func (o *loadOptions) poolFor(rate float64) int {
	per := o.newRate * rate * (o.warm + o.measure + time.Second).Seconds()
	return int(math.Ceil(per)) * len(o.levels)
}

// levelResult is what one measurement window amounts to.
type levelResult struct {
	orders    int // settled inside the window
	rate      float64
	p50, p99  time.Duration // first submit → first settled state, of orders submitted inside the window
	acceptP99 time.Duration
	errors    int
	rss       map[string]int64
	run       int     // orders settled over the whole level, warm-up and drain included
	newShare  float64 // of the orders placed, the share from new cardholders
	cpuBusy   float64 // share of the machine's CPU time busy in the window (every process, not only ours); 0: unknown
	cpu       string  // cpuFields over the window; "" when a daemon was down at either end
	throttled string  // with -merchant-cpu: the time the quota held the merchant nodes back in the window
}

// level measures one concurrency level and prints its line.
func (o *loadOptions) level(ctx context.Context, c *cluster.Cluster, name string, clients int) error {
	r, err := o.measureLevel(ctx, c, clients, o.warm, o.measure)
	if err != nil {
		return err
	}
	line := fmt.Sprintf("%s \t%d\t%.2f orders/s\t%.1f p50-ms\t%.1f p99-ms\t%.1f accept-p99-ms\t%d errors",
		name, r.orders, r.rate, ms64(r.p50), ms64(r.p99), ms64(r.acceptP99), r.errors)
	for _, d := range cluster.Daemons {
		line += fmt.Sprintf("\t%.1f %s-MiB", float64(r.rss[d])/(1<<20), d)
	}
	line += r.cpu + r.throttled
	line += fmt.Sprintf("\t%d run-orders", r.run)
	if r.cpuBusy > 0 {
		line += fmt.Sprintf("\t%.3f cpu-busy\t%d cores", r.cpuBusy, runtime.NumCPU())
	}
	if o.newRate > 0 {
		line += fmt.Sprintf("\t%.3f new-share", r.newShare)
	}
	fmt.Println(line)
	if r.errors > 0 {
		return fmt.Errorf("%s: %d orders failed, were refused or did not settle", name, r.errors)
	}
	return nil
}

func ms64(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// measureLevel runs clients closed-loop cardholders for warm + window, then
// lets every accepted order settle and reads the merchant's timeline.
func (o *loadOptions) measureLevel(ctx context.Context, c *cluster.Cluster, clients int, warm, window time.Duration) (levelResult, error) {
	d, err := cluster.NewDriver(c, cluster.DriverConfig{Clients: clients, Seed: o.seed, DeclineRate: 0.05, InlineRate: 0.05,
		NewRate: o.newRate, Poll: 5 * time.Millisecond})
	if err != nil {
		return levelResult{}, err
	}
	defer d.Close()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	go func() { d.Run(runCtx); close(done) }()
	var r levelResult
	t0 := time.Now().Add(warm)
	t1 := t0.Add(window)
	select {
	case <-time.After(time.Until(t0)):
	case <-ctx.Done():
		return r, ctx.Err()
	}
	busy0, total0, busyErr := cpuTimes()
	cpu0, cpuErr := sampleCPU(c, o.pgPID)
	thr0, thrErr := o.caps.throttledOrZero()
	select {
	case <-time.After(time.Until(t1)):
	case <-ctx.Done():
		return r, ctx.Err()
	}
	if busy1, total1, err := cpuTimes(); err == nil && busyErr == nil && total1 > total0 {
		r.cpuBusy = float64(busy1-busy0) / float64(total1-total0)
	}
	cpu1, err := sampleCPU(c, o.pgPID)
	if thr1, err := o.caps.throttledOrZero(); err == nil && thrErr == nil && o.caps != nil {
		r.throttled = fmt.Sprintf("\t%.2f merchant-throttled-s", (thr1 - thr0).Seconds())
	}
	r.rss = rssAll(c)
	stop()
	<-done
	settle, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := d.WaitSettled(settle); err != nil {
		return r, err
	}
	if err := d.ReadSettleTimes(ctx); err != nil {
		return r, err
	}
	var lat, acc []time.Duration
	for _, rec := range d.Records() {
		if !rec.Settled.IsZero() && !rec.Settled.Before(t0) && rec.Settled.Before(t1) {
			r.orders++
		}
		if !rec.Settled.IsZero() {
			r.run++
		}
		if rec.Submitted.Before(t0) || !rec.Submitted.Before(t1) || rec.Settled.IsZero() {
			continue
		}
		lat = append(lat, rec.Settled.Sub(rec.Submitted))
		acc = append(acc, rec.Accepted.Sub(rec.Submitted))
	}
	s := d.Summarize()
	r.errors = s.Errors()
	if s.Orders > 0 {
		r.newShare = float64(s.New) / float64(s.Orders)
	}
	r.rate = float64(r.orders) / window.Seconds()
	if cpuErr == nil && err == nil {
		r.cpu = cpuFields(cpu0, cpu1, r.orders)
	}
	r.p50, r.p99 = cluster.Percentile(lat, 50), cluster.Percentile(lat, 99)
	r.acceptP99 = cluster.Percentile(acc, 99)
	return r, nil
}
