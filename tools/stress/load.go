package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"orderseal/suite/null"
	"orderseal/tstest/cluster"
)

// loadOptions are the flags of "stress load".
type loadOptions struct {
	levels  []int
	stored  []int
	warm    time.Duration
	measure time.Duration
	profile string
	seed    uint64
	k       int
	bin     string
	dir     string
	keep    bool
	null    bool
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
// The mode is "null" under -null: the key center issues keys of the null
// relay suite (package suite/null: the same hops and durable writes, no
// sealing, no derivation), which every process refuses unless
// ORDERSEAL_NULL_RELAY=benchmark-only is set. With -stored, the cluster is first filled to each
// number of stored orders in turn (cluster.Seed) and the lines are named
// BenchmarkScale/<mode>/stored=N/clients=C.
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
	fs.Parse(args)
	var err error
	if o.levels, err = parseInts(*levels); err == nil {
		o.stored, err = parseInts(*stored)
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
	mode, suiteName := "sealed", ""
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
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o700); err != nil {
			return err
		}
		cfg.DaemonArgs = map[string][]string{}
		for _, name := range cluster.Daemons {
			p, err := filepath.Abs(filepath.Join(o.profile, mode+"-"+name+".prof"))
			if err != nil {
				return err
			}
			cfg.DaemonArgs[name] = []string{"-cpuprofile", p}
		}
		f, err := os.OpenFile(filepath.Join(o.profile, mode+"-driver.prof"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	c, err := cluster.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	if len(o.stored) == 0 {
		for _, n := range o.levels {
			if err := o.level(ctx, c, fmt.Sprintf("BenchmarkE2E/%s/clients=%d", mode, n), n); err != nil {
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

// levelResult is what one measurement window amounts to.
type levelResult struct {
	orders    int // settled inside the window
	rate      float64
	p50, p99  time.Duration // first submit → first settled state, of orders submitted inside the window
	acceptP99 time.Duration
	errors    int
	rss       map[string]int64
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
		Poll: 5 * time.Millisecond})
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
	case <-time.After(time.Until(t1)):
	case <-ctx.Done():
		return r, ctx.Err()
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
		if rec.Submitted.Before(t0) || !rec.Submitted.Before(t1) || rec.Settled.IsZero() {
			continue
		}
		lat = append(lat, rec.Settled.Sub(rec.Submitted))
		acc = append(acc, rec.Accepted.Sub(rec.Submitted))
	}
	s := d.Summarize()
	r.errors = s.Errors()
	r.rate = float64(r.orders) / window.Seconds()
	r.p50, r.p99 = cluster.Percentile(lat, 50), cluster.Percentile(lat, 99)
	r.acceptP99 = cluster.Percentile(acc, 99)
	return r, nil
}
