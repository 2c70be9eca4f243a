package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"orderseal/internal/sqldb"
	"orderseal/issuer/store"
)

// AddCard enrolls a card to a cardholder identity with its whole limit
// available. A number already enrolled (to anyone, by any node) is
// store.ErrDuplicateCard, naming the card id it has: the unique lookup hash
// decides, not a read before the write. The number is sealed (store.Enroll)
// before it reaches the database; only its keyed hash and last four digits
// are stored beside it.
func (s *Store) AddCard(ctx context.Context, nc store.NewCard) (store.Card, error) {
	c, sn, err := store.Enroll(s.keys, nc, s.now())
	if err != nil {
		return store.Card{}, err
	}
	n, err := s.db.Exec(ctx, `INSERT INTO cards
		(card_id, lookup, number_nonce, number_ct, last4, cardholder, expiry, currency, credit_limit, available, status, created)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (lookup) DO NOTHING`,
		c.ID, sn.Lookup, sn.Nonce, sn.Ciphertext, c.Last4, c.Cardholder, c.Expiry, c.Currency, c.Limit, c.Available, string(c.Status), nanos(c.Created))
	if err != nil {
		return store.Card{}, dbErr(err)
	}
	if n == 0 {
		var existing string
		if err := s.db.QueryRow(ctx, `SELECT card_id FROM cards WHERE lookup = $1`, sn.Lookup).Scan(&existing); err != nil {
			return store.Card{}, dbErr(err)
		}
		return store.Card{}, fmt.Errorf("%w as %s", store.ErrDuplicateCard, existing)
	}
	s.log.Info("card enrolled", "card_id", c.ID, "cardholder", c.Cardholder)
	return c, nil
}

const cardColumns = `card_id, last4, cardholder, expiry, currency, credit_limit, available, status, created`

// scanCard scans cardColumns, then extra.
func scanCard(r sqldb.Row, extra ...any) (store.Card, error) {
	var c store.Card
	var status string
	var created int64
	if err := r.Scan(append([]any{&c.ID, &c.Last4, &c.Cardholder, &c.Expiry, &c.Currency, &c.Limit, &c.Available, &status, &created}, extra...)...); err != nil {
		return store.Card{}, err
	}
	c.Status, c.Created = store.Status(status), sqldb.FromUnixNano(created)
	return c, nil
}

// Cards lists every card, oldest first.
func (s *Store) Cards(ctx context.Context) ([]store.Card, error) {
	out, err := sqldb.Collect(ctx, s.db, func(r sqldb.Row) (store.Card, error) { return scanCard(r) },
		`SELECT `+cardColumns+` FROM cards ORDER BY created, `+s.seq)
	if err != nil {
		return nil, dbErr(err)
	}
	return out, nil
}

// Card returns one card (store.ErrNotFound when there is none).
func (s *Store) Card(ctx context.Context, id string) (store.Card, error) {
	if err := store.CheckCardID(id); err != nil {
		return store.Card{}, err
	}
	return getCard(ctx, s.db, id, "")
}

// getCard reads one card; lock is "" or sqldb.ForUpdate.
func getCard(ctx context.Context, q sqldb.Querier, id, lock string) (store.Card, error) {
	c, err := scanCard(q.QueryRow(ctx, `SELECT `+cardColumns+` FROM cards WHERE card_id = $1`+lock, id))
	if errors.Is(err, sqldb.ErrNoRows) {
		return store.Card{}, fmt.Errorf("%w: no card %s", store.ErrNotFound, id)
	}
	if err != nil {
		return store.Card{}, dbErr(err)
	}
	return c, nil
}

// SetStatus moves a card to st and returns it, its row locked. A closed
// card stays closed (store.ErrClosedCard); setting the status it already
// has is not an error.
func (s *Store) SetStatus(ctx context.Context, id string, st store.Status) (c store.Card, err error) {
	if !st.Valid() {
		return store.Card{}, fmt.Errorf("%w: unknown card status", store.ErrInvalid)
	}
	if err := store.CheckCardID(id); err != nil {
		return store.Card{}, err
	}
	changed := false
	err = s.tx(ctx, func(tx sqldb.Tx) error {
		if c, err = getCard(ctx, tx, id, sqldb.ForUpdate(tx)); err != nil {
			return err
		}
		if changed, err = c.MoveTo(st); err != nil || !changed {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE cards SET status = $1 WHERE card_id = $2`, string(st), id); err != nil {
			return dbErr(err)
		}
		return nil
	})
	if err != nil {
		return store.Card{}, err
	}
	if changed {
		s.log.Info("card status changed", "card_id", id, "from", string(c.Status), "to", string(st))
		c.Status = st
	}
	return c, nil
}

// cardByLookup finds, and locks, the card with this lookup hash and checks
// that its sealed number is number; nil when there is none.
func (s *Store) cardByLookup(ctx context.Context, tx sqldb.Tx, lookup []byte, number string) (*store.Card, error) {
	sn := store.SealedNumber{Lookup: lookup}
	c, err := scanCard(tx.QueryRow(ctx, `SELECT `+cardColumns+`, number_nonce, number_ct FROM cards WHERE lookup = $1`+sqldb.ForUpdate(tx), lookup),
		&sn.Nonce, &sn.Ciphertext)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, dbErr(err)
	}
	ok, err := s.keys.Matches(c.ID, sn, number)
	if err != nil {
		s.log.Error("card record fails authentication", "card_id", c.ID)
		return nil, fmt.Errorf("%w: %s", err, c.ID)
	}
	if !ok {
		s.log.Error("card lookup hash does not match its sealed number", "card_id", c.ID)
		return nil, fmt.Errorf("%w: %s", store.ErrCorrupt, c.ID)
	}
	return &c, nil
}
