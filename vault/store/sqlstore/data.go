package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"

	"orderseal/internal/sqldb"
	"orderseal/vault/store"
)

// DataConn is how a backend reaches one data store: the part of a data
// store each backend does its own way (a SQLite file is reopened after a
// failure and when it is replaced underneath; a PostgreSQL pool
// reconnects by itself and is migrated on first contact), and the
// checkpoint's write, whose table and durability are its dialect's.
type DataConn interface {
	// DB returns the database to use now, opening it (never creating it)
	// when it must. Its errors are the Data's own: they wrap
	// store.ErrUnavailable, or are store.ErrWrongKey or a newer schema.
	DB(ctx context.Context) (sqldb.DB, error)
	// Drop is told that a statement on db failed, so the next DB reopens it.
	Drop(db sqldb.DB)
	// PutCheckpoint keeps v, the JSON of the audit checkpoint seq, unless
	// the store holds one of a higher seq, in one statement.
	PutCheckpoint(ctx context.Context, db sqldb.DB, seq int64, v []byte) error
	// Close closes the store; DB fails afterwards.
	Close() error
}

// Data is a data store (store.Data) over a backend's DataConn.
type Data struct {
	name    string // "primary" or "backup", for messages
	where   string // its path, or its DSN without the password, for messages
	conn    DataConn
	records Records
}

var _ store.Data = (*Data)(nil)

// NewData returns the data store conn reaches; name ("primary", "backup")
// and where (its path, or its DSN without the password) label its messages.
func NewData(name, where string, conn DataConn) *Data {
	return &Data{name: name, where: where, conn: conn, records: NewRecords("records")}
}

// Name is the store's name in messages.
func (d *Data) Name() string { return d.name }

// fail wraps err from a statement on db: the context's own end as it is,
// anything else as store.ErrUnavailable (or store.ErrCorrupt, for a
// conflicting record), after telling the conn db failed.
func (d *Data) fail(db sqldb.DB, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	d.conn.Drop(db)
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrCorrupt) {
		return fmt.Errorf("%s data store: %w", d.name, err)
	}
	return fmt.Errorf("%s data store %w: %w", d.name, store.ErrUnavailable, err)
}

// run runs fn on the database, failing it after an error.
func (d *Data) run(ctx context.Context, fn func(sqldb.DB) error) error {
	db, err := d.conn.DB(ctx)
	if err != nil {
		return err
	}
	if err := fn(db); err != nil {
		return d.fail(db, err)
	}
	return nil
}

// Put writes rs in one statement, so one commit.
func (d *Data) Put(ctx context.Context, rs ...store.Record) error {
	if len(rs) == 0 {
		return nil
	}
	return d.run(ctx, func(db sqldb.DB) error { return d.records.Put(ctx, db, rs...) })
}

// Get returns token's record.
func (d *Data) Get(ctx context.Context, token string) (r store.Record, ok bool, err error) {
	err = d.run(ctx, func(db sqldb.DB) (err error) {
		r, ok, err = d.records.Get(ctx, db, token)
		return err
	})
	if err != nil {
		return store.Record{}, false, err
	}
	return r, ok, nil
}

// TokensByHash returns the tokens of the records with each of hashes, oldest first.
func (d *Data) TokensByHash(ctx context.Context, hashes [][]byte) (toks map[string][]string, err error) {
	err = d.run(ctx, func(db sqldb.DB) (err error) {
		toks, err = d.records.TokensByHash(ctx, db, hashes)
		return err
	})
	if err != nil {
		return nil, err
	}
	return toks, nil
}

// Ping checks the store can be reached and queried now.
func (d *Data) Ping(ctx context.Context) error {
	_, err := d.TokensByHash(ctx, nil)
	return err
}

// Delete removes the records of tokens in one statement.
func (d *Data) Delete(ctx context.Context, tokens ...string) error {
	if len(tokens) == 0 {
		return nil
	}
	return d.run(ctx, func(db sqldb.DB) error { return d.records.Delete(ctx, db, tokens) })
}

// CreatedIn returns the tokens of records with after < created <= upTo, oldest first.
func (d *Data) CreatedIn(ctx context.Context, after, upTo int64) (toks []string, err error) {
	err = d.run(ctx, func(db sqldb.DB) (err error) {
		toks, err = d.records.CreatedIn(ctx, db, after, upTo)
		return err
	})
	if err != nil {
		return nil, err
	}
	return toks, nil
}

// DeleteOld removes token's record if it was created at or before upTo.
func (d *Data) DeleteOld(ctx context.Context, token string, upTo int64) error {
	return d.run(ctx, func(db sqldb.DB) error { return d.records.DeleteOld(ctx, db, token, upTo) })
}

// Scan yields every record in token order.
func (d *Data) Scan(ctx context.Context) iter.Seq2[store.Record, error] {
	return func(yield func(store.Record, error) bool) {
		db, err := d.conn.DB(ctx)
		if err != nil {
			yield(store.Record{}, err)
			return
		}
		rows, err := db.Query(ctx, `SELECT token, dedupe, nonce, ct, created FROM records ORDER BY token`)
		if err != nil {
			yield(store.Record{}, d.fail(db, err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			r, err := ScanRecord(rows)
			if err != nil {
				yield(store.Record{}, d.fail(db, err))
				return
			}
			if !yield(r, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(store.Record{}, d.fail(db, err))
		}
	}
}

// Close closes the store; later calls fail with store.ErrUnavailable.
func (d *Data) Close() error { return d.conn.Close() }

// PutCheckpoint keeps cp unless a checkpoint of a higher seq is there: one statement.
func (d *Data) PutCheckpoint(ctx context.Context, cp store.Checkpoint) error {
	v, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	return d.run(ctx, func(db sqldb.DB) error { return d.conn.PutCheckpoint(ctx, db, cp.Seq, v) })
}

// Checkpoint returns the audit checkpoint the store holds.
func (d *Data) Checkpoint(ctx context.Context) (cp store.Checkpoint, ok bool, err error) {
	err = d.run(ctx, func(db sqldb.DB) (err error) {
		cp, ok, err = ReadCheckpoint(ctx, db)
		return err
	})
	if err != nil {
		return store.Checkpoint{}, false, err
	}
	return cp, ok, nil
}

// Openers open one vault's stores, each in its backend's way.
type Openers struct {
	Index   func(context.Context) (store.Index, error)
	Pending func(context.Context) (store.Pending, error)
	// Data opens the data store name ("primary", "backup") at dsn.
	Data            func(ctx context.Context, name, dsn string) (*Data, error)
	Primary, Backup string // the data stores' DSNs; Backup "": none
	// AllowDegraded starts the store when a data store cannot be reached,
	// writes going to the pending table; without it Open fails.
	AllowDegraded bool
}

// Open opens a vault's stores in order (index, pending, primary, backup),
// refuses a data store that cannot be reached unless o.AllowDegraded, and
// returns the Store over them. When one fails, those opened are closed.
func Open(ctx context.Context, o Openers, opts store.Options) (*store.Store, error) {
	var b store.Backends
	ok := false
	defer func() {
		if !ok {
			for _, c := range []interface{ Close() error }{b.Primary, b.Backup, b.Pending, b.Index} {
				if c != nil {
					c.Close()
				}
			}
		}
	}()
	// Each is assigned only when opened, so the deferred Close sees no typed nils.
	idx, err := o.Index(ctx)
	if err != nil {
		return nil, err
	}
	b.Index = idx
	pend, err := o.Pending(ctx)
	if err != nil {
		return nil, err
	}
	b.Pending = pend
	for _, s := range []struct {
		name, dsn string
		to        *store.Data
	}{{"primary", o.Primary, &b.Primary}, {"backup", o.Backup, &b.Backup}} {
		if s.dsn == "" {
			continue
		}
		d, err := o.Data(ctx, s.name, s.dsn)
		if err != nil {
			return nil, err
		}
		*s.to = d
		if err := reachable(ctx, d, o.AllowDegraded); err != nil {
			return nil, err
		}
	}
	ok = true // store.New owns b from here, and closes it when it fails
	return store.New(b, opts)
}

// reachable refuses a data store that cannot be reached at start, unless
// the vault may start degraded.
func reachable(ctx context.Context, d *Data, allowDegraded bool) error {
	if allowDegraded {
		return nil
	}
	if err := d.Ping(ctx); err != nil {
		return fmt.Errorf("vault %s data store %s %w (%v)", d.name, d.where, ErrStoreUnreachable, err)
	}
	return nil
}
