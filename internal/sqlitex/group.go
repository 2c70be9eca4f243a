package sqlitex

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"orderseal/internal/sqldb"
)

// maxGroup bounds the transactions one commit carries.
const maxGroup = 64

// group is the writer of one database in this process (group commit,
// DESIGN.md §8): the transactions callers ask for while one commit is on
// its way to the disk run together in the next one, each in a savepoint of
// its own, and are answered when that one commit returns, so N concurrent
// writes cost one fsync, not N, and each is still durable before its
// caller hears of it. A transaction whose function fails rolls back to its
// savepoint, alone; a failed commit fails every transaction in it.
//
// No goroutine commits for others for long: a caller that finds no commit
// running leads one batch, then hands the lead to the first caller queued
// meanwhile.
type group struct {
	// lock is held while a batch writes, and by the database's other
	// writers in this process (WriteLock), so they queue in Go, in order,
	// instead of in SQLite's busy handler, which sleeps up to 100 ms
	// between retries.
	lock sync.Locker

	mu      sync.Mutex
	queue   []*call
	leading bool
	// batches counts the commits, calls the transactions they carried
	// (tests, metrics).
	batches, calls int64

	// riders write inside every batch's transaction (OnCommit); closers
	// run when the database is closed (OnClose). Guarded by mu.
	riders  []Rider
	closers []func()

	sizes prometheus.Observer // CommitSizes of this database
}

// Rider is a writer whose rows ride on a database's group commits
// (OnCommit). Stage writes what it holds pending inside tx, the
// transaction of a batch about to commit, and returns done, which is told
// the outcome: nil once the rows committed, the error otherwise, and the
// rider then keeps them for the next batch. A Stage that fails is undone
// alone (it runs in a savepoint of its own): the batch's callers are not
// failed for it. done nil: nothing was pending. Pending reports cheaply
// whether there is anything to stage (a batch then skips the savepoint).
type Rider interface {
	Pending() bool
	Stage(tx *sql.Tx) (done func(error), err error)
}

// OnCommit makes r ride on db's group commits in this process: every
// batch's transaction — each Tx and Exec of a Wrap of db — also carries
// what r holds pending, before it commits. A write that must reach the disk
// no later than the caller's next acknowledged write (a signed request's
// nonce before its handler's change) then costs no commit of its own.
func OnCommit(db *sql.DB, r Rider) {
	g := groupOf(db)
	g.mu.Lock()
	g.riders = append(g.riders, r)
	g.mu.Unlock()
}

// OnClose makes fn run when db is closed through Close or a Wrap's Close,
// before it closes: a rider's last rows are written then.
func OnClose(db *sql.DB, fn func()) {
	g := groupOf(db)
	g.mu.Lock()
	g.closers = append(g.closers, fn)
	g.mu.Unlock()
}

// Close runs db's OnClose functions, forgets its writer and closes it.
func Close(db *sql.DB) error {
	g := groupOf(db)
	g.mu.Lock()
	closers := g.closers
	g.closers = nil
	g.mu.Unlock()
	for _, fn := range closers {
		fn()
	}
	forget(db)
	return db.Close()
}

// call is one Tx waiting for its batch.
type call struct {
	ctx  context.Context
	fn   func(sqldb.Tx) error
	wake chan struct{} // closed when answered, or sent on to lead
	lead bool
	err  error
	pnc  any // a panic of fn, raised again in the caller
}

// groups holds the writer of every database a Wrap has served: several
// stores of one process (a daemon's and its outbox's) wrap one *sql.DB,
// and they must share its writer.
var groups sync.Map // *sql.DB → *group

// groupOf returns db's writer, made the first time it is asked for.
func groupOf(db *sql.DB) *group {
	if g, ok := groups.Load(db); ok {
		return g.(*group)
	}
	g, _ := groups.LoadOrStore(db, &group{lock: new(sync.Mutex), sizes: CommitSizes.WithLabelValues(nameOf(db))})
	return g.(*group)
}

// WriteLock is the lock every write to db in this process holds while it
// writes: a writer of its own (the nonce store's flushes, ExecUnsynced)
// takes it, so it queues behind the group commits in Go.
func WriteLock(db *sql.DB) sync.Locker { return groupOf(db).lock }

// forget drops db's writer and name when db is closed.
func forget(db *sql.DB) {
	groups.Delete(db)
	names.Delete(db)
}

// GroupStats returns how many commits db's writer made and how many
// transactions they carried.
func GroupStats(db *sql.DB) (batches, calls int64) {
	g := groupOf(db)
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.batches, g.calls
}

// tx runs fn in the next batch and returns its outcome once the batch has
// committed (or fn failed).
func (g *group) tx(ctx context.Context, db *sql.DB, fn func(sqldb.Tx) error) error {
	c := &call{ctx: ctx, fn: fn, wake: make(chan struct{}, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, c)
	if g.leading {
		g.mu.Unlock()
		<-c.wake
		if !c.lead {
			return c.answer()
		}
		g.mu.Lock()
	}
	g.leading = true
	n := min(len(g.queue), maxGroup)
	batch := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.batches++
	g.calls += int64(n)
	g.mu.Unlock()
	g.sizes.Observe(float64(n))

	g.commit(db, batch)

	g.mu.Lock()
	if len(g.queue) > 0 {
		next := g.queue[0]
		next.lead = true
		g.mu.Unlock()
		next.wake <- struct{}{}
	} else {
		g.leading = false
		g.mu.Unlock()
	}
	for _, b := range batch {
		if b != c {
			close(b.wake)
		}
	}
	return c.answer()
}

func (c *call) answer() error {
	if c.pnc != nil {
		panic(c.pnc)
	}
	return c.err
}

// commit runs batch in one transaction; calls a failure of the whole
// transaction kept from running run in the next.
func (g *group) commit(db *sql.DB, batch []*call) {
	g.lock.Lock()
	defer g.lock.Unlock()
	g.mu.Lock()
	riders := g.riders
	g.mu.Unlock()
	for len(batch) > 0 {
		batch = commitOnce(db, batch, riders)
	}
}

// commitOnce runs what it can of batch in one transaction, with what the
// riders hold pending, and returns the calls it could not run (after a
// failure that ended the transaction).
func commitOnce(db *sql.DB, batch []*call, riders []Rider) (rest []*call) {
	// The transaction outlives any one caller: a caller's context bounds
	// its own statements only.
	tx, err := db.BeginTx(context.Background(), nil)
	if err != nil {
		for _, c := range batch {
			c.err = err
		}
		return nil
	}
	t := wrappedTx{tx}
	if len(batch) == 1 {
		c := batch[0]
		if c.err = c.run(t); c.err != nil {
			tx.Rollback()
			return nil
		}
		dones := stage(tx, riders)
		c.err = tx.Commit()
		answer(dones, c.err)
		return nil
	}
	var ok []*call // ran and kept: their outcome is the commit's
	for i, c := range batch {
		if _, err := tx.Exec(`SAVEPOINT g`); err != nil {
			failAll(tx, append(ok, batch[i:]...), nil, err)
			return nil
		}
		if c.err = c.run(t); c.err != nil {
			if _, err := tx.Exec(`ROLLBACK TO g`); err != nil {
				// SQLite ended the transaction itself (an I/O
				// error, a full disk): nothing of it commits.
				return failAll(tx, ok, batch[i+1:], fmt.Errorf("%w (and the transaction with it: %w)", c.err, err))
			}
		} else {
			ok = append(ok, c)
		}
		if _, err := tx.Exec(`RELEASE g`); err != nil {
			return failAll(tx, ok, batch[i+1:], err)
		}
	}
	var dones []func(error)
	if len(ok) > 0 {
		dones = stage(tx, riders)
	}
	err = tx.Commit()
	for _, c := range ok {
		c.err = err
	}
	answer(dones, err)
	return nil
}

// stage has each rider write its pending rows into tx, each in a savepoint
// so that a rider's failure undoes its rows alone, and returns the riders'
// done functions for the commit's outcome.
func stage(tx *sql.Tx, riders []Rider) []func(error) {
	var dones []func(error)
	for _, r := range riders {
		if !r.Pending() {
			continue
		}
		if _, err := tx.Exec(`SAVEPOINT r`); err != nil {
			break // the commit will fail too; the riders keep their rows
		}
		done, err := r.Stage(tx)
		if err != nil {
			if _, rerr := tx.Exec(`ROLLBACK TO r`); rerr != nil {
				err = rerr
			}
			if done != nil {
				done(err)
			}
			if rerr := releaseRider(tx); rerr != nil {
				break
			}
			continue
		}
		if err := releaseRider(tx); err != nil {
			if done != nil {
				done(err)
			}
			break
		}
		if done != nil {
			dones = append(dones, done)
		}
	}
	return dones
}

func releaseRider(tx *sql.Tx) error {
	_, err := tx.Exec(`RELEASE r`)
	return err
}

// answer tells the riders' done functions the commit's outcome.
func answer(dones []func(error), err error) {
	for _, d := range dones {
		d(err)
	}
}

// failAll rolls tx back: the calls that ran in it fail with err, those not
// run yet go to the next transaction.
func failAll(tx *sql.Tx, ran, rest []*call, err error) []*call {
	tx.Rollback()
	for _, c := range ran {
		c.err = err
	}
	return rest
}

// run calls fn, unless its caller has gone; a panic is kept for the caller.
func (c *call) run(t wrappedTx) (err error) {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			c.pnc = p
			err = errPanicked
		}
	}()
	return c.fn(t)
}

var errPanicked = errors.New("sqlitex: transaction function panicked")
