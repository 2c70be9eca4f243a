package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"orderseal/issuer/api"
	"orderseal/issuer/store"
)

// queryer is a *sql.DB or *sql.Tx.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Authorize decides req and records the answer, all in one BEGIN IMMEDIATE
// transaction. When (merchant, order id) was answered before, the stored
// answer comes back unchanged with replayed = true if the header hash is the
// same (a retry: no second debit), and store.ErrOrderIDReused if it is not.
// Declines are stored like approvals, so a retry gets the same decline.
func (s *Store) Authorize(ctx context.Context, req store.AuthRequest) (a store.Authorization, replayed bool, err error) {
	lookup, err := store.PrepareAuthorize(s.keys, &req)
	if err != nil {
		return store.Authorization{}, false, err
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return store.Authorization{}, false, fmt.Errorf("issuer database: %w", err)
	}
	defer rollback(tx)
	prev, err := getAuthorization(ctx, tx, req.Merchant, req.OrderID)
	switch {
	case err == nil:
		a, err := store.Replay(prev, &req)
		return a, err == nil, err
	case !errors.Is(err, store.ErrNotFound):
		return store.Authorization{}, false, err
	}

	var card *store.Card
	if lookup != nil {
		if card, err = s.cardByLookup(ctx, tx, lookup, req.Number); err != nil {
			return store.Authorization{}, false, err
		}
	}
	a, err = store.Decision(s.keys, &req, card, s.now(), func(cardID string, since time.Time) (int, error) {
		var failed int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM authorizations WHERE card_id = ? AND channel = 'assisted'
			AND reason IN (?, ?) AND decided > ?`, cardID, api.ReasonCVCMismatch, api.ReasonCVCLocked,
			nanos(since)).Scan(&failed); err != nil {
			return 0, fmt.Errorf("issuer database: %w", err)
		}
		return failed, nil
	})
	if err != nil {
		return store.Authorization{}, false, err
	}
	if a.Decision == api.Approved {
		res, err := tx.ExecContext(ctx, `UPDATE cards SET available = available - ?
			WHERE card_id = ? AND status = 'active' AND available >= ?`, req.Amount, card.ID, req.Amount)
		if err != nil {
			return store.Authorization{}, false, fmt.Errorf("issuer database: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return store.Authorization{}, false, fmt.Errorf("issuer database: debit of %s touched %d rows (%v)", card.ID, n, err)
		}
	}
	var cardID any
	if a.CardID != "" {
		cardID = a.CardID
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO authorizations
		(merchant, order_id, header_hash, sealer, channel, session, card_id, amount, currency, decision, reason, auth_code, decided, hold_until, installments)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.Merchant, a.OrderID, a.HeaderHash[:], a.Sealer, a.Channel, a.Session, cardID,
		a.Amount, a.Currency, a.Decision, a.Reason, a.AuthCode, nanos(a.Decided), nanos0(a.HoldUntil), a.Installments); err != nil {
		return store.Authorization{}, false, fmt.Errorf("issuer database: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return store.Authorization{}, false, fmt.Errorf("issuer database: %w", err)
	}
	return a, false, nil
}

const authColumns = `merchant, order_id, header_hash, sealer, channel, session, COALESCE(card_id, ''),
	amount, currency, decision, reason, auth_code, decided, voided, voided_at,
	hold_until, captured, refunded, released, release_reason, installments`

func scanAuthorization(sc interface{ Scan(...any) error }) (store.Authorization, error) {
	var a store.Authorization
	var hh []byte
	var decided, voidedAt, holdUntil, released int64
	if err := sc.Scan(&a.Merchant, &a.OrderID, &hh, &a.Sealer, &a.Channel, &a.Session, &a.CardID,
		&a.Amount, &a.Currency, &a.Decision, &a.Reason, &a.AuthCode, &decided, &a.Voided, &voidedAt,
		&holdUntil, &a.Captured, &a.Refunded, &released, &a.ReleaseReason, &a.Installments); err != nil {
		return store.Authorization{}, err
	}
	if len(hh) != 32 {
		return store.Authorization{}, fmt.Errorf("header hash of %d bytes", len(hh))
	}
	a.HeaderHash = [32]byte(hh)
	a.Decided, a.VoidedAt = fromNanos(decided), fromNanos(voidedAt)
	a.HoldUntil, a.Released = fromNanos(holdUntil), fromNanos(released)
	return a, nil
}

func getAuthorization(ctx context.Context, q queryer, merchant, orderID string) (store.Authorization, error) {
	a, err := scanAuthorization(q.QueryRowContext(ctx, `SELECT `+authColumns+` FROM authorizations WHERE merchant = ? AND order_id = ?`, merchant, orderID))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Authorization{}, store.ErrNotFound
	}
	if err != nil {
		return store.Authorization{}, fmt.Errorf("issuer database: %w", err)
	}
	return a, nil
}

// Authorizations lists the stored answers f selects, newest first. Records
// hold no card number, not even its last digits.
func (s *Store) Authorizations(ctx context.Context, f store.AuthFilter) ([]store.Authorization, error) {
	q, args := `SELECT `+authColumns+` FROM authorizations`, []any(nil)
	switch {
	case f.Merchant != "" && f.Session != "":
		q, args = q+` WHERE merchant = ? AND session = ?`, []any{f.Merchant, f.Session}
	case f.Merchant != "":
		q, args = q+` WHERE merchant = ?`, []any{f.Merchant}
	case f.Session != "":
		q, args = q+` WHERE session = ?`, []any{f.Session}
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY decided DESC, rowid DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	defer rows.Close()
	var out []store.Authorization
	for rows.Next() {
		a, err := scanAuthorization(rows)
		if err != nil {
			return nil, fmt.Errorf("issuer database: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	return out, nil
}

// Authorization returns the stored answer for (merchant, order id), or
// store.ErrNotFound.
func (s *Store) Authorization(ctx context.Context, merchant, orderID string) (store.Authorization, error) {
	return getAuthorization(ctx, s.db, merchant, orderID)
}
