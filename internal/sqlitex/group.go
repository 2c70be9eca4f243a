package sqlitex

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

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
	g, _ := groups.LoadOrStore(db, &group{lock: new(sync.Mutex)})
	return g.(*group)
}

// WriteLock is the lock every write to db in this process holds while it
// writes: a writer of its own (the nonce store's batches, ExecUnsynced)
// takes it, so it queues behind the group commits in Go.
func WriteLock(db *sql.DB) sync.Locker { return groupOf(db).lock }

// forget drops db's writer when db is closed.
func forget(db *sql.DB) { groups.Delete(db) }

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
	for len(batch) > 0 {
		batch = commitOnce(db, batch)
	}
}

// commitOnce runs what it can of batch in one transaction and returns the
// calls it could not run (after a failure that ended the transaction).
func commitOnce(db *sql.DB, batch []*call) (rest []*call) {
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
		c.err = tx.Commit()
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
	err = tx.Commit()
	for _, c := range ok {
		c.err = err
	}
	return nil
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
