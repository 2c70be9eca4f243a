//go:build linux

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"orderseal/internal/sqlitex"
	harness "orderseal/tstest/cluster"
)

// TestFullDisk is the "disks filled on tmpfs" fault of issue 22, kept as a
// test: every daemon's folder (its databases and its log) is a tmpfs of its
// own, and under load each disk in turn is filled to the last byte for a
// few seconds and then freed; the merchant's is also killed with SIGKILL
// while full and restarted once freed. Nothing acknowledged may be lost,
// nothing debited twice, every accepted order must settle, and each daemon
// must take writes again once it has room (every order settles in the
// end).
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("TestFullDisk mounts a tmpfs per daemon and must run as root (make test does, in CI)")
	}
	const (
		clients = 8
		full    = 30 * time.Second // at most, waiting for a refusal (a few seconds on a quiet machine)
		after   = 2 * time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	buildAll(t, bin)
	root := filepath.Join(dir, "cluster")
	for _, name := range harness.Daemons {
		mountTmpfs(t, filepath.Join(root, name), 64<<20)
	}
	c, err := harness.Start(ctx, harness.Config{Dir: root, BinDir: bin, Cardholders: clients, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	d, err := harness.NewDriver(c, harness.DriverConfig{Clients: clients, Seed: 22, DeclineRate: 0.05, InlineRate: 0.1,
		SubmitFor: 30 * time.Second, MaxInFlight: 64, Think: 50 * time.Millisecond,
		// A client waits at most this long for its oldest order to settle
		// before it submits again: while a daemon's disk is full nothing
		// settles, and a full merchant disk must still be offered orders
		// to refuse.
		FollowFor: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	loadCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	go func() { d.Run(loadCtx); close(done) }()

	time.Sleep(after)
	// What refusing a write looks like from outside: the merchant answers
	// the cardholder 503; the others fail the merchant's relay job to them.
	refusals := map[string]func() int{
		harness.Merchant: func() int { return causes503(d.RetryCauses()) },
		harness.Issuer:   func() int { return pendingAttempts(ctx, c, "authorize") },
		harness.Carrier:  func() int { return pendingAttempts(ctx, c, "book") },
		// The merchant asks the vault for the grant within the authorize
		// job (pending, then activated); only the issuer's disk is full
		// when the issuer's count is read, only the vault's here.
		harness.Vault: func() int { return pendingAttempts(ctx, c, "authorize") + pendingAttempts(ctx, c, "grant") },
	}
	for _, name := range harness.Daemons {
		folder := filepath.Join(root, name)
		refusedBefore := refusals[name]()
		// SQLite in WAL mode rewrites frames the WAL file already holds, so a
		// full disk stops its commits only once the WAL has to grow: start
		// each store from an empty WAL, as after a checkpoint.
		truncateWALs(t, folder)
		before := d.Progress()
		filler, err := fillDisk(folder)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		deadline := time.Now().Add(full)
		refused := 0
		for refused <= 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			refused = refusals[name]() - refusedBefore
		}
		if refused <= 0 {
			t.Errorf("%s: no write was refused in the %s its disk was full: the fault was not injected", name, full)
		}
		time.Sleep(time.Second)
		killed := name == harness.Merchant
		if killed {
			if err := c.Kill(name); err != nil {
				t.Fatal(err)
			}
		}
		during := d.Progress()
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		if killed {
			if err := c.Restart(ctx, name); err != nil {
				t.Fatalf("%s does not start again once its disk has room: %v\n%s", name, err, c.LogTail(name, 20))
			}
		}
		time.Sleep(after)
		now := d.Progress()
		t.Logf("%-8s disk full (killed: %v): %d refusals; %d orders accepted and %d settled while full, %d and %d in the %s after it was freed",
			name, killed, refused, during.Accepted-before.Accepted, during.Settled-before.Settled,
			now.Accepted-during.Accepted, now.Settled-during.Settled, after)
	}
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
	t.Logf("%d orders placed, %d accepted, %d not accepted, states %v; resubmitted because: %v",
		s.Orders, s.Accepted, s.NotAccepted, s.States, d.RetryCauses())
	if s.Failed+s.Unsettled+s.UnexpectedDecline+s.UnexpectedApproval != 0 {
		t.Errorf("%d failed, %d unsettled, %d declined within the limit, %d approved above it; e.g. %v",
			s.Failed, s.Unsettled, s.UnexpectedDecline, s.UnexpectedApproval, s.FirstErrors)
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
}

// causes503 counts the cardholders' resubmissions after a 503.
func causes503(causes map[string]int) int {
	n := 0
	for cause, k := range causes {
		if strings.Contains(cause, "HTTP 503") {
			n += k
		}
	}
	return n
}

// pendingAttempts is the failed attempts of the merchant's pending relay
// jobs of kind; 0 while its store cannot be read (it is being written, or
// its own disk is the full one).
func pendingAttempts(ctx context.Context, c *harness.Cluster, kind string) int {
	n, err := c.PendingAttempts(ctx, kind)
	if err != nil {
		return 0
	}
	return n
}

// truncateWALs checkpoints every SQLite database in dir and truncates its
// write-ahead log to nothing.
func truncateWALs(t *testing.T, dir string) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.db"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no database in %s (%v)", dir, err)
	}
	for _, p := range paths {
		db, err := sqlitex.Open(p, sqlitex.MustExist())
		if err != nil {
			t.Fatal(err)
		}
		var busy, frames, done int
		err = db.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &done)
		db.Close()
		if err != nil {
			t.Fatalf("checkpoint %s: %v", p, err)
		}
		if busy != 0 {
			t.Logf("checkpoint %s: busy, the WAL keeps %d frames", filepath.Base(p), frames)
		}
	}
}

// mountTmpfs mounts a tmpfs of size bytes on dir (created) and unmounts it
// when the test ends, before its temporary directory is removed.
func mountTmpfs(t *testing.T, dir string, size int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v (TestFullDisk needs root with CAP_SYS_ADMIN)", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

// fillDisk writes a file into dir until the file system has no byte left
// and returns its path.
func fillDisk(dir string) (string, error) {
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	defer f.Close()
	for _, chunk := range []int{1 << 20, 4 << 10, 1} {
		buf := make([]byte, chunk)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					return "", err
				}
				break
			}
		}
	}
	return path, nil
}
