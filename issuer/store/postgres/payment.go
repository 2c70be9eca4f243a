package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"orderseal/issuer/store"
)

// Void releases the hold of merchant's authorization for orderID once, its
// row locked: an approved amount goes back to the card's available credit.
// store.ErrVoidAfterCapture once part of it was captured.
func (s *Store) Void(ctx context.Context, merchant, orderID string) (store.Authorization, error) {
	a, _, err := s.Operate(ctx, store.Op{Merchant: merchant, OrderID: orderID, Key: "void/" + orderID, Kind: store.OpVoid})
	return a, err
}

// Operate makes op (store.RunOp) in one transaction that first locks the
// authorization's row, so retries racing on several nodes apply it once.
func (s *Store) Operate(ctx context.Context, op store.Op) (a store.Authorization, replayed bool, err error) {
	var refusal error
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM authorizations WHERE merchant = $1 AND order_id = $2 FOR UPDATE`,
			op.Merchant, op.OrderID); err != nil {
			return err
		}
		var commit bool
		a, replayed, commit, err = store.RunOp(opTx{ctx, tx}, &op, s.now())
		if err != nil && commit {
			refusal = err
			return nil
		}
		return err
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "payment_ops_pkey" {
		return store.Authorization{}, false, store.ErrIdempotencyKeyReused
	}
	if err != nil {
		return store.Authorization{}, false, dbErr(err)
	}
	return a, replayed, refusal
}

// ExpireHolds releases the remainder of every authorization whose hold
// period has passed, each in its own transaction; rows another node is
// expiring are skipped.
func (s *Store) ExpireHolds(ctx context.Context) (int, error) {
	now := s.now().UTC()
	rows, err := s.pool.Query(ctx, `SELECT merchant, order_id FROM authorizations
		WHERE decision = 'approved' AND NOT voided AND released = 0 AND hold_until > 0 AND hold_until <= $1`, nanos(now))
	if err != nil {
		return 0, fmt.Errorf("issuer database: %w", err)
	}
	due, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([2]string, error) {
		var d [2]string
		return d, r.Scan(&d[0], &d[1])
	})
	if err != nil {
		return 0, fmt.Errorf("issuer database: %w", err)
	}
	n := 0
	for _, d := range due {
		var expired bool
		err := s.tx(ctx, func(tx pgx.Tx) error {
			t := opTx{ctx, tx}
			a, err := getAuthorization(ctx, tx, d[0], d[1], "FOR UPDATE SKIP LOCKED")
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			back := store.Expire(&a, now)
			if back == 0 {
				return nil
			}
			expired = true
			s.log.Info("authorization expired", "merchant", a.Merchant, "order_id", a.OrderID, "card_id", a.CardID, "released", back)
			return t.Save(a, back)
		})
		if err != nil {
			return n, dbErr(err)
		}
		if expired {
			n++
		}
	}
	return n, nil
}

// opTx is store.OpTx on a PostgreSQL transaction.
type opTx struct {
	ctx context.Context
	tx  pgx.Tx
}

func (t opTx) StoredOp(merchant, key string) (store.OpRecord, error) {
	var r store.OpRecord
	var at int64
	err := t.tx.QueryRow(t.ctx, `SELECT order_id, kind, amount, currency, final, at FROM payment_ops WHERE merchant = $1 AND op_key = $2`,
		merchant, key).Scan(&r.OrderID, &r.Kind, &r.Amount, &r.Currency, &r.Final, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.OpRecord{}, store.ErrNotFound
	}
	if err != nil {
		return store.OpRecord{}, err
	}
	r.At = fromNanos(at)
	return r, nil
}

func (t opTx) Locked(merchant, orderID string) (store.Authorization, error) {
	return getAuthorization(t.ctx, t.tx, merchant, orderID, "FOR UPDATE")
}

func (t opTx) Save(a store.Authorization, credit int64) error {
	if credit > 0 && a.CardID != "" {
		// LEAST: the CHECK keeps available within the limit whatever happened since.
		if _, err := t.tx.Exec(t.ctx, `UPDATE cards SET available = LEAST(credit_limit, available + $1) WHERE card_id = $2`,
			credit, a.CardID); err != nil {
			return err
		}
	}
	_, err := t.tx.Exec(t.ctx, `UPDATE authorizations SET voided = $1, voided_at = $2, captured = $3, refunded = $4,
		released = $5, release_reason = $6 WHERE merchant = $7 AND order_id = $8`,
		a.Voided, nanos0(a.VoidedAt), a.Captured, a.Refunded, nanos0(a.Released), a.ReleaseReason, a.Merchant, a.OrderID)
	return err
}

func (t opTx) Record(op *store.Op, at time.Time) error {
	_, err := t.tx.Exec(t.ctx, `INSERT INTO payment_ops (merchant, op_key, order_id, kind, amount, currency, final, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, op.Merchant, op.Key, op.OrderID, op.Kind, op.Amount, op.Currency, op.Final, nanos(at))
	return err
}

// nanos0 is nanos, with the zero time as 0.
func nanos0(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
