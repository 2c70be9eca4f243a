// Package sqlstore is the issuer's store (issuer/store) written once
// against internal/sqldb, for every SQL backend: the cards, with their
// numbers as store.SealedNumber only, the authorizations and the payment
// lifecycle. A backend package (issuer/store/sqlite, issuer/store/postgres)
// opens and migrates its database, wraps it (sqlitex.Wrap, pgdb.Wrap) and
// hands it to New; what its dialect alone has (the replay memory of signed
// requests, read-only sessions) stays there.
//
// Several issuer nodes may share one PostgreSQL database: an authorization
// locks its (merchant, order id) with an advisory lock (Tx.Lock) and its
// card's row (ForUpdate), and a payment operation its authorization's row,
// so a retry arriving at two nodes at once debits once and two orders on
// one card never overspend it. On SQLite the same statements run in
// transactions that exclude each other (BEGIN IMMEDIATE on one connection),
// where those locks are no-ops. Every idempotency rule is a constraint of
// the database (the authorizations' and payment operations' primary keys,
// the cards' unique lookup hash), never a check of one process.
package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"orderseal/internal/sqldb"
	"orderseal/issuer/store"
)

// Store is the issuer's store on a SQL database. It is safe for concurrent
// use. It has no replay memory of its own: the backend that embeds it adds
// Nonces to make it a store.Store.
type Store struct {
	db   sqldb.DB
	keys *store.SubKeys // nil without a card key
	now  func() time.Time
	log  *slog.Logger
	// seq orders the rows of one instant in insertion order: SQLite's
	// rowid, PostgreSQL's identity column seq.
	seq string
}

// New returns the store on db, a database its backend has migrated to
// the issuer's schema. With opt.CardKey it checks the key against the one
// the database was written under (store.ErrWrongKey), recording it on first
// use unless opt.ReadOnly. It does not close db when it fails.
func New(ctx context.Context, db sqldb.DB, opt store.Options) (*Store, error) {
	s := &Store{db: db, now: opt.Now, log: opt.Logger, seq: "rowid"}
	if db.Dialect() == sqldb.Postgres {
		s.seq = "seq"
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if opt.CardKey != nil {
		var err error
		if s.keys, err = store.DeriveSubKeys(opt.CardKey); err != nil {
			return nil, err
		}
		if err := s.checkKey(ctx, opt.ReadOnly); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// checkKey records the card key's check on first use (once, whichever node
// or process is first: the row's key decides) and compares it afterwards.
func (s *Store) checkKey(ctx context.Context, readOnly bool) error {
	if !readOnly {
		if _, err := s.db.Exec(ctx, `INSERT INTO card_key (id, check_mac) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, s.keys.KeyCheck()); err != nil {
			return dbErr(err)
		}
	}
	var have []byte
	err := s.db.QueryRow(ctx, `SELECT check_mac FROM card_key WHERE id = 1`).Scan(&have)
	switch {
	case errors.Is(err, sqldb.ErrNoRows) && readOnly:
		return nil // nothing sealed under any key yet
	case err != nil:
		return dbErr(err)
	}
	return s.keys.CheckKey(have)
}

// Close closes the database. Operations after Close fail.
func (s *Store) Close() error { return s.db.Close() }

// Ping reads the database once.
func (s *Store) Ping(ctx context.Context) error { return s.db.Ping(ctx) }

// CVC returns the verification code of a card (store.CVC under this store's card key).
func (s *Store) CVC(number, expiry string) (string, error) { return store.CVC(s.keys, number, expiry) }

// tx runs fn in one transaction (sqldb.DB.Tx), committed when fn returns
// nil. fn's own error comes back as it is; failing to begin or commit is a
// database error.
func (s *Store) tx(ctx context.Context, fn func(sqldb.Tx) error) error {
	var ferr error
	err := s.db.Tx(ctx, func(tx sqldb.Tx) error {
		ferr = fn(tx)
		return ferr
	})
	switch {
	case ferr != nil:
		return ferr
	case err != nil:
		return dbErr(err)
	}
	return nil
}

// dbErr is a failure of the database, as every backend reports one.
func dbErr(err error) error { return fmt.Errorf("issuer database: %w", err) }

func nanos(t time.Time) int64 { return t.UnixNano() }
