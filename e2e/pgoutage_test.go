package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	harness "orderseal/tstest/cluster"
	"orderseal/tstest/pgtest"
)

// pgStores makes the databases of a cluster on PostgreSQL, each a fresh
// database owned by a role of its own (so the vault's index and data are
// reached under two roles with separate passwords).
func pgStores(t *testing.T) (*harness.Postgres, *pgtest.DB) {
	t.Helper()
	m := pgtest.New(t)
	return &harness.Postgres{Merchant: m.URL(), Issuer: pgtest.New(t).URL(), Carrier: pgtest.New(t).URL(),
		VaultIndex: pgtest.New(t).URL(), VaultData: pgtest.New(t).URL(), VaultBackup: pgtest.New(t).URL()}, m
}

// TestPostgresOutage is issue 17's "a daemon whose database goes away
// mid-run": every party runs on PostgreSQL and cardholders keep ordering
// while the server is stopped as a crash would stop it (pg_ctl stop -m
// immediate) and started again. While it is down every daemon's /readyz
// says not ready and the merchant answers new orders 503 problem+json,
// never 500 and never by hanging; the daemons stay up, and once the
// server is back every order acknowledged before, during or after the
// outage completes: none lost, no card debited twice (Verify reads every
// party's store).
func TestPostgresOutage(t *testing.T) {
	const (
		clients = 8
		before  = 4 * time.Second
		outage  = 8 * time.Second
		after   = 4 * time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	buildAll(t, bin)
	pg, db := pgStores(t)
	c, err := harness.Start(ctx, harness.Config{Dir: filepath.Join(dir, "cluster"), BinDir: bin, Cardholders: clients, Postgres: pg, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, err := harness.NewDriver(c, harness.DriverConfig{Clients: clients, Seed: 17, DeclineRate: 0.05, InlineRate: 0.1,
		// Clients keep ordering while their earlier orders wait for the database.
		MaxInFlight: 1000, Think: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	loadCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { d.Run(loadCtx); close(done) }()

	time.Sleep(before)
	acceptedBefore := d.Progress().Accepted
	up := db.ServerDown(t)
	down := time.Now()
	t.Logf("PostgreSQL stopped (immediate) after %d orders accepted", acceptedBefore)
	// Within a few seconds every daemon reports not ready.
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, name := range harness.Daemons {
		waitReady(t, hc, c.URL(name), false, 15*time.Second)
	}
	time.Sleep(time.Until(down.Add(outage)))
	during := d.Progress().Accepted - acceptedBefore
	causes := d.RetryCauses()
	up()
	t.Logf("PostgreSQL started again after %s; %d orders accepted meanwhile; resubmissions by cause: %v",
		time.Since(down).Round(time.Millisecond), during, causes)
	unavailable := 0
	for cause, n := range causes {
		switch {
		case strings.HasPrefix(cause, "HTTP 503 "):
			unavailable += n
		default:
			t.Errorf("%d submissions answered %q during the outage: want 503 problem+json only", n, cause)
		}
	}
	if unavailable == 0 {
		t.Error("no submission was answered 503 while the database was down")
	}
	for _, name := range harness.Daemons {
		waitReady(t, hc, c.URL(name), true, 30*time.Second)
	}
	time.Sleep(after)
	stop()
	<-done

	settle, cancelSettle := context.WithTimeout(ctx, 90*time.Second)
	defer cancelSettle()
	if err := d.WaitSettled(settle); err != nil {
		t.Error(err)
	}
	if err := c.WaitQuiet(settle, nil); err != nil {
		t.Error(err)
	}
	s := d.Summarize()
	t.Logf("%d orders accepted, states %v, %d resubmissions", s.Accepted, s.States, s.Retries)
	if s.Accepted <= acceptedBefore+during {
		t.Errorf("no order accepted after the server came back (%d in all, %d before it came back)", s.Accepted, acceptedBefore+during)
	}
	if s.Errors() != 0 {
		t.Errorf("%d errors: %d not accepted, %d failed, %d unsettled, %d declined within the limit, %d approved above it; e.g. %v",
			s.Errors(), s.NotAccepted, s.Failed, s.Unsettled, s.UnexpectedDecline, s.UnexpectedApproval, s.FirstErrors)
	}
	for _, name := range harness.Daemons {
		if n := c.Starts(name); n != 1 || !c.Up(name) {
			t.Errorf("%s started %d times, up %v: a daemon must outlive its database's outage", name, n, c.Up(name))
		}
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
	if r.Lost != 0 || r.DoubleDebits != 0 || r.Terminal != r.Orders || r.Orders < len(acked) {
		t.Errorf("verify: %s; %d acknowledged", r.Line(), len(acked))
	}
}

// waitReady polls a daemon's /readyz until it answers ready (200) or not
// ready (503 with {"ready": false}), failing the test after within.
func waitReady(t *testing.T, hc *http.Client, base string, ready bool, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		resp, err := hc.Get(base + "/readyz")
		if err != nil {
			last = err.Error()
		} else {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var body struct {
				Ready bool `json:"ready"`
			}
			jerr := json.Unmarshal(b, &body)
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
			if jerr == nil && body.Ready == ready && (resp.StatusCode == http.StatusOK) == ready &&
				(ready || resp.StatusCode == http.StatusServiceUnavailable) {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("%s/readyz: want ready=%v within %s, last answer %s", base, ready, within, last)
}
