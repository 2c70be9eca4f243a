package sqlstore

import (
	"context"
	"errors"
	"time"

	"orderseal/internal/outbox/sqlout"
	"orderseal/internal/sqldb"
	"orderseal/merchant/store"
)

// Payment returns the issuer's last word on an order's payment.
func (s *Store) Payment(ctx context.Context, id string) (store.Payment, bool, error) {
	p := store.Payment{OrderID: id}
	var hold, updated int64
	err := s.db.QueryRow(ctx, `SELECT state, captured, refunded, hold_until, updated FROM payments WHERE order_id = $1`, id).
		Scan(&p.State, &p.Captured, &p.Refunded, &hold, &updated)
	if errors.Is(err, sqldb.ErrNoRows) {
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

// RecordPayment stores p and appends detail to the order's timeline, the
// order's row locked.
func (s *Store) RecordPayment(ctx context.Context, p store.Payment, detail string) error {
	return s.db.Tx(ctx, func(tx sqldb.Tx) error {
		if _, err := orderState(ctx, tx, p.OrderID); err != nil {
			return err
		}
		now := s.now()
		if err := putPayment(ctx, tx, p.OrderID, p, now); err != nil {
			return err
		}
		if detail == "" {
			return nil
		}
		return addEvent(ctx, tx, p.OrderID, now, store.PaymentEvent, detail, nil)
	})
}

// putPayment stores p as order id's payment row.
func putPayment(ctx context.Context, tx sqldb.Tx, id string, p store.Payment, now time.Time) error {
	var hold int64
	if !p.HoldUntil.IsZero() {
		hold = p.HoldUntil.UnixMilli()
	}
	_, err := tx.Exec(ctx, `INSERT INTO payments (order_id, state, captured, refunded, hold_until, updated) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (order_id) DO UPDATE SET state = excluded.state, captured = excluded.captured, refunded = excluded.refunded,
		hold_until = excluded.hold_until, updated = excluded.updated`,
		id, p.State, p.Captured, p.Refunded, hold, now.UnixMilli())
	return err
}

// Enqueue enqueues j for order id, noting detail on its timeline when j is
// new; the order's row lock orders two nodes enqueueing the same job.
func (s *Store) Enqueue(ctx context.Context, id string, j store.Job, detail string) (queued bool, err error) {
	err = s.db.Tx(ctx, func(tx sqldb.Tx) error {
		if _, err := orderState(ctx, tx, id); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM outbox WHERE kind = $1 AND key = $2`, j.Kind, j.Key).Scan(&n); err != nil || n > 0 {
			return err
		}
		now := s.now()
		if err := sqlout.Enqueue(ctx, tx, j.Kind, j.Key, j.Payload, now); err != nil {
			return err
		}
		queued = true
		if detail == "" {
			return nil
		}
		return addEvent(ctx, tx, id, now, store.PaymentEvent, detail, nil)
	})
	return queued, err
}
