package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"orderseal/internal/outbox"
	"orderseal/internal/outbox/outboxtest"
	"orderseal/internal/outbox/postgres"
	"orderseal/internal/outbox/sqlout"
	"orderseal/internal/pgdb"
	"orderseal/internal/sqldb"
	"orderseal/tstest/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// open returns a fresh database holding only the outbox table.
func open(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := pgdb.OpenMigrated(context.Background(), pgtest.New(t).URL(), 0, "outbox", []string{postgres.Migration})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// TestConformance runs the suite with jobs enqueued both ways a daemon
// does: on its pgx transaction (Enqueue) and in a sqldb transaction
// (sqlout.Enqueue).
func TestConformance(t *testing.T) {
	t.Run("driver", func(t *testing.T) {
		outboxtest.Run(t, func(t *testing.T) outboxtest.Backend {
			pool := open(t)
			return outboxtest.Backend{Store: postgres.New(pool), DB: pgdb.Wrap(pool),
				Enqueue: func(ctx context.Context, kind, key string, payload []byte, now time.Time) error {
					return postgres.Enqueue(ctx, pool, kind, key, payload, now)
				}}
		})
	})
	t.Run("sqldb", func(t *testing.T) {
		outboxtest.Run(t, func(t *testing.T) outboxtest.Backend {
			pool := open(t)
			w := pgdb.Wrap(pool)
			return outboxtest.Backend{Store: postgres.New(pool), DB: w,
				Enqueue: func(ctx context.Context, kind, key string, payload []byte, now time.Time) error {
					return w.Tx(ctx, func(tx sqldb.Tx) error { return sqlout.Enqueue(ctx, tx, kind, key, payload, now) })
				}}
		})
	})
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func ids(jobs []outbox.Job) map[int64]bool {
	m := map[int64]bool{}
	for _, j := range jobs {
		m[j.ID] = true
	}
	return m
}

// TestLease: a job one node claimed is not claimed by another until its
// lease expires (a killed node's jobs are then taken over); the first
// node's claims renew its own; a node whose job was taken over cannot
// reschedule it.
func TestLease(t *testing.T) {
	ctx := context.Background()
	pool := open(t)
	const lease = time.Minute
	a := postgres.New(pool, postgres.Node("a"), postgres.Lease(lease))
	b := postgres.New(pool, postgres.Node("b"), postgres.Lease(lease))
	for i := range 10 {
		if err := postgres.Enqueue(ctx, pool, "send", fmt.Sprint(i), nil, t0); err != nil {
			t.Fatal(err)
		}
	}
	claim := func(s *postgres.Store, now time.Time, limit int) []outbox.Job {
		t.Helper()
		jobs, err := s.Claim(ctx, now, limit)
		if err != nil {
			t.Fatal(err)
		}
		return jobs
	}
	byA := claim(a, t0, 4)
	steps := []struct {
		name        string
		node        *postgres.Store
		at          time.Duration
		want, fromA int // jobs claimed, and how many of them a claimed first
	}{
		{"b takes only what a does not hold", b, 0, 6, 0},
		{"a renews its own", a, 30 * time.Second, 4, 4},
		{"b renews its own, not a's", b, lease + time.Second, 6, 0},
		{"a's lease expired: b takes its jobs over", b, 30*time.Second + lease, 10, 4},
		{"and a can no longer claim them", a, 30*time.Second + lease, 0, 0},
	}
	for _, st := range steps {
		got := claim(st.node, t0.Add(st.at), 100)
		fromA := 0
		for id := range ids(got) {
			if ids(byA)[id] {
				fromA++
			}
		}
		if len(got) != st.want || fromA != st.fromA {
			t.Fatalf("%s: claimed %d, %d of them a's; want %d and %d", st.name, len(got), fromA, st.want, st.fromA)
		}
	}
	// a, back from the dead, reports a failed attempt of a job b now holds:
	// nothing changes; b's own outcome counts.
	j := byA[0]
	if err := a.Retry(ctx, j.ID, 1, "late", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	es, err := a.List(ctx, outbox.StatePending)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.ID == j.ID && (e.Attempts != 0 || e.LastError != "") {
			t.Fatalf("a's late retry changed b's job: %+v", e)
		}
	}
	if err := b.Retry(ctx, j.ID, 1, "peer down", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// Released by the retry: due again for any node at its next time, when
	// every other lease has long expired; due last.
	if got := claim(a, t0.Add(time.Hour), 100); len(got) != 10 || got[9].ID != j.ID || got[9].Attempts != 1 {
		t.Fatalf("after b's retry a claims %+v, want all 10, job %d last with 1 attempt", got, j.ID)
	}
}

// TestConcurrentNodes: four nodes, each with a Runner, share 300 jobs;
// every job is delivered, and by one node only.
func TestConcurrentNodes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool := open(t)
	const jobs = 300
	for i := range jobs {
		if err := postgres.Enqueue(ctx, pool, "send", fmt.Sprint(i), nil, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	delivered := map[string][]string{}
	var wg sync.WaitGroup
	for n := range 4 {
		node := fmt.Sprintf("n%d", n)
		r := &outbox.Runner{Store: postgres.New(pool, postgres.Node(node)), Poll: 10 * time.Millisecond,
			Handlers: map[string]outbox.Handler{"send": func(_ context.Context, j outbox.Job) error {
				mu.Lock()
				delivered[j.Key] = append(delivered[j.Key], node)
				mu.Unlock()
				time.Sleep(time.Millisecond)
				return nil
			}}}
		wg.Add(1)
		go func() { defer wg.Done(); r.Run(ctx) }()
	}
	st := postgres.New(pool)
	deadline := time.Now().Add(time.Minute)
	for {
		s, err := st.Count(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if s.Done == jobs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	nodes := map[string]int{}
	for k, by := range delivered {
		if len(by) != 1 {
			t.Errorf("job %s delivered by %v", k, by)
		}
		nodes[by[0]]++
	}
	if len(delivered) != jobs {
		t.Fatalf("%d jobs delivered, want %d", len(delivered), jobs)
	}
	t.Logf("jobs per node: %v", nodes)
}

// TestBusyNodeLeavesJobsToOthers: a node claims no more jobs than it has
// free workers, so no job waits out its lease behind the node's other jobs
// and is taken, and run again, by another node. With two one-worker nodes,
// a 1 s lease and 300 ms jobs, a node that claimed all eight at once would
// still hold the last ones queued when their leases ran out.
func TestBusyNodeLeavesJobsToOthers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool := open(t)
	const jobs = 8
	for i := range jobs {
		if err := postgres.Enqueue(ctx, pool, "send", fmt.Sprint(i), nil, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	runs := map[string][]string{}
	var wg sync.WaitGroup
	for _, node := range []string{"a", "b"} {
		r := &outbox.Runner{Store: postgres.New(pool, postgres.Node(node), postgres.Lease(time.Second)),
			Workers: 1, Poll: 20 * time.Millisecond,
			Handlers: map[string]outbox.Handler{"send": func(_ context.Context, j outbox.Job) error {
				mu.Lock()
				runs[j.Key] = append(runs[j.Key], node)
				mu.Unlock()
				time.Sleep(300 * time.Millisecond)
				return nil
			}}}
		wg.Add(1)
		go func() { defer wg.Done(); r.Run(ctx) }()
	}
	st := postgres.New(pool)
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := st.Count(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if s.Done == jobs {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	for k, by := range runs {
		if len(by) != 1 {
			t.Errorf("job %s ran %d times, on %v", k, len(by), by)
		}
	}
	if len(runs) != jobs {
		t.Fatalf("%d jobs ran, want %d", len(runs), jobs)
	}
}

// TestEnqueueRollsBack: a job enqueued in a transaction that rolls back is
// not there; one in a committed transaction is — on a pgx.Tx and in a
// sqldb transaction alike.
func TestEnqueueRollsBack(t *testing.T) {
	ctx := context.Background()
	pool := open(t)
	st := postgres.New(pool)
	w := pgdb.Wrap(pool)
	for _, commit := range []bool{false, true} {
		tx, err := pool.BeginTx(ctx, pgx.TxOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := postgres.Enqueue(ctx, tx, "send", "k", nil, time.Now()); err != nil {
			t.Fatal(err)
		}
		if commit {
			err = tx.Commit(ctx)
		} else {
			err = tx.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		// The same in a sqldb transaction (sqlout.Enqueue).
		errRollBack := sqldb.ErrNoRows // any error rolls the transaction back
		err = w.Tx(ctx, func(tx sqldb.Tx) error {
			if err := sqlout.Enqueue(ctx, tx, "send", "k2", nil, time.Now()); err != nil {
				return err
			}
			if !commit {
				return errRollBack
			}
			return nil
		})
		if (err != nil) == commit {
			t.Fatalf("commit %v: sqldb transaction: %v", commit, err)
		}
		s, err := st.Count(ctx, "")
		if want := map[bool]int{false: 0, true: 2}[commit]; err != nil || s.Pending != want {
			t.Fatalf("commit %v: %+v %v, want %d pending", commit, s, err, want)
		}
	}
}
