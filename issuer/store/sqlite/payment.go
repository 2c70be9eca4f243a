package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"orderseal/issuer/store"
	"time"
)

// Void releases the hold of merchant's authorization for orderID: an
// approved amount goes back to the card's available credit, once. Voiding
// again, or voiding a decline (nothing was held), only returns the record.
// store.ErrNotFound when merchant has no authorization for orderID,
// store.ErrVoidAfterCapture once part of it was captured.
func (s *Store) Void(ctx context.Context, merchant, orderID string) (store.Authorization, error) {
	a, _, err := s.Operate(ctx, store.Op{Merchant: merchant, OrderID: orderID, Key: "void/" + orderID, Kind: store.OpVoid})
	return a, err
}

// Operate makes op (store.RunOp) in one BEGIN IMMEDIATE transaction.
func (s *Store) Operate(ctx context.Context, op store.Op) (store.Authorization, bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return store.Authorization{}, false, fmt.Errorf("issuer database: %w", err)
	}
	defer rollback(tx)
	a, replayed, commit, err := store.RunOp(opTx{ctx, tx}, &op, s.now())
	if commit {
		if cerr := tx.Commit(); cerr != nil {
			return store.Authorization{}, false, fmt.Errorf("issuer database: %w", cerr)
		}
	}
	return a, replayed, err
}

// ExpireHolds releases the remainder of every authorization whose hold
// period has passed, each in its own transaction.
func (s *Store) ExpireHolds(ctx context.Context) (int, error) {
	now := s.now().UTC()
	rows, err := s.db.QueryContext(ctx, `SELECT merchant, order_id FROM authorizations
		WHERE decision = 'approved' AND voided = 0 AND released = 0 AND hold_until > 0 AND hold_until <= ?`, nanos(now))
	if err != nil {
		return 0, fmt.Errorf("issuer database: %w", err)
	}
	var due [][2]string
	for rows.Next() {
		var m, o string
		if err := rows.Scan(&m, &o); err != nil {
			rows.Close()
			return 0, fmt.Errorf("issuer database: %w", err)
		}
		due = append(due, [2]string{m, o})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("issuer database: %w", err)
	}
	n := 0
	for _, d := range due {
		ok, err := s.expireOne(ctx, d[0], d[1], now)
		if err != nil {
			return n, err
		}
		if ok {
			n++
		}
	}
	return n, nil
}

func (s *Store) expireOne(ctx context.Context, merchant, orderID string, now time.Time) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("issuer database: %w", err)
	}
	defer rollback(tx)
	t := opTx{ctx, tx}
	a, err := t.Locked(merchant, orderID)
	if err != nil {
		return false, err
	}
	back := store.Expire(&a, now)
	if back == 0 {
		return false, nil
	}
	if err := t.Save(a, back); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("issuer database: %w", err)
	}
	s.log.Info("authorization expired", "merchant", merchant, "order_id", orderID, "card_id", a.CardID, "released", back)
	return true, nil
}

// opTx is store.OpTx on a SQLite transaction (BEGIN IMMEDIATE: the
// authorization is locked with the whole database).
type opTx struct {
	ctx context.Context
	tx  *sql.Tx
}

func (t opTx) StoredOp(merchant, key string) (store.OpRecord, error) {
	var r store.OpRecord
	var at int64
	err := t.tx.QueryRowContext(t.ctx, `SELECT order_id, kind, amount, currency, final, at FROM payment_ops WHERE merchant = ? AND op_key = ?`,
		merchant, key).Scan(&r.OrderID, &r.Kind, &r.Amount, &r.Currency, &r.Final, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return store.OpRecord{}, store.ErrNotFound
	}
	if err != nil {
		return store.OpRecord{}, fmt.Errorf("issuer database: %w", err)
	}
	r.At = fromNanos(at)
	return r, nil
}

func (t opTx) Locked(merchant, orderID string) (store.Authorization, error) {
	return getAuthorization(t.ctx, t.tx, merchant, orderID)
}

func (t opTx) Save(a store.Authorization, credit int64) error {
	if credit > 0 && a.CardID != "" {
		// MIN: the CHECK keeps available within the limit whatever happened since.
		if _, err := t.tx.ExecContext(t.ctx, `UPDATE cards SET available = MIN(credit_limit, available + ?) WHERE card_id = ?`,
			credit, a.CardID); err != nil {
			return fmt.Errorf("issuer database: %w", err)
		}
	}
	if _, err := t.tx.ExecContext(t.ctx, `UPDATE authorizations SET voided = ?, voided_at = ?, captured = ?, refunded = ?,
		released = ?, release_reason = ? WHERE merchant = ? AND order_id = ?`,
		a.Voided, nanos0(a.VoidedAt), a.Captured, a.Refunded, nanos0(a.Released), a.ReleaseReason, a.Merchant, a.OrderID); err != nil {
		return fmt.Errorf("issuer database: %w", err)
	}
	return nil
}

func (t opTx) Record(op *store.Op, at time.Time) error {
	if _, err := t.tx.ExecContext(t.ctx, `INSERT INTO payment_ops (merchant, op_key, order_id, kind, amount, currency, final, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, op.Merchant, op.Key, op.OrderID, op.Kind, op.Amount, op.Currency, op.Final, nanos(at)); err != nil {
		return fmt.Errorf("issuer database: %w", err)
	}
	return nil
}

// nanos0 is nanos, with the zero time as 0.
func nanos0(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
