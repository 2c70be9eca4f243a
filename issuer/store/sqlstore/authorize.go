package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"orderseal/internal/sqldb"
	"orderseal/issuer/api"
	"orderseal/issuer/store"
)

// Authorize decides req and records the answer in one transaction that
// holds a lock on (merchant, order id) and the card's row (on SQLite: the
// write lock of the whole database). When (merchant, order id) was answered
// before, on any node, the stored answer comes back unchanged with
// replayed = true if the header hash is the same (a retry: no second
// debit), and store.ErrOrderIDReused if it is not. Declines are stored like
// approvals, so a retry gets the same decline.
func (s *Store) Authorize(ctx context.Context, req store.AuthRequest) (a store.Authorization, replayed bool, err error) {
	lookup, err := store.PrepareAuthorize(s.keys, &req)
	if err != nil {
		return store.Authorization{}, false, err
	}
	err = s.tx(ctx, func(tx sqldb.Tx) error {
		// The order's row does not exist yet, so nothing could be locked
		// FOR UPDATE: the advisory lock makes a retry on another node wait
		// for this answer instead of deciding again. The key is the one
		// the PostgreSQL backend always took, so nodes of either build
		// exclude each other.
		if err := tx.Lock(ctx, "authorize "+req.Merchant+" "+req.OrderID); err != nil {
			return dbErr(err)
		}
		prev, err := getAuthorization(ctx, tx, req.Merchant, req.OrderID, "")
		switch {
		case err == nil:
			a, err = store.Replay(prev, &req)
			replayed = err == nil
			return err
		case !errors.Is(err, store.ErrNotFound):
			return err
		}
		var card *store.Card
		if lookup != nil {
			if card, err = s.cardByLookup(ctx, tx, lookup, req.Number); err != nil {
				return err
			}
		}
		a, err = store.Decision(s.keys, &req, card, s.now(), func(cardID string, since time.Time) (int, error) {
			var failed int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM authorizations WHERE card_id = $1 AND channel = 'assisted'
				AND reason IN ($2, $3) AND decided > $4`, cardID, api.ReasonCVCMismatch, api.ReasonCVCLocked,
				nanos(since)).Scan(&failed); err != nil {
				return 0, dbErr(err)
			}
			return failed, nil
		})
		if err != nil {
			return err
		}
		if a.Decision == api.Approved {
			n, err := tx.Exec(ctx, `UPDATE cards SET available = available - $1
				WHERE card_id = $2 AND status = 'active' AND available >= $1`, req.Amount, card.ID)
			if err != nil {
				return dbErr(err)
			}
			if n != 1 {
				return fmt.Errorf("issuer database: debit of %s touched %d rows", card.ID, n)
			}
		}
		var cardID any // NULL: no card matched
		if a.CardID != "" {
			cardID = a.CardID
		}
		if _, err := tx.Exec(ctx, `INSERT INTO authorizations
			(merchant, order_id, header_hash, sealer, channel, session, card_id, amount, currency, decision, reason, auth_code, decided, hold_until, installments)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			a.Merchant, a.OrderID, a.HeaderHash[:], a.Sealer, a.Channel, a.Session, cardID,
			a.Amount, a.Currency, a.Decision, a.Reason, a.AuthCode, nanos(a.Decided), sqldb.UnixNano(a.HoldUntil), a.Installments); err != nil {
			return dbErr(err)
		}
		return nil
	})
	if err != nil {
		return store.Authorization{}, false, err
	}
	return a, replayed, nil
}

const authColumns = `merchant, order_id, header_hash, sealer, channel, session, COALESCE(card_id, ''),
	amount, currency, decision, reason, auth_code, decided, voided, voided_at,
	hold_until, captured, refunded, released, release_reason, installments`

func scanAuthorization(r sqldb.Row) (store.Authorization, error) {
	var a store.Authorization
	var hh []byte
	var decided, voidedAt, holdUntil, released int64
	if err := r.Scan(&a.Merchant, &a.OrderID, &hh, &a.Sealer, &a.Channel, &a.Session, &a.CardID,
		&a.Amount, &a.Currency, &a.Decision, &a.Reason, &a.AuthCode, &decided, &a.Voided, &voidedAt,
		&holdUntil, &a.Captured, &a.Refunded, &released, &a.ReleaseReason, &a.Installments); err != nil {
		return store.Authorization{}, err
	}
	if len(hh) != 32 {
		return store.Authorization{}, fmt.Errorf("header hash of %d bytes", len(hh))
	}
	a.HeaderHash = [32]byte(hh)
	a.Decided, a.VoidedAt = sqldb.FromUnixNano(decided), sqldb.FromUnixNano(voidedAt)
	a.HoldUntil, a.Released = sqldb.FromUnixNano(holdUntil), sqldb.FromUnixNano(released)
	return a, nil
}

// getAuthorization reads one authorization (store.ErrNotFound when there is
// none); lock is "" or a locking clause (sqldb.ForUpdate, SKIP LOCKED).
func getAuthorization(ctx context.Context, q sqldb.Querier, merchant, orderID, lock string) (store.Authorization, error) {
	a, err := scanAuthorization(q.QueryRow(ctx, `SELECT `+authColumns+` FROM authorizations WHERE merchant = $1 AND order_id = $2`+lock, merchant, orderID))
	if errors.Is(err, sqldb.ErrNoRows) {
		return store.Authorization{}, store.ErrNotFound
	}
	if err != nil {
		return store.Authorization{}, dbErr(err)
	}
	return a, nil
}

// Authorizations lists the stored answers f selects, newest first. Records
// hold no card number, not even its last digits. Each filter is its own
// statement, so each is planned on its index (the primary key's merchant,
// authorizations_session) rather than as one plan for every filter.
func (s *Store) Authorizations(ctx context.Context, f store.AuthFilter) ([]store.Authorization, error) {
	q, args := `SELECT `+authColumns+` FROM authorizations`, []any(nil)
	switch {
	case f.Merchant != "" && f.Session != "":
		q, args = q+` WHERE merchant = $1 AND session = $2`, []any{f.Merchant, f.Session}
	case f.Merchant != "":
		q, args = q+` WHERE merchant = $1`, []any{f.Merchant}
	case f.Session != "":
		q, args = q+` WHERE session = $1`, []any{f.Session}
	}
	out, err := sqldb.Collect(ctx, s.db, scanAuthorization, q+` ORDER BY decided DESC, `+s.seq+` DESC`, args...)
	if err != nil {
		return nil, dbErr(err)
	}
	return out, nil
}

// Authorization returns the stored answer for (merchant, order id), or
// store.ErrNotFound.
func (s *Store) Authorization(ctx context.Context, merchant, orderID string) (store.Authorization, error) {
	return getAuthorization(ctx, s.db, merchant, orderID, "")
}
