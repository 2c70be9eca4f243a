// Command stress runs a whole orderseal deployment of the real binaries on
// loopback (tstest/cluster) and puts it under load:
//
//	stress chaos [-duration 90s] [-clients 12] [-seed N] [-lose 0.1] [-outage 30m] [-outage-for 20s] [-dir DIR] [-keep]
//	stress soak  [-duration 10m] [-clients 64] [-seed N] [-dir DIR] [-keep]
//	stress load  [-clients 1,8,32] [-suite os1|os2] [-null] [-new 0.5] [-stored 1000,1000000] [-cpuprofile DIR] -bin DIR
//	stress flood [-rate 20000] [-duration 60s] [-clients 8] -bin DIR
//
// chaos streams orders while it SIGKILLs the merchant, issuer, carrier and
// vault at random moments and restarts them, with a proxy in front of every
// daemon losing -lose of its answers (the request is served, the answer cut
// off); then the issuer is down for -outage on the merchant's controlled
// clock (a test build's; it passes in -outage-for) while orders keep
// coming. Then it lets everything settle and checks every party's own
// database: nothing acknowledged is lost, every order is terminal and none
// given up, the issuer's ledger matches the merchant's, no card is debited
// twice, the vault's audit chain verifies against its checkpoint. Its last
// line is "chaos: N orders, N terminal, 0 lost, 0 double debits, 0 given
// up"; it exits 1 when a check fails, the reasons printed above.
//
// soak runs steady load and reports each daemon's memory at a warm start and
// at the end, the throughput, latency percentiles and errors; it exits 1 on
// any error or when a daemon's memory grows past 1.5 × its warm-start RSS +
// 32 MiB.
//
// load measures throughput, latency and memory at several concurrencies, or
// at several numbers of stored orders, for tools/bench (load.go).
//
// flood is issue 16's flood rerun as a benchmark: one cardholder floods the
// issuer with signed requests while others place orders, against a
// baseline without the flood on the same cluster, for tools/bench
// (flood.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"orderseal/internal/tick"
	"orderseal/tstest/cluster"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var code int
	switch os.Args[1] {
	case "chaos":
		code = chaos(ctx, os.Args[2:])
	case "soak":
		code = soak(ctx, os.Args[2:])
	case "load":
		code = load(ctx, os.Args[2:])
	case "flood":
		code = flood(ctx, os.Args[2:])
	case "-h", "-help", "--help", "help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "stress: error: unknown command %q\n", os.Args[1])
		usage()
	}
	os.Exit(code)
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: stress chaos|soak|load|flood [flags]   (stress chaos -h for the flags)

  stress chaos -duration 60s -seed 7     kill and restart daemons under load, then check every ledger
  stress soak -duration 10m -clients 64  steady load: memory, throughput, latency, errors
  stress load -clients 1,8,32 -bin bin   closed-loop throughput and latency per concurrency (make bench)
  stress flood -rate 20000 -bin bin      one cardholder floods the issuer while others buy (make bench)
`)
	os.Exit(2)
}

// options are the flags both commands take.
type options struct {
	name        string
	duration    time.Duration
	clients     int
	cardholders int
	seed        uint64
	dir         string
	keep        bool
	bin         string
	race        bool
	k           int
	settle      time.Duration
	lose        float64       // chaos: share of every daemon's answers a proxy loses
	outage      time.Duration // chaos: the issuer's outage on the merchant's clock (0: none)
	outageFor   time.Duration // chaos: the real time that outage takes
	clockFile   string        // chaos: the merchant's controlled clock (set by begin)
	out         io.Writer     // stdout, and the run's log in the work directory once it exists
	logf        func(format string, a ...any)
}

func parse(name string, args []string, duration time.Duration, clients int, settle time.Duration) *options {
	o := &options{name: name}
	fs := flag.NewFlagSet("stress "+name, flag.ExitOnError)
	fs.DurationVar(&o.duration, "duration", duration, "how long orders are placed")
	fs.IntVar(&o.clients, "clients", clients, "concurrent simulated cardholders")
	fs.IntVar(&o.cardholders, "cardholders", 0, "enrolled cardholders (0: as many as clients); clients beyond share them")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of every random choice (0: from the clock; printed)")
	fs.StringVar(&o.dir, "dir", "", "work directory (default: a new one under $TMPDIR); must not hold a cluster")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (it is always kept when a check fails)")
	fs.StringVar(&o.bin, "bin", "", "directory of prebuilt binaries (default: build them into the work directory)")
	fs.BoolVar(&o.race, "race", false, "build the binaries with the race detector")
	fs.IntVar(&o.k, "k", 64, "key center k (small for speed: a coalition of k parties could rebuild the master)")
	fs.DurationVar(&o.settle, "settle", settle, "how long to wait for every order to settle after the load")
	if name == "chaos" {
		fs.Float64Var(&o.lose, "lose", 0.1, "share of every daemon's answers lost by a proxy in front of it (0: none)")
		fs.DurationVar(&o.outage, "outage", 30*time.Minute, "after the kills, the issuer is down this long on the merchant's controlled clock (0: no outage)")
		fs.DurationVar(&o.outageFor, "outage-for", 20*time.Second, "the real time the outage takes; orders keep coming meanwhile")
	}
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: stress %s [flags]\n\n", name)
		fs.PrintDefaults()
	}
	fs.Parse(args)
	if fs.NArg() > 0 || o.duration <= 0 || o.clients <= 0 {
		fs.Usage()
		os.Exit(2)
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano()%1_000_000) + 1
	}
	if o.cardholders == 0 {
		o.cardholders = o.clients
	}
	start := time.Now()
	o.out = os.Stdout
	o.logf = func(format string, a ...any) {
		fmt.Fprintf(o.out, "%s: %6.1fs  %s\n", name, time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}
	return o
}

// workDir returns the work directory and a cleanup that removes it unless
// it is to be kept.
func (o *options) workDir() (string, func(failed bool), error) {
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "orderseal-"+o.name+".")
		if err != nil {
			return "", nil, err
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "center")); err == nil {
		return "", nil, fmt.Errorf("%s already holds a cluster; choose an empty -dir", dir)
	}
	logFile, err := os.OpenFile(filepath.Join(dir, o.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", nil, err
	}
	o.out = io.MultiWriter(os.Stdout, logFile)
	return dir, func(failed bool) {
		if o.keep || failed {
			fmt.Fprintf(o.out, "%s: work directory kept: %s\n", o.name, dir)
			return
		}
		o.out = os.Stdout
		logFile.Close()
		os.RemoveAll(dir)
	}, nil
}

// run is one chaos or soak run: the work directory, the cluster, the load
// driver on it and the checks that failed so far.
type run struct {
	*options
	dir      string
	cleanup  func(failed bool)
	c        *cluster.Cluster
	d        *cluster.Driver
	began    time.Time          // when the load began
	load     context.Context    // ends when the load is to stop: after -duration, or at an interrupt
	stopLoad context.CancelFunc // ends load
	loadDone chan struct{}      // closed when the driver's clients have finished
	problems []string
}

// errNoCluster is begin's error when the cluster did not start.
var errNoCluster = errors.New("cluster did not start")

// begin makes the work directory, prints the banner there, then starts the
// cluster, a load driver on it and the load for -duration. A failure is
// reported, the work directory kept, and the error returned only for the
// caller to tell which step failed (errNoCluster).
func (o *options) begin(ctx context.Context, dc cluster.DriverConfig, banner func(dir string)) (*run, error) {
	dir, cleanup, err := o.workDir()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: error: %v\n", o.name, err)
		return nil, err
	}
	banner(dir)
	if o.outage > 0 {
		o.clockFile = filepath.Join(dir, "merchant-clock")
		if err := os.WriteFile(o.clockFile, []byte("0s\n"), 0o600); err != nil {
			cleanup(true)
			return nil, err
		}
	}
	c, err := cluster.Start(ctx, cluster.Config{Dir: dir, BinDir: o.bin, Race: o.race, K: o.k,
		Cardholders: o.cardholders, Logf: o.logf, LoseAnswers: o.lose, LoseSeed: o.seed, ClockFile: o.clockFile})
	if err != nil {
		fmt.Fprintf(o.out, "%s: FAIL: cluster did not start: %v\n", o.name, err)
		cleanup(true)
		return nil, fmt.Errorf("%w: %v", errNoCluster, err)
	}
	d, err := cluster.NewDriver(c, dc)
	if err != nil {
		fmt.Fprintf(o.out, "%s: FAIL: %v\n", o.name, err)
		cleanup(true)
		c.Close()
		return nil, err
	}
	r := &run{options: o, dir: dir, cleanup: cleanup, c: c, d: d, began: time.Now(), loadDone: make(chan struct{})}
	r.load, r.stopLoad = context.WithTimeout(ctx, o.duration+o.outageFor)
	go func() { d.Run(r.load); close(r.loadDone) }()
	return r, nil
}

// close stops the load, the driver and every daemon.
func (r *run) close() {
	r.stopLoad()
	r.d.Close()
	r.c.Close()
}

// waitLoad waits until the driver's clients have finished or ctx ends.
func (r *run) waitLoad(ctx context.Context) {
	select {
	case <-r.loadDone:
	case <-ctx.Done():
	}
}

// fail records a failed check and prints it.
func (r *run) fail(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	r.problems = append(r.problems, msg)
	fmt.Fprintf(r.out, "%s: FAIL: %s\n", r.name, msg)
}

// finish removes the work directory unless a check failed, prints the
// verdict as the last line and returns the exit code.
func (r *run) finish(verdict string) int {
	failed := len(r.problems) > 0
	r.cleanup(failed)
	fmt.Fprintf(r.out, "%s: %s\n", r.name, verdict)
	if failed {
		return 1
	}
	return 0
}

// chaos is the chaos run; it returns the exit code.
func chaos(ctx context.Context, args []string) int {
	o := parse("chaos", args, 90*time.Second, 12, 150*time.Second)
	r, err := o.begin(ctx, cluster.DriverConfig{Clients: o.clients, Seed: o.seed, DeclineRate: 0.1, InlineRate: 0.1,
		MaxInFlight: 4, Think: 20 * time.Millisecond}, func(dir string) {
		fmt.Fprintf(o.out, "chaos: seed %d, %s of chaos, %d clients, work directory %s\n", o.seed, o.duration, o.clients, dir)
		fmt.Fprintf(o.out, "chaos: reproduce the schedule with: go run ./tools/stress chaos -seed %d -duration %s -clients %d\n", o.seed, o.duration, o.clients)
	})
	if errors.Is(err, errNoCluster) {
		fmt.Fprintf(o.out, "chaos: %s\n", (&cluster.Report{}).Line())
	}
	if err != nil {
		return 1
	}
	defer r.close()
	c, d := r.c, r.d

	progressDone := make(chan struct{})
	progressCtx, stopProgress := context.WithCancel(ctx)
	go func() {
		defer close(progressDone)
		report(progressCtx, o, c, d, r.began)
	}()

	killCtx, stopKills := context.WithTimeout(r.load, o.duration)
	kills, restartFailures := killLoop(killCtx, o, c)
	stopKills()
	var out outageResult
	if o.outage > 0 && ctx.Err() == nil {
		if err := c.EnsureUp(ctx); err != nil {
			r.fail("a daemon cannot restart after the chaos: %v", err)
		}
		out = peerOutage(r.load, o, c, d)
		if out.err != nil {
			r.fail("outage: %v", out.err)
		}
	}
	if ctx.Err() != nil {
		fmt.Fprintln(o.out, "chaos: interrupted")
		stopProgress()
		<-progressDone
		r.cleanup(true)
		return 1
	}
	for _, f := range restartFailures {
		r.fail("%s", f)
	}
	if err := c.EnsureUp(ctx); err != nil {
		r.fail("a daemon cannot restart after the chaos: %v", err)
	}
	o.logf("chaos over: %d kills; every daemon up; letting the clients finish their submissions", kills)
	r.waitLoad(ctx)
	p := d.Progress()
	o.logf("load over: %d orders placed, %d accepted, %d unsettled; waiting up to %s for every order and void to settle",
		p.Submitted, p.Accepted, p.Unsettled, o.settle)
	settleCtx, cancel := context.WithTimeout(ctx, o.settle)
	err = c.WaitQuiet(settleCtx, func(unsettled, pending int) {
		o.logf("settling: %d orders unsettled, %d relay jobs pending", unsettled, pending)
	})
	cancel()
	if err != nil {
		r.fail("the cluster did not settle within %s: %v", o.settle, err)
	} else {
		o.logf("settled: every order terminal, no relay job pending")
	}
	stopProgress()
	<-progressDone
	s, rep := r.wrapUp(ctx)
	printSummary(o, s, d.RetryCauses())
	if s.NotAccepted > 0 {
		r.fail("%d orders were never accepted (the merchant refused them, or stayed unreachable for two minutes), e.g. %s",
			s.NotAccepted, strings.Join(s.FirstErrors, "; "))
	}
	if s.UnexpectedApproval > 0 {
		r.fail("%d orders above the card limit were not declined", s.UnexpectedApproval)
	}
	fmt.Fprintf(o.out, "chaos: merchant states %v; %d approvals voided; %d kills; seed %d\n", rep.States, rep.Voided, kills, o.seed)
	var answered, lost int64
	for _, p := range c.Proxies() {
		a, l := p.Counts()
		answered, lost = answered+a, lost+l
		fmt.Fprintf(o.out, "chaos: lost answers: %s\n", p)
	}
	if answered+lost > 0 {
		fmt.Fprintf(o.out, "chaos: %d of %d answers lost (%.1f %%), each resent by its sender\n", lost, answered+lost, 100*float64(lost)/float64(answered+lost))
	}
	if o.outage > 0 {
		fmt.Fprintf(o.out, "chaos: issuer outage of %s on the merchant's clock (%s real): %d orders accepted meanwhile, %d waiting on the issuer when it came back, %d authorize attempts refused meanwhile\n",
			o.outage, o.outageFor, out.acceptedDuring, out.waiting, out.refused)
	}
	pct := 100.0
	if rep.Orders > 0 {
		pct = 100 * float64(rep.Terminal) / float64(rep.Orders)
	}
	fmt.Fprintf(o.out, "chaos: %.1f %% terminal\n", pct)
	return r.finish(rep.Line())
}

// outageResult is what the simulated outage saw.
type outageResult struct {
	acceptedDuring int64 // orders the merchant accepted while the issuer was down
	waiting        int   // orders accepted and not settled when the issuer came back
	refused        int   // authorize attempts that failed meanwhile (from the merchant's outbox)
	err            error
}

// peerOutage takes the issuer down for o.outage on the merchant's
// controlled clock, which it moves on evenly over o.outageFor of real time
// while orders keep coming, then brings it back and moves the clock on past
// the relay's longest backoff (a minute, capped) so every waiting job is
// due again.
func peerOutage(ctx context.Context, o *options, c *cluster.Cluster, d *cluster.Driver) outageResult {
	var res outageResult
	setClock := func(off time.Duration) error {
		tmp := o.clockFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(off.String()+"\n"), 0o600); err != nil {
			return err
		}
		return os.Rename(tmp, o.clockFile)
	}
	before := d.Progress().Accepted
	if err := c.Kill(cluster.Issuer); err != nil {
		res.err = fmt.Errorf("taking the issuer down: %w", err)
		return res
	}
	o.logf("outage: issuer down; the merchant's clock runs %s ahead over %s", o.outage, o.outageFor)
	const steps = 200
	for i := 1; i <= steps; i++ {
		select {
		case <-ctx.Done():
		case <-time.After(o.outageFor / steps):
		}
		if err := setClock(o.outage * time.Duration(i) / steps); err != nil {
			res.err = err
			return res
		}
		if i%50 == 0 {
			o.logf("outage: merchant clock +%s", (o.outage * time.Duration(i) / steps).Round(time.Second))
		}
	}
	res.acceptedDuring = int64(d.Progress().Accepted - before)
	res.waiting = d.Progress().Unsettled
	res.refused = authorizeRetries(c)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 40*time.Second)
	err := c.Restart(rctx, cluster.Issuer)
	cancel()
	if err != nil {
		res.err = fmt.Errorf("the issuer did not come back: %w", err)
		return res
	}
	o.logf("outage over: issuer back after %s on the merchant's clock; %d orders accepted meanwhile, %d waiting", o.outage, res.acceptedDuring, res.waiting)
	for i := 1; i <= 20; i++ {
		time.Sleep(100 * time.Millisecond)
		if err := setClock(o.outage + time.Duration(i)*6*time.Second); err != nil {
			res.err = err
			return res
		}
	}
	return res
}

// authorizeRetries counts the failed attempts recorded on the merchant's
// pending authorize jobs.
func authorizeRetries(c *cluster.Cluster) int {
	n, err := c.PendingAttempts(context.Background(), "authorize")
	if err != nil {
		return -1
	}
	return n
}

// wrapUp ends a run the same way for chaos and soak: it records what the
// driver saw (settle times, orders.csv), stops every daemon with SIGTERM and
// verifies every party's ledger, recording each problem as a failed check.
func (r *run) wrapUp(ctx context.Context) (cluster.Summary, *cluster.Report) {
	o, c, d := r.options, r.c, r.d
	if err := d.ReadSettleTimes(ctx); err != nil {
		o.logf("reading settle times: %v", err)
	}
	s := d.Summarize()
	if err := d.WriteCSV(filepath.Join(r.dir, "orders.csv")); err != nil {
		o.logf("writing orders.csv: %v", err)
	}
	acked := d.Acked()
	d.Close()
	if err := c.StopAll(); err != nil {
		r.fail("a daemon did not stop gracefully: %v", err)
	}
	rep, err := c.Verify(ctx, acked)
	if err != nil {
		r.fail("verify: %v", err)
		rep = &cluster.Report{}
	}
	for _, pr := range rep.Problems {
		r.fail("%s", pr)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(o.out, "%s: WARN: %s\n", o.name, w)
	}
	return s, rep
}

// killLoop SIGKILLs one daemon (sometimes two) every 0.5–3 s until ctx
// ends, each restarted after a pause of 0.1–2 s. The schedule is drawn from
// the seed alone: a victim that is still down when its turn comes is
// skipped, not replaced. It returns the kills and the restarts that failed.
func killLoop(ctx context.Context, o *options, c *cluster.Cluster) (int, []string) {
	rng := rand.New(rand.NewPCG(o.seed, 0xc4a05))
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
		kills    int
	)
	for {
		wait := 500*time.Millisecond + time.Duration(rng.Int64N(int64(2500*time.Millisecond)))
		n := 1
		if rng.Float64() < 0.2 {
			n = 2
		}
		perm := rng.Perm(len(cluster.Daemons))
		pauses := []time.Duration{100*time.Millisecond + time.Duration(rng.Int64N(int64(1900*time.Millisecond))),
			100*time.Millisecond + time.Duration(rng.Int64N(int64(1900*time.Millisecond)))}
		select {
		case <-ctx.Done():
			wg.Wait()
			return kills, failures
		case <-time.After(wait):
		}
		for i := range n {
			name := cluster.Daemons[perm[i]]
			if !c.Up(name) {
				o.logf("%s is still down: not killed again", name)
				continue
			}
			pid := c.PID(name)
			if err := c.Kill(name); err != nil {
				o.logf("kill %s: %v", name, err)
				continue
			}
			kills++
			o.logf("SIGKILL %-8s (pid %d); restart in %.1fs", name, pid, pauses[i].Seconds())
			wg.Add(1)
			go func(name string, pause time.Duration) {
				defer wg.Done()
				time.Sleep(pause)
				var err error
				for try := range 3 {
					rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 40*time.Second)
					t0 := time.Now()
					err = c.Restart(rctx, name)
					cancel()
					if err == nil {
						o.logf("restarted %-8s (pid %d, start #%d, listening after %s)", name, c.PID(name), c.Starts(name),
							time.Since(t0).Round(10*time.Millisecond))
						return
					}
					o.logf("restart %s (try %d): %v", name, try+1, err)
					time.Sleep(time.Second)
				}
				mu.Lock()
				failures = append(failures, fmt.Sprintf("%s cannot restart: %v", name, err))
				mu.Unlock()
			}(name, pauses[i])
		}
	}
}

// report prints progress every five seconds until ctx ends.
func report(ctx context.Context, o *options, c *cluster.Cluster, d *cluster.Driver, began time.Time) {
	tick.Every(ctx, 5*time.Second, func() {
		p := d.Progress()
		var down []string
		for _, name := range cluster.Daemons {
			if !c.Up(name) {
				down = append(down, name)
			}
		}
		line := fmt.Sprintf("orders %d placed, %d accepted (%.1f/s), %d settled, %d in flight, %d resubmissions",
			p.Submitted, p.Accepted, float64(p.Accepted)/time.Since(began).Seconds(), p.Settled, p.Unsettled, p.Retries)
		if len(down) > 0 {
			line += "; down: " + strings.Join(down, ",")
		}
		if p.DBError != "" {
			line += "; last merchant db read error: " + p.DBError
		}
		o.logf("%s", line)
	})
}

func printSummary(o *options, s cluster.Summary, causes map[string]int) {
	fmt.Fprintf(o.out, "%s: %d orders accepted in %s: %.1f orders/s; states %v; %d resubmissions\n",
		o.name, s.Accepted, s.Span.Round(100*time.Millisecond), rate(s), s.States, s.Retries)
	if len(causes) > 0 {
		fmt.Fprintf(o.out, "%s: resubmitted because: %v\n", o.name, causes)
	}
	fmt.Fprintf(o.out, "%s: latency submit→202 p50 %s p99 %s; submit→terminal p50 %s p99 %s\n", o.name,
		ms(s.AcceptP50), ms(s.AcceptP99), ms(s.SettleP50), ms(s.SettleP99))
}

// rate is the accepted orders per second over the span of the run.
func rate(s cluster.Summary) float64 {
	if s.Span <= 0 {
		return 0
	}
	return float64(s.Accepted) / s.Span.Seconds()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

// RSS threshold of the soak: a daemon's resident memory at the end may be at
// most rssFactor × its warm-start RSS + rssSlack. After the warm-up the
// connection pools, SQLite page caches and the Go heap have reached their
// working size for this load; what may still come is the page caches filling
// as the databases grow (a few MiB per connection) and a GC cycle landing
// late (the heap target is twice the live heap). Memory that grows with the
// number of orders served — a leak — passes this bound within minutes.
const (
	rssFactor = 1.5
	rssSlack  = 32 << 20
)

// soak is the soak run; it returns the exit code.
func soak(ctx context.Context, args []string) int {
	o := parse("soak", args, 10*time.Minute, 64, 60*time.Second)
	r, err := o.begin(ctx, cluster.DriverConfig{Clients: o.clients, Seed: o.seed, DeclineRate: 0.05, InlineRate: 0.05}, func(dir string) {
		fmt.Fprintf(o.out, "soak: seed %d, %s at %d clients, work directory %s\n", o.seed, o.duration, o.clients, dir)
	})
	if err != nil {
		return 1
	}
	defer r.close()
	c, d := r.c, r.d

	warm := min(max(o.duration/10, 5*time.Second), 30*time.Second)
	sample := min(max(o.duration/10, 5*time.Second), time.Minute)
	var start, end map[string]int64
	select {
	case <-r.load.Done():
	case <-time.After(warm):
		start = rssAll(c)
		o.logf("RSS at warm start (after %s): %s", warm, formatRSS(start))
	}
	t := time.NewTicker(sample)
	for start != nil && r.load.Err() == nil {
		select {
		case <-r.load.Done():
		case <-t.C:
			p := d.Progress()
			o.logf("RSS %s; %d orders accepted (%.1f/s), %d resubmissions", formatRSS(rssAll(c)), p.Accepted,
				float64(p.Accepted)/time.Since(r.began).Seconds(), p.Retries)
		}
	}
	t.Stop()
	if ctx.Err() != nil {
		fmt.Fprintln(o.out, "soak: interrupted")
		r.cleanup(true)
		return 1
	}
	end = rssAll(c)
	r.waitLoad(ctx)
	settleCtx, cancel := context.WithTimeout(ctx, o.settle)
	if err := d.WaitSettled(settleCtx); err != nil {
		r.fail("orders did not settle: %v", err)
	} else if err := c.WaitQuiet(settleCtx, nil); err != nil {
		r.fail("the cluster did not settle: %v", err)
	}
	cancel()
	s, rep := r.wrapUp(ctx)

	rssOK := true
	if start == nil {
		r.fail("the run was too short to measure a warm start (warm-up %s)", warm)
		rssOK = false
	} else {
		fmt.Fprintf(o.out, "soak: RSS warm start: %s\n", formatRSS(start))
		fmt.Fprintf(o.out, "soak: RSS end:        %s\n", formatRSS(end))
		for _, name := range cluster.Daemons {
			limit := int64(rssFactor*float64(start[name])) + rssSlack
			if end[name] > limit {
				rssOK = false
				r.fail("%s grew from %s to %s, beyond %.1f × warm start + %s = %s", name, cluster.MiB(start[name]),
					cluster.MiB(end[name]), rssFactor, cluster.MiB(rssSlack), cluster.MiB(limit))
			}
		}
	}
	printSummary(o, s, d.RetryCauses())
	fmt.Fprintf(o.out, "soak: errors %d: %d not accepted, %d failed, %d unsettled, %d declined within the limit, %d approved above it (%d declines by design)\n",
		s.Errors(), s.NotAccepted, s.Failed, s.Unsettled, s.UnexpectedDecline, s.UnexpectedApproval, s.States["declined"]-s.UnexpectedDecline)
	for _, e := range s.FirstErrors {
		fmt.Fprintf(o.out, "soak:   %s\n", e)
	}
	if s.Errors() > 0 {
		r.fail("%d errors", s.Errors())
	}
	verdict := "RSS within bounds"
	if !rssOK {
		verdict = "RSS grew"
	}
	return r.finish(fmt.Sprintf("%d orders, %.1f orders/s, p50 %s, p99 %s, %d errors, %s; %s", s.Accepted, rate(s), ms(s.SettleP50), ms(s.SettleP99),
		s.Errors(), verdict, rep.Line()))
}

func rssAll(c *cluster.Cluster) map[string]int64 {
	m := map[string]int64{}
	for _, name := range cluster.Daemons {
		if n, err := c.RSS(name); err == nil {
			m[name] = n
		}
	}
	return m
}

func formatRSS(m map[string]int64) string {
	var parts []string
	for _, name := range cluster.Daemons {
		parts = append(parts, fmt.Sprintf("%s %s", name, cluster.MiB(m[name])))
	}
	return strings.Join(parts, ", ")
}
