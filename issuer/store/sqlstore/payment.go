package sqlstore

import (
	"context"
	"errors"
	"time"

	"orderseal/internal/sqldb"
	"orderseal/issuer/store"
)

// Void releases the hold of merchant's authorization for orderID once, its
// row locked: an approved amount goes back to the card's available credit.
// Voiding again, or voiding a decline (nothing was held), only returns the
// record. store.ErrNotFound when merchant has no authorization for orderID,
// store.ErrVoidAfterCapture once part of it was captured.
func (s *Store) Void(ctx context.Context, merchant, orderID string) (store.Authorization, error) {
	a, _, err := s.Operate(ctx, store.Op{Merchant: merchant, OrderID: orderID, Key: "void/" + orderID, Kind: store.OpVoid})
	return a, err
}

// Operate makes op (store.RunOp) in one transaction that first locks the
// authorization's row, so retries racing on several nodes apply it once:
// the second reads the operation the first stored under its key. The same
// key racing on two orders is refused by the payment operations' primary
// key (store.ErrIdempotencyKeyReused). A refusal after an expiry was saved
// commits the expiry.
func (s *Store) Operate(ctx context.Context, op store.Op) (a store.Authorization, replayed bool, err error) {
	var refusal error
	err = s.tx(ctx, func(tx sqldb.Tx) error {
		// On SQLite the transaction holds the write lock already, and
		// ForUpdate is nothing: no statement is needed.
		if lock := sqldb.ForUpdate(tx); lock != "" {
			if _, err := tx.Exec(ctx, `SELECT 1 FROM authorizations WHERE merchant = $1 AND order_id = $2`+lock,
				op.Merchant, op.OrderID); err != nil {
				return dbErr(err)
			}
		}
		var commit bool
		a, replayed, commit, err = store.RunOp(opTx{ctx, tx}, &op, s.now())
		if err != nil && commit {
			refusal = err
			return nil
		}
		return err
	})
	if err != nil {
		return store.Authorization{}, false, err
	}
	return a, replayed, refusal
}

// ExpireHolds releases the remainder of every authorization whose hold
// period has passed, each in its own transaction; on PostgreSQL rows
// another node is expiring (or operating on) are skipped.
func (s *Store) ExpireHolds(ctx context.Context) (int, error) {
	now := s.now().UTC()
	// Spelled as each dialect's partial index authorizations_hold is, so
	// the scan uses it.
	notVoided, claim := `voided = 0`, ``
	if s.db.Dialect() == sqldb.Postgres {
		notVoided, claim = `NOT voided`, ` FOR UPDATE SKIP LOCKED`
	}
	due, err := sqldb.Collect(ctx, s.db, func(r sqldb.Row) ([2]string, error) {
		var d [2]string
		return d, r.Scan(&d[0], &d[1])
	}, `SELECT merchant, order_id FROM authorizations
		WHERE decision = 'approved' AND `+notVoided+` AND released = 0 AND hold_until > 0 AND hold_until <= $1`, nanos(now))
	if err != nil {
		return 0, dbErr(err)
	}
	n := 0
	for _, d := range due {
		var a store.Authorization
		var back int64
		err := s.tx(ctx, func(tx sqldb.Tx) error {
			var err error
			a, err = getAuthorization(ctx, tx, d[0], d[1], claim)
			if errors.Is(err, store.ErrNotFound) {
				return nil // claimed by another node
			}
			if err != nil {
				return err
			}
			if back = store.Expire(&a, now); back == 0 {
				return nil
			}
			return opTx{ctx, tx}.Save(a, back)
		})
		if err != nil {
			return n, err
		}
		if back > 0 {
			s.log.Info("authorization expired", "merchant", a.Merchant, "order_id", a.OrderID, "card_id", a.CardID, "released", back)
			n++
		}
	}
	return n, nil
}

// opTx is store.OpTx on a transaction. Locked locks the authorization's
// row (on SQLite the transaction holds the write lock of the whole
// database).
type opTx struct {
	ctx context.Context
	tx  sqldb.Tx
}

func (t opTx) StoredOp(merchant, key string) (store.OpRecord, error) {
	var r store.OpRecord
	var at int64
	err := t.tx.QueryRow(t.ctx, `SELECT order_id, kind, amount, currency, final, at FROM payment_ops WHERE merchant = $1 AND op_key = $2`,
		merchant, key).Scan(&r.OrderID, &r.Kind, &r.Amount, &r.Currency, &r.Final, &at)
	if errors.Is(err, sqldb.ErrNoRows) {
		return store.OpRecord{}, store.ErrNotFound
	}
	if err != nil {
		return store.OpRecord{}, dbErr(err)
	}
	r.At = sqldb.FromUnixNano(at)
	return r, nil
}

func (t opTx) Locked(merchant, orderID string) (store.Authorization, error) {
	return getAuthorization(t.ctx, t.tx, merchant, orderID, sqldb.ForUpdate(t.tx))
}

func (t opTx) Save(a store.Authorization, credit int64) error {
	if credit > 0 && a.CardID != "" {
		// Capped at the limit: the CHECK keeps available within it whatever happened since.
		if _, err := t.tx.Exec(t.ctx, `UPDATE cards SET available = CASE WHEN available + $1 > credit_limit THEN credit_limit ELSE available + $1 END
			WHERE card_id = $2`, credit, a.CardID); err != nil {
			return dbErr(err)
		}
	}
	if _, err := t.tx.Exec(t.ctx, `UPDATE authorizations SET voided = $1, voided_at = $2, captured = $3, refunded = $4,
		released = $5, release_reason = $6 WHERE merchant = $7 AND order_id = $8`,
		a.Voided, sqldb.UnixNano(a.VoidedAt), a.Captured, a.Refunded, sqldb.UnixNano(a.Released), a.ReleaseReason, a.Merchant, a.OrderID); err != nil {
		return dbErr(err)
	}
	return nil
}

// Record stores op under its key. The primary key (merchant, op_key)
// refuses a key another transaction stored first, on any node, even for
// another order, whose row this transaction did not lock.
func (t opTx) Record(op *store.Op, at time.Time) error {
	if _, err := t.tx.Exec(t.ctx, `INSERT INTO payment_ops (merchant, op_key, order_id, kind, amount, currency, final, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, op.Merchant, op.Key, op.OrderID, op.Kind, op.Amount, op.Currency, op.Final, nanos(at)); err != nil {
		if t.tx.IsUnique(err) {
			return store.ErrIdempotencyKeyReused
		}
		return dbErr(err)
	}
	return nil
}
