package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	outboxsql "orderseal/internal/outbox/sqlite"
	"orderseal/merchant/store"
)

// paymentsMigration keeps the issuer's last word on each order's payment
// (DESIGN.md §6.8).
const paymentsMigration = `
CREATE TABLE payments (
	order_id   TEXT PRIMARY KEY REFERENCES orders (order_id),
	state      TEXT NOT NULL,
	captured   INTEGER NOT NULL CHECK (captured >= 0),
	refunded   INTEGER NOT NULL CHECK (refunded >= 0 AND refunded <= captured),
	hold_until INTEGER NOT NULL DEFAULT 0, -- unix ms; 0: unknown
	updated    INTEGER NOT NULL
);`

// Payment returns the issuer's last word on an order's payment.
func (s *Store) Payment(ctx context.Context, id string) (store.Payment, bool, error) {
	p := store.Payment{OrderID: id}
	var hold, updated int64
	err := s.db.QueryRowContext(ctx, `SELECT state, captured, refunded, hold_until, updated FROM payments WHERE order_id = ?`, id).
		Scan(&p.State, &p.Captured, &p.Refunded, &hold, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Payment{}, false, nil
	}
	if err != nil {
		return store.Payment{}, false, err
	}
	if hold != 0 {
		p.HoldUntil = time.UnixMilli(hold).UTC()
	}
	p.Updated = time.UnixMilli(updated).UTC()
	return p, true, nil
}

// RecordPayment stores p and appends detail to the order's timeline.
func (s *Store) RecordPayment(ctx context.Context, p store.Payment, detail string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var state string
	if err := tx.QueryRowContext(ctx, `SELECT state FROM orders WHERE order_id = ?`, p.OrderID).Scan(&state); errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	} else if err != nil {
		return err
	}
	now := s.now()
	var hold int64
	if !p.HoldUntil.IsZero() {
		hold = p.HoldUntil.UnixMilli()
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO payments (order_id, state, captured, refunded, hold_until, updated) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (order_id) DO UPDATE SET state = excluded.state, captured = excluded.captured, refunded = excluded.refunded,
		hold_until = excluded.hold_until, updated = excluded.updated`,
		p.OrderID, p.State, p.Captured, p.Refunded, hold, now.UnixMilli()); err != nil {
		return err
	}
	if detail != "" {
		if err := addEvent(ctx, tx, p.OrderID, now, store.PaymentEvent, detail, nil); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Enqueue enqueues j for order id, noting detail on its timeline when j is new.
func (s *Store) Enqueue(ctx context.Context, id string, j store.Job, detail string) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	var state string
	if err := tx.QueryRowContext(ctx, `SELECT state FROM orders WHERE order_id = ?`, id).Scan(&state); errors.Is(err, sql.ErrNoRows) {
		return false, store.ErrNotFound
	} else if err != nil {
		return false, err
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE kind = ? AND key = ?`, j.Kind, j.Key).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		return false, nil
	}
	now := s.now()
	if err := outboxsql.Enqueue(ctx, tx, j.Kind, j.Key, j.Payload, now); err != nil {
		return false, err
	}
	if detail != "" {
		if err := addEvent(ctx, tx, id, now, store.PaymentEvent, detail, nil); err != nil {
			return false, err
		}
	}
	return true, tx.Commit()
}
