package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"orderseal/internal/dsn"
	"orderseal/internal/signedhttp/httpsig"
	"orderseal/internal/sqlitex"
	issuerapi "orderseal/issuer/api"
	"orderseal/tstest/cluster"
)

// floodOptions are the flags of "stress flood".
type floodOptions struct {
	rate     int
	duration time.Duration
	clients  int
	conns    int
	warm     time.Duration
	k        int
	bin, dir string
	keep     bool
	profile  string
}

// flood is issue 16 item 2 rerun as a benchmark: one cardholder identity
// floods the issuer with signed requests (distinct nonces, valid MACs) at
// -rate for -duration, while closed-loop cardholders place genuine orders
// at the merchant, which relays them to the issuer. A baseline without the
// flood runs before and after it, half of -duration each, on the same
// cluster. It prints one line for tools/bench:
//
//	BenchmarkFlood/issuer/clients=8  <orders>  52.1 orders/s  55.0 base-orders/s  19873 flood-req/s  0 refused-genuine …
//
// orders/s are the genuine orders settled per second with the flood,
// base-orders/s without; offered-req/s is the rate the flood offered,
// measured: requests written, and those it would have written but for the
// issuer not reading them (backpressure); flood-req/s is the rate the
// issuer answered, which its refusal pacing holds far below; refused-genuine counts the genuine requests
// the daemons refused (relay jobs retried or given up, orders not settled
// as designed); issuer-peak-MiB and issuer-base-peak-MiB are the issuer's
// peak RSS with and without the flood; flood-nonces is how many nonces of
// the flooding identity the issuer's database holds afterwards.
func flood(ctx context.Context, args []string) int {
	o := floodOptions{}
	fs := flag.NewFlagSet("stress flood", flag.ExitOnError)
	fs.IntVar(&o.rate, "rate", 20000, "signed requests per second the flooding cardholder offers the issuer")
	fs.DurationVar(&o.duration, "duration", time.Minute, "the flood's measurement window (the baseline takes as long, half before, half after)")
	fs.IntVar(&o.clients, "clients", 8, "closed-loop cardholders placing genuine orders")
	fs.IntVar(&o.conns, "conns", 8, "connections the flood uses (pipelined)")
	fs.DurationVar(&o.warm, "warm", 2*time.Second, "load before each measurement window")
	fs.IntVar(&o.k, "k", 1024, "key center k")
	fs.StringVar(&o.bin, "bin", "", "directory of prebuilt binaries (default: build them)")
	fs.StringVar(&o.dir, "dir", "", "work directory (default: a new one under $TMPDIR, removed after)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory")
	fs.StringVar(&o.profile, "cpuprofile", "", "write the issuer's CPU profile (the whole run) to this file")
	fs.Parse(args)
	if fs.NArg() > 0 || o.rate <= 0 || o.duration <= 0 || o.clients <= 0 || o.conns <= 0 {
		fmt.Fprintln(os.Stderr, "stress flood: error: bad flags; see stress flood -h")
		return 2
	}
	if err := o.run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "stress flood: error: %v\n", err)
		return 1
	}
	return 0
}

// round is one measurement window of genuine orders.
type round struct {
	levelResult
	peakRSS int64 // the issuer's
	retried int   // relay jobs the merchant had to retry or gave up on
}

func (o *floodOptions) run(ctx context.Context) error {
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "orderseal-flood.")
		if err != nil {
			return err
		}
		dir = d
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	logf := func(format string, a ...any) { fmt.Fprintf(os.Stderr, "flood: %s\n", fmt.Sprintf(format, a...)) }
	// One cardholder more than the clients: the driver's client i buys as
	// cardholder i, so the last one floods and places no order.
	t0 := time.Now()
	cfg := cluster.Config{Dir: dir, BinDir: o.bin, K: o.k, Cardholders: o.clients + 1, Logf: logf}
	if o.profile != "" {
		p, err := filepath.Abs(o.profile)
		if err != nil {
			return err
		}
		cfg.DaemonArgs = map[string][]string{cluster.Issuer: {"-cpuprofile", p}}
	}
	c, err := cluster.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Printf("# flood: cluster up in %.1f s (k=%d, %d cardholders)\n", time.Since(t0).Seconds(), o.k, o.clients+1)
	attacker := c.Cardholders()[o.clients]
	lo := &loadOptions{seed: 1}
	measure := func(window time.Duration, flooding *floodGen) (round, error) {
		var r round
		logBefore := logSize(c.LogPath(cluster.Merchant))
		peak := sampleRSS(c, cluster.Issuer)
		if flooding != nil {
			flooding.start(ctx)
		}
		var err error
		r.levelResult, err = lo.measureLevel(ctx, c, o.clients, o.warm, window)
		if flooding != nil {
			flooding.stop()
		}
		r.peakRSS = peak()
		r.retried = countRetries(c.LogPath(cluster.Merchant), logBefore)
		return r, err
	}

	before, err := measure(o.duration/2, nil)
	if err != nil {
		return fmt.Errorf("baseline before the flood: %w", err)
	}
	logf("baseline before: %.1f orders/s, issuer peak %s", before.rate, cluster.MiB(before.peakRSS))
	gen, err := newFloodGen(c, attacker, o.rate, o.conns)
	if err != nil {
		return err
	}
	flooded, err := measure(o.duration, gen)
	if err != nil {
		return fmt.Errorf("with the flood: %w", err)
	}
	st := gen.stats()
	logf("flood: %.0f req/s answered of %.0f offered (%v), %d not sent for backpressure; %.1f orders/s, issuer peak %s",
		st.answered, st.attempted, st.statuses, st.skipped, flooded.rate, cluster.MiB(flooded.peakRSS))
	after, err := measure(o.duration/2, nil)
	if err != nil {
		return fmt.Errorf("baseline after the flood: %w", err)
	}
	logf("baseline after: %.1f orders/s, issuer peak %s", after.rate, cluster.MiB(after.peakRSS))
	nonces, err := issuerNonces(c, attacker.ID)
	if err != nil {
		return err
	}
	base := float64(before.orders+after.orders) / (o.duration / 2 * 2).Seconds()
	refused := flooded.retried + flooded.errors
	fmt.Printf("BenchmarkFlood/issuer/clients=%d \t%d\t%.2f orders/s\t%.2f base-orders/s\t%.0f flood-req/s\t%.0f offered-req/s\t%d refused-genuine\t%d base-refused-genuine\t%.1f issuer-peak-MiB\t%.1f issuer-base-peak-MiB\t%d flood-nonces\t%d flood-403\t%.0f flood-s\n",
		o.clients, flooded.orders, flooded.rate, base, st.answered, st.attempted, refused,
		before.retried+before.errors+after.retried+after.errors,
		mib(flooded.peakRSS), mib(max(before.peakRSS, after.peakRSS)), nonces, st.statuses[http.StatusForbidden], st.seconds)
	return c.StopAll()
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// sampleRSS samples name's RSS every 100 ms until the returned function is
// called, which returns the peak.
func sampleRSS(c *cluster.Cluster, name string) func() int64 {
	var peak atomic.Int64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if n, err := c.RSS(name); err == nil && n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 { close(done); <-stopped; return peak.Load() }
}

func logSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// countRetries counts the merchant's relay jobs retried or given up on in
// its log from offset on: each is a genuine request some daemon refused
// or did not answer.
func countRetries(path string, offset int64) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0
	}
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		l := sc.Bytes()
		if bytes.Contains(l, []byte(`"outbox: job will be retried"`)) || bytes.Contains(l, []byte(`"outbox: job failed for good"`)) {
			n++
		}
	}
	return n
}

// issuerNonces counts the nonces of caller the issuer's database holds,
// read-only beside the running issuer.
func issuerNonces(c *cluster.Cluster, caller string) (int, error) {
	path, err := dsn.SQLitePath(c.DSN(cluster.Issuer))
	if err != nil {
		return 0, err
	}
	db, err := sqlitex.Open(path, sqlitex.ReadOnly(), sqlitex.MaxConns(1))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int
	err = db.QueryRow(`SELECT COUNT(*) FROM signed_nonces WHERE caller = ?`, caller).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// floodGen sends signed requests of one cardholder to the issuer at a
// fixed rate over pipelined connections, as cheaply as it can so the
// machine's cores go to the daemons: each request is signed (fresh nonce,
// HMAC) and written as raw HTTP/1.1; answers are read and counted by
// status, their signatures not checked (an attacker does not care).
type floodGen struct {
	addr, host, caller, target, keyID string
	keys                              *httpsig.Keys
	rate, conns                       int

	cancel context.CancelFunc
	wg     sync.WaitGroup
	began  time.Time
	ended  time.Time

	answered, sent, skipped atomic.Int64
	mu                      sync.Mutex
	statuses                map[int]int64
}

// maxPipelined bounds the requests one connection has unanswered.
const maxPipelined = 256

func newFloodGen(c *cluster.Cluster, ch *cluster.Cardholder, rate, conns int) (*floodGen, error) {
	u, err := url.Parse(c.URL(cluster.Issuer))
	if err != nil {
		return nil, err
	}
	pw, err := ch.Key.Pairwise(cluster.IssuerID)
	if err != nil {
		return nil, err
	}
	keys := httpsig.DeriveKeys(&pw)
	return &floodGen{addr: u.Host, host: u.Host, caller: ch.ID, target: cluster.IssuerID, keyID: keys.KeyID(),
		keys: &keys, rate: rate, conns: conns, statuses: map[int]int64{}}, nil
}

func (g *floodGen) start(ctx context.Context) {
	ctx, g.cancel = context.WithCancel(ctx)
	g.began = time.Now()
	var seq atomic.Int64
	for i := range g.conns {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			share := float64(g.rate / g.conns) // the rate split over the connections, the remainder to the first
			if i < g.rate%g.conns {
				share++
			}
			for ctx.Err() == nil {
				g.conn(ctx, share, &seq)
			}
		}()
	}
}

func (g *floodGen) stop() {
	g.cancel()
	g.wg.Wait()
	g.ended = time.Now()
}

type floodStats struct {
	answered  float64 // per second
	attempted float64 // per second: sent, or not sent for backpressure
	seconds   float64
	skipped   int64
	statuses  map[int]int64
}

func (g *floodGen) stats() floodStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	secs := g.ended.Sub(g.began).Seconds()
	st := floodStats{answered: float64(g.answered.Load()) / secs, attempted: float64(g.sent.Load()+g.skipped.Load()) / secs,
		seconds: secs, skipped: g.skipped.Load(), statuses: map[int]int64{}}
	for k, v := range g.statuses {
		st.statuses[k] = v
	}
	return st
}

// conn floods over one connection at rate requests a second until ctx ends
// or the connection breaks.
func (g *floodGen) conn(ctx context.Context, rate float64, seq *atomic.Int64) {
	nc, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", g.addr)
	if err != nil {
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
		return
	}
	defer nc.Close()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	var inflight atomic.Int64
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		br := bufio.NewReaderSize(nc, 64<<10)
		for {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				nc.Close()
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			inflight.Add(-1)
			g.answered.Add(1)
			g.mu.Lock()
			g.statuses[resp.StatusCode]++
			g.mu.Unlock()
			if resp.Close {
				nc.Close()
				return
			}
		}
	}()
	bw := bufio.NewWriterSize(nc, 64<<10)
	const tick = 5 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	var owed float64
	body := []byte(`{}`)
	digest := httpsig.Digest(body)
	for {
		select {
		case <-ctx.Done():
			return
		case <-readDone:
			return
		case <-t.C:
		}
		owed += rate * tick.Seconds()
		date := httpsig.FormatDate(time.Now())
		for ; owed >= 1; owed-- {
			if inflight.Load() >= maxPipelined {
				g.skipped.Add(1)
				continue
			}
			if err := g.write(bw, seq.Add(1), date, digest, body); err != nil {
				return
			}
			inflight.Add(1)
			g.sent.Add(1)
		}
		if err := bw.Flush(); err != nil {
			return
		}
	}
}

// write writes one signed request: PUT of an authorization, which the
// issuer admits from merchants only.
func (g *floodGen) write(w *bufio.Writer, n int64, date, digest string, body []byte) error {
	nonce, err := httpsig.NewNonce()
	if err != nil {
		return err
	}
	target := issuerapi.PathAuthorizations + "flood-" + strconv.FormatInt(n, 10)
	f := httpsig.RequestFields{Method: http.MethodPut, RequestTarget: target, Date: date, Nonce: nonce,
		ContentSHA256: digest, KeyID: g.keyID, Caller: g.caller, Target: g.target}
	msg, err := f.Message()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", target, g.host, len(body))
	for _, h := range [][2]string{{httpsig.HeaderIdentity, f.Caller}, {httpsig.HeaderTarget, f.Target}, {httpsig.HeaderDate, f.Date},
		{httpsig.HeaderNonce, f.Nonce}, {httpsig.HeaderContentSHA256, f.ContentSHA256}, {httpsig.HeaderKeyID, f.KeyID},
		{httpsig.HeaderSignature, g.keys.Sign(msg)}} {
		fmt.Fprintf(w, "%s: %s\r\n", h[0], h[1])
	}
	w.WriteString("\r\n")
	_, err = w.Write(body)
	return err
}
