package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"orderseal/issuer/store"
)

// AddCard enrolls a card to a cardholder identity with its whole limit
// available. A number already enrolled (to anyone) is store.ErrDuplicateCard,
// naming the card id it has. The number is sealed (store.Enroll) before it
// reaches the database; only its keyed hash and last four digits are stored beside it.
func (s *Store) AddCard(ctx context.Context, nc store.NewCard) (store.Card, error) {
	c, sn, err := store.Enroll(s.keys, nc, s.now())
	if err != nil {
		return store.Card{}, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return store.Card{}, fmt.Errorf("issuer database: %w", err)
	}
	defer rollback(tx)
	var existing string
	err = tx.QueryRowContext(ctx, `SELECT card_id FROM cards WHERE lookup = ?`, sn.Lookup).Scan(&existing)
	switch {
	case err == nil:
		return store.Card{}, fmt.Errorf("%w as %s", store.ErrDuplicateCard, existing)
	case !errors.Is(err, sql.ErrNoRows):
		return store.Card{}, fmt.Errorf("issuer database: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO cards
		(card_id, lookup, number_nonce, number_ct, last4, cardholder, expiry, currency, credit_limit, available, status, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, sn.Lookup, sn.Nonce, sn.Ciphertext, c.Last4, c.Cardholder, c.Expiry, c.Currency, c.Limit, c.Available, string(c.Status), nanos(c.Created)); err != nil {
		return store.Card{}, fmt.Errorf("issuer database: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return store.Card{}, fmt.Errorf("issuer database: %w", err)
	}
	s.log.Info("card enrolled", "card_id", c.ID, "cardholder", c.Cardholder)
	return c, nil
}

const cardColumns = `card_id, last4, cardholder, expiry, currency, credit_limit, available, status, created`

func scanCard(sc interface{ Scan(...any) error }, extra ...any) (store.Card, error) {
	var c store.Card
	var status string
	var created int64
	if err := sc.Scan(append([]any{&c.ID, &c.Last4, &c.Cardholder, &c.Expiry, &c.Currency, &c.Limit, &c.Available, &status, &created}, extra...)...); err != nil {
		return store.Card{}, err
	}
	c.Status, c.Created = store.Status(status), fromNanos(created)
	return c, nil
}

// Cards lists every card, oldest first.
func (s *Store) Cards(ctx context.Context) ([]store.Card, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+cardColumns+` FROM cards ORDER BY created, rowid`)
	if err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	defer rows.Close()
	var out []store.Card
	for rows.Next() {
		c, err := scanCard(rows)
		if err != nil {
			return nil, fmt.Errorf("issuer database: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	return out, nil
}

// Card returns one card (store.ErrNotFound when there is none).
func (s *Store) Card(ctx context.Context, id string) (store.Card, error) {
	if err := store.CheckCardID(id); err != nil {
		return store.Card{}, err
	}
	return getCard(ctx, s.db, id)
}

func getCard(ctx context.Context, q queryer, id string) (store.Card, error) {
	c, err := scanCard(q.QueryRowContext(ctx, `SELECT `+cardColumns+` FROM cards WHERE card_id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Card{}, fmt.Errorf("%w: no card %s", store.ErrNotFound, id)
	}
	if err != nil {
		return store.Card{}, fmt.Errorf("issuer database: %w", err)
	}
	return c, nil
}

// SetStatus moves a card to st and returns it. A closed card stays closed
// (store.ErrClosedCard); setting the status it already has is not an error.
func (s *Store) SetStatus(ctx context.Context, id string, st store.Status) (store.Card, error) {
	if !st.Valid() {
		return store.Card{}, fmt.Errorf("%w: unknown card status", store.ErrInvalid)
	}
	if err := store.CheckCardID(id); err != nil {
		return store.Card{}, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return store.Card{}, fmt.Errorf("issuer database: %w", err)
	}
	defer rollback(tx)
	c, err := getCard(ctx, tx, id)
	if err != nil {
		return store.Card{}, err
	}
	change, err := c.MoveTo(st)
	if err != nil {
		return store.Card{}, err
	}
	if !change {
		return c, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE cards SET status = ? WHERE card_id = ?`, string(st), id); err != nil {
		return store.Card{}, fmt.Errorf("issuer database: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return store.Card{}, fmt.Errorf("issuer database: %w", err)
	}
	s.log.Info("card status changed", "card_id", id, "from", string(c.Status), "to", string(st))
	c.Status = st
	return c, nil
}

// cardByLookup finds the card with this lookup hash and checks that its
// sealed number is number; nil when there is none.
func (s *Store) cardByLookup(ctx context.Context, tx *sql.Tx, lookup []byte, number string) (*store.Card, error) {
	sn := store.SealedNumber{Lookup: lookup}
	c, err := scanCard(tx.QueryRowContext(ctx, `SELECT `+cardColumns+`, number_nonce, number_ct FROM cards WHERE lookup = ?`, lookup),
		&sn.Nonce, &sn.Ciphertext)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
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
