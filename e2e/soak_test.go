package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	harness "orderseal/tstest/cluster"
)

// TestSoakShort is the short soak: 64 concurrent cardholders place orders
// against the real daemons for a few seconds (make soak runs it for ten
// minutes with tools/stress). Every order must be accepted and settle as
// designed — shipped, or declined when it holds the item priced above the
// card limit — and every party's ledger must agree afterwards.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns every daemon")
	}
	const (
		clients = 64
		load    = 12 * time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	buildAll(t, bin)
	began := time.Now()
	c, err := harness.Start(ctx, harness.Config{Dir: filepath.Join(dir, "cluster"), BinDir: bin, Cardholders: clients, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Logf("cluster up in %s", time.Since(began).Round(time.Millisecond))
	d, err := harness.NewDriver(c, harness.DriverConfig{Clients: clients, Seed: 1, DeclineRate: 0.05, InlineRate: 0.05})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	loadCtx, stop := context.WithTimeout(ctx, load)
	defer stop()
	done := make(chan struct{})
	go func() { d.Run(loadCtx); close(done) }()
	time.Sleep(load / 4) // warm-up
	start := rss(c)
	<-loadCtx.Done()
	end := rss(c)
	<-done
	settle, cancelSettle := context.WithTimeout(ctx, 60*time.Second)
	defer cancelSettle()
	if err := d.WaitSettled(settle); err != nil {
		t.Error(err)
	}
	if err := c.WaitQuiet(settle, nil); err != nil {
		t.Error(err)
	}
	if err := d.ReadSettleTimes(ctx); err != nil {
		t.Error(err)
	}
	s := d.Summarize()
	for _, name := range harness.Daemons {
		t.Logf("RSS %-8s warm start %s, end %s", name, harness.MiB(start[name]), harness.MiB(end[name]))
	}
	t.Logf("%d orders accepted in %s (%.1f/s), states %v, %d resubmissions; submit→terminal p50 %s p99 %s",
		s.Accepted, s.Span.Round(time.Millisecond), float64(s.Accepted)/max(s.Span.Seconds(), 1e-9), s.States, s.Retries,
		s.SettleP50.Round(time.Millisecond), s.SettleP99.Round(time.Millisecond))
	if s.Retries > 0 {
		t.Logf("resubmitted because: %v", d.RetryCauses())
	}
	if s.Accepted == 0 {
		t.Fatal("no order was accepted")
	}
	if s.Errors() != 0 {
		t.Errorf("%d errors: %d not accepted, %d failed, %d unsettled, %d declined within the limit, %d approved above it; e.g. %v",
			s.Errors(), s.NotAccepted, s.Failed, s.Unsettled, s.UnexpectedDecline, s.UnexpectedApproval, s.FirstErrors)
	}
	acked := d.Acked()
	d.Close()
	if err := c.StopAll(); err != nil {
		t.Error(err)
	}
	r, err := c.Verify(ctx, acked)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("verify: %s", r.Line())
	for _, p := range r.Problems {
		t.Error(p)
	}
	for _, w := range r.Warnings {
		t.Log(w)
	}
}

func rss(c *harness.Cluster) map[string]int64 {
	m := map[string]int64{}
	for _, name := range harness.Daemons {
		m[name], _ = c.RSS(name)
	}
	return m
}
