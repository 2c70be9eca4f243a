package cluster

// This file writes the parties' SQLite files directly, the one place in the
// harness that does: seeding copies one shipped order's rows a million times,
// and no store API should offer bulk row copying. So Seed refuses a cluster
// whose stores are not SQLite (stress load -stored fails there), and every
// other read of a store goes through its read interface (stores.go).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sync"

	"orderseal/internal/dsn"
	"orderseal/internal/sqlitex"
)

// seedChunk is how many orders one seeding transaction writes per table.
const seedChunk = 50_000

// Seeded order ids and tracking numbers are shaped like real ones but can
// never equal one: "ord_0" + 25 digits has digits outside base32's alphabet,
// and "ZZ" + 9 digits + "ZZ" names no country.
const (
	seedOrderID  = `printf('ord_0%025d', s.i)`
	seedTracking = `printf('ZZ%09dZZ', s.i)`
	seedGrantID  = `printf('grt_0%025d', s.i)`
)

// seedTable is one table's copy of the template order's rows: cols are
// inserted from exprs, which read the template row(s) as t and the
// counter as s.i; where filters the template rows.
type seedTable struct {
	table, cols, exprs, where string
}

// Seed fills every party's database with settled orders until the merchant
// holds at least total (real orders count), as a store that has run for a
// long time would: each seeded order is a copy of one real shipped order's
// rows — the merchant's order, timeline and outbox jobs, the issuer's
// authorization, the carrier's shipment, events and outbox jobs, the
// vault's grant — under a fresh order id (and tracking number and grant
// id), so sizes, references and indexes are the real ones. The vault's
// hash-chained audit log is not copied. Every daemon must be stopped, and
// every store must be SQLite: Seed writes the files themselves.
func (c *Cluster) Seed(ctx context.Context, total int) (int, error) {
	for _, name := range Daemons {
		if c.Up(name) {
			return 0, fmt.Errorf("cluster: stop %s before seeding", name)
		}
	}
	dbs := map[string]*sql.DB{}
	defer func() {
		for _, db := range dbs {
			db.Close()
		}
	}()
	paths := map[string]string{}
	for _, name := range Daemons {
		d, err := dsn.Parse(c.DSN(name))
		if err != nil {
			return 0, err
		}
		if d.Scheme != dsn.SQLite {
			return 0, fmt.Errorf("cluster: seeding writes SQLite files directly; the %s store is %s", name, d)
		}
		paths[name] = d.Path
	}
	for name, path := range paths {
		// One connection, so the pragmas apply to every statement. No
		// journal and no sync while seeding: a seeding that fails midway
		// leaves a benchmark's database to throw away, nothing else.
		db, err := sqlitex.Open(path, sqlitex.MustExist(), sqlitex.Serialized())
		if err != nil {
			return 0, err
		}
		dbs[name] = db
		for _, p := range []string{`PRAGMA journal_mode = OFF`, `PRAGMA synchronous = OFF`, `PRAGMA cache_size = -65536`} {
			if _, err := db.ExecContext(ctx, p); err != nil {
				return 0, err
			}
		}
	}
	var have int
	if err := dbs[Merchant].QueryRowContext(ctx, `SELECT COUNT(*) FROM orders`).Scan(&have); err != nil {
		return 0, err
	}
	var next int // the highest seeded counter so far
	if err := dbs[Merchant].QueryRowContext(ctx, `SELECT COALESCE(MAX(CAST(substr(order_id, 6) AS INTEGER)), 0)
		FROM orders WHERE order_id LIKE 'ord_0%'`).Scan(&next); err != nil {
		return 0, err
	}
	if have >= total {
		return have, nil
	}
	var order, tracking, grant string
	err := dbs[Merchant].QueryRowContext(ctx, `SELECT order_id FROM orders WHERE state IN ('shipped', 'delivered')
		AND ship_token != '' AND order_id NOT LIKE 'ord_0%' ORDER BY created LIMIT 1`).Scan(&order)
	if err == nil {
		err = dbs[Carrier].QueryRowContext(ctx, `SELECT tracking FROM shipments WHERE order_id = ?`, order).Scan(&tracking)
	}
	if err == nil {
		err = dbs[Vault].QueryRowContext(ctx, `SELECT id FROM grants WHERE order_id = ?`, order).Scan(&grant)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errors.New("cluster: seeding copies a real shipped order to a vault token: place one first")
	}
	if err != nil {
		return 0, err
	}
	tables := map[string][]seedTable{
		Merchant: {
			{"orders", `order_id, cardholder, header_hash, bundle, issuer, carrier, vault, ship_token, buyer_name, buyer_email,
				items, total, currency, state, reason, auth_code, invoice, tracking, created, updated, session_id`,
				seedOrderID + `, cardholder, header_hash, bundle, issuer, carrier, vault, ship_token, buyer_name, buyer_email,
				items, total, currency, state, reason, auth_code, invoice, ` + seedTracking + `, created, updated, session_id`,
				`t.order_id = :order`},
			{"timeline", `order_id, at, state, detail, carrier_seq`, seedOrderID + `, at, state, detail, carrier_seq`, `t.order_id = :order`},
			{"outbox", `kind, key, payload, attempts, next_at, last_error, state, created`,
				`kind, replace(key, :order, ` + seedOrderID + `), payload, attempts, next_at, last_error, state, created`, `t.key = :order`},
		},
		Issuer: {{"authorizations", `merchant, order_id, header_hash, card_id, amount, currency, decision, reason, auth_code,
			decided, voided, voided_at, sealer, channel, session`,
			`merchant, ` + seedOrderID + `, header_hash, card_id, amount, currency, decision, reason, auth_code,
			decided, voided, voided_at, sealer, channel, session`, `t.order_id = :order`}},
		Carrier: {
			{"shipments", `tracking, merchant, order_id, header_hash, ship_token, token_source, invoice, recipient_name,
				recipient_phone, gift_note, status, booked, events_url`,
				seedTracking + `, merchant, ` + seedOrderID + `, header_hash, ship_token, token_source, invoice, recipient_name,
				recipient_phone, gift_note, status, booked, events_url`, `t.order_id = :order`},
			{"events", `tracking, seq, status, at, note`, seedTracking + `, seq, status, at, note`, `t.tracking = :tracking`},
			{"outbox", `kind, key, payload, attempts, next_at, last_error, state, created`,
				`kind, replace(key, :tracking, ` + seedTracking + `), payload, attempts, next_at, last_error, state, created`,
				`t.key LIKE :tracking || '/%'`},
		},
		Vault: {{"grants", `id, token, merchant, carrier, order_id, invoice, expires, max_uses, uses, created`,
			seedGrantID + `, token, merchant, carrier, ` + seedOrderID + `, invoice, expires, max_uses, uses, created`, `t.id = :grant`}},
	}
	want := total - have
	errc := make(chan error, len(tables))
	var wg sync.WaitGroup
	for name, ts := range tables {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- seedDB(ctx, dbs[name], ts, next+1, want,
				sql.Named("order", order), sql.Named("tracking", tracking), sql.Named("grant", grant))
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			return 0, fmt.Errorf("cluster: seeding: %w", err)
		}
	}
	for _, db := range dbs {
		if _, err := db.ExecContext(ctx, `PRAGMA journal_mode = WAL`); err != nil {
			return 0, err
		}
	}
	// Written without sync, the seeded gigabytes would still be draining to
	// disk during the measurement, in front of every daemon's fsync.
	for _, path := range paths {
		if err := syncFile(path); err != nil {
			return 0, err
		}
	}
	return have + want, nil
}

// seedDB writes count copies of the template rows of each table, counters
// from first on, seedChunk orders per transaction.
func seedDB(ctx context.Context, db *sql.DB, tables []seedTable, first, count int, args ...any) error {
	// Each table's template rows go to a temporary table first, so the
	// insert streams instead of materialising a read of the table it grows.
	for _, t := range tables {
		if _, err := db.ExecContext(ctx, `DROP TABLE IF EXISTS temp.tmpl_`+t.table); err != nil {
			return err
		}
		q := fmt.Sprintf(`CREATE TEMP TABLE tmpl_%s AS SELECT * FROM main.%s AS t WHERE %s`, t.table, t.table, t.where)
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("%s: %w", t.table, err)
		}
	}
	for lo := first; lo < first+count; lo += seedChunk {
		hi := min(lo+seedChunk, first+count) - 1
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, t := range tables {
			q := fmt.Sprintf(`WITH RECURSIVE s(i) AS (SELECT :lo UNION ALL SELECT i + 1 FROM s WHERE i < :hi)
				INSERT INTO main.%s (%s) SELECT %s FROM s, temp.tmpl_%s AS t`, t.table, t.cols, t.exprs, t.table)
			if _, err := tx.ExecContext(ctx, q, append([]any{sql.Named("lo", lo), sql.Named("hi", hi)}, args...)...); err != nil {
				tx.Rollback()
				return fmt.Errorf("%s: %w", t.table, err)
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
