package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"orderseal/internal/cli"
	"orderseal/internal/outbox"
)

// Daemon is how every orderseal daemon serves its API (DESIGN.md §11): on
// one listener the API behind the limits, /healthz and /readyz, with a
// request id, an access log line and request metrics for every request; on
// a listener of its own (-metrics-listen), off the signed API, /metrics.
// On shutdown it turns not ready, waits -drain-delay so load balancers
// notice, then lets the requests in flight finish.
type Daemon struct {
	Logger  *slog.Logger
	Flags   cli.ServeFlags
	Files   []string               // SQLite files quick-checked every -check-every
	Ready   []Check                // stores answer, peers reachable
	Metrics []prometheus.Collector // the daemon's own metrics, besides the request metrics
	Limits  Limits
}

// Serve serves api on ln (nil: a listener on -listen) until ctx ends.
func (d Daemon) Serve(ctx context.Context, ln net.Listener, api http.Handler) error {
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", *d.Flags.Listen); err != nil {
			return err
		}
	}
	health := &Health{Checks: d.Ready, Logger: d.Logger}
	metrics := NewMetrics(d.Metrics...)

	// Draining: ctx ending turns the daemon not ready at once, and the
	// servers stop DrainDelay later.
	serveCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	go func() {
		select {
		case <-ctx.Done():
		case <-serveCtx.Done():
			return
		}
		health.Drain()
		if delay := *d.Flags.DrainDelay; delay > 0 {
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-serveCtx.Done():
			}
		}
		stop()
	}()
	go health.Watch(serveCtx, *d.Flags.CheckEvery, d.Logger, d.Files...)

	errc := make(chan error, 1)
	if addr := *d.Flags.MetricsListen; addr != "" {
		mln, err := net.Listen("tcp", addr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("-metrics-listen: %w", err)
		}
		// Written before the API's address: whoever waits for that one
		// finds this one too.
		if f := *d.Flags.MetricsAddrFile; f != "" {
			if err := writeAtomic(f, []byte(mln.Addr().String()+"\n")); err != nil {
				ln.Close()
				mln.Close()
				return err
			}
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics.Handler())
		mlog := d.Logger.With("server", "metrics")
		go func() {
			errc <- ServeListenerWith(serveCtx, mln, "", mux, mlog, Limits{MaxInFlight: 8})
		}()
	} else {
		errc <- nil
	}
	// The probes come before the limits: a daemon busy with MaxInFlight
	// requests is alive, and says so.
	h := health.Handler(Limit(api, d.Limits))
	err := serveListener(serveCtx, ln, *d.Flags.AddrFile, Observe(h, d.Logger, metrics), d.Logger, d.Limits)
	stop()
	return errors.Join(err, <-errc)
}

// StoreCheck is the readiness check of a store: ping answers.
func StoreCheck(ping func(ctx context.Context) error) Check {
	return Check{Name: "store", Run: ping}
}

// PeerCheck is the readiness check of peers: each base URL answers GET
// /healthz with 200 within the check's time.
func PeerCheck(client *http.Client, bases ...string) Check {
	if client == nil {
		client = &http.Client{Timeout: ReadyTimeout}
	}
	return Check{Name: "peers", Run: func(ctx context.Context) error {
		var errs []error
		for _, b := range bases {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, b+PathHealthz, nil)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			resp, err := client.Do(req)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs = append(errs, fmt.Errorf("%s%s answered %d", b, PathHealthz, resp.StatusCode))
			}
		}
		return errors.Join(errs...)
	}}
}

// scrapeTimeout bounds the store queries of one scrape.
const scrapeTimeout = 5 * time.Second

// Gauges is a family of gauges read from a store when scraped: Read
// returns each series' label values (as many as Labels) and value. The
// label values are states, kinds and names of queues, never data.
type Gauges struct {
	Name, Help string
	Labels     []string
	Read       func(ctx context.Context, emit func(value float64, labels ...string)) error
}

type gaugesCollector struct {
	g    Gauges
	desc *prometheus.Desc
}

// Collector makes g a prometheus.Collector.
func (g Gauges) Collector() prometheus.Collector {
	return gaugesCollector{g: g, desc: prometheus.NewDesc(g.Name, g.Help, g.Labels, nil)}
}

func (c gaugesCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c gaugesCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	err := c.g.Read(ctx, func(v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, labels...)
	})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
	}
}

// OutboxMetrics are the gauges of one daemon's outbox: jobs pending and
// dead letters, and the age of the oldest pending job, labelled queue.
func OutboxMetrics(queue string, st outbox.Store, now func() time.Time) []prometheus.Collector {
	if now == nil {
		now = time.Now
	}
	return []prometheus.Collector{
		Gauges{Name: "orderseal_outbox_jobs", Help: "Outbox jobs by state: pending (waiting to be delivered) and failed (the dead letters).",
			Labels: []string{"queue", "state"},
			Read: func(ctx context.Context, emit func(float64, ...string)) error {
				s, err := st.Count(ctx, "")
				if err != nil {
					return err
				}
				emit(float64(s.Pending), queue, outbox.StatePending)
				emit(float64(s.Failed), queue, outbox.StateFailed)
				return nil
			}}.Collector(),
		Gauges{Name: "orderseal_outbox_dead_letters", Help: "Outbox jobs given up for good, waiting for an operator to re-drive them.",
			Labels: []string{"queue"},
			Read: func(ctx context.Context, emit func(float64, ...string)) error {
				s, err := st.Count(ctx, "")
				if err != nil {
					return err
				}
				emit(float64(s.Failed), queue)
				return nil
			}}.Collector(),
		Gauges{Name: "orderseal_outbox_oldest_pending_age_seconds", Help: "Age of the oldest pending outbox job (0: none pending).",
			Labels: []string{"queue"},
			Read: func(ctx context.Context, emit func(float64, ...string)) error {
				at, ok, err := st.OldestPending(ctx)
				if err != nil {
					return err
				}
				age := 0.0
				if ok {
					age = max(0, now().Sub(at).Seconds())
				}
				emit(age, queue)
				return nil
			}}.Collector(),
	}
}

// KeyCacheMetrics count the pairwise key cache's hits and misses; stats
// reads them (hit rate: hits / (hits + misses)).
func KeyCacheMetrics(stats func() (hits, misses uint64)) []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "orderseal_pairwise_cache_hits_total",
			Help: "Pairwise keys found in the cache."}, func() float64 { h, _ := stats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "orderseal_pairwise_cache_misses_total",
			Help: "Pairwise keys derived because the cache lacked them."}, func() float64 { _, m := stats(); return float64(m) }),
	}
}
