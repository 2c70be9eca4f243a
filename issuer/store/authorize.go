package store

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"orderseal/issuer/api"
	"orderseal/keygen"
	"orderseal/order"
)

// AuthRequest is one authorization to decide: what the merchant asked for,
// and what the issuer section (already opened and checked by the caller)
// says. Its CVC is compared with the card's derived one and dropped: it is
// never stored or logged.
type AuthRequest struct {
	Merchant   string       // the authenticated caller
	OrderID    string       // the bundle's order id
	HeaderHash [32]byte     // hH of the bundle
	Cardholder string       // the bundle's sealer, proven by the section opening: a cardholder, or a consultant (assisted)
	Number     string       // card number from the issuer section ("" when it had none)
	Expiry     string       // card expiry from the issuer section
	Total      *order.Money // total from the issuer section (nil when it had none)
	Amount     int64        // what the merchant asks for, minor units
	Currency   string
	Session    string // assisted: the session the issuer section names (the caller checked the merchant's against it); online: ""
	CVC        string // assisted: the CVC from the issuer section ("" when it had none); ignored online
}

// Authorization is an answered request, as stored.
type Authorization struct {
	Merchant   string
	OrderID    string
	HeaderHash [32]byte
	Sealer     string // the bundle's cardholder field ("" for records older than the column)
	Channel    string // api.ChannelOnline or api.ChannelAssisted
	Session    string // assisted orders: the session that keyed it
	CardID     string // "" when no card matched the number
	Amount     int64
	Currency   string
	Decision   string // api.Approved or api.Declined
	Reason     string // api.Reason…, declines only
	AuthCode   string // approvals only
	Decided    time.Time
	Voided     bool
	VoidedAt   time.Time
}

// ChannelOf is the channel of a bundle sealed by sealer: assisted when a
// merchant's consultant keyed it (DESIGN.md §6.7), online otherwise.
func ChannelOf(sealer string) string {
	if keygen.RoleOf(sealer) == "consultant" {
		return api.ChannelAssisted
	}
	return api.ChannelOnline
}

func (r *AuthRequest) check() error {
	assisted := ChannelOf(r.Cardholder) == api.ChannelAssisted
	switch {
	case keygen.ValidateIdentity(r.Merchant) != nil || keygen.RoleOf(r.Merchant) != "merchant":
		return fmt.Errorf("%w: merchant identity", ErrInvalid)
	case keygen.ValidateIdentity(r.Cardholder) != nil:
		return fmt.Errorf("%w: sealer identity", ErrInvalid)
	case assisted && !order.ValidSession(r.Session):
		return fmt.Errorf("%w: an assisted order names its session", ErrInvalid)
	case !assisted && r.Session != "":
		return fmt.Errorf("%w: an online order names no session", ErrInvalid)
	case r.OrderID == "" || len(r.OrderID) > 64:
		return fmt.Errorf("%w: order id", ErrInvalid)
	case r.HeaderHash == [32]byte{}:
		return fmt.Errorf("%w: header hash", ErrInvalid)
	case r.Amount <= 0:
		return fmt.Errorf("%w: amount must be positive", ErrInvalid)
	case !currencyRe.MatchString(r.Currency):
		return fmt.Errorf("%w: currency", ErrInvalid)
	}
	return nil
}

// matchedCard is a card row found by the number's keyed hash.
type matchedCard struct {
	Card
	nonce, ct []byte
}

// Authorize decides req and records the answer, all in one BEGIN IMMEDIATE
// transaction. When (merchant, order id) was answered before, the stored
// answer comes back unchanged with replayed = true if the header hash is the
// same (a retry: no second debit), and ErrOrderIDReused if it is not.
// Declines are stored like approvals, so a retry gets the same decline.
func (s *Store) Authorize(ctx context.Context, req AuthRequest) (a Authorization, replayed bool, err error) {
	if s.keys == nil {
		return Authorization{}, false, ErrNoCardKey
	}
	if err := req.check(); err != nil {
		return Authorization{}, false, err
	}
	var lookup []byte
	number, numErr := ParseNumber(req.Number)
	if numErr == nil && number == req.Number {
		lookup = s.keys.lookupHash(number)
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Authorization{}, false, fmt.Errorf("issuer database: %w", err)
	}
	defer rollback(tx)
	prev, err := getAuthorization(ctx, tx, req.Merchant, req.OrderID)
	switch {
	case err == nil:
		if prev.HeaderHash != req.HeaderHash {
			return Authorization{}, false, ErrOrderIDReused
		}
		return prev, true, nil
	case !errors.Is(err, ErrNotFound):
		return Authorization{}, false, err
	}

	var card *matchedCard
	if lookup != nil {
		card, err = s.cardByLookup(ctx, tx, lookup, number)
		if err != nil {
			return Authorization{}, false, err
		}
	}
	now := s.now().UTC()
	a = Authorization{Merchant: req.Merchant, OrderID: req.OrderID, HeaderHash: req.HeaderHash,
		Sealer: req.Cardholder, Channel: ChannelOf(req.Cardholder), Session: req.Session,
		Amount: req.Amount, Currency: req.Currency, Decided: now, Decision: api.Declined}
	var c *Card
	cardCVC := ""
	if card != nil {
		a.CardID = card.ID
		c = &card.Card
		if a.Channel == api.ChannelAssisted {
			cardCVC = deriveCVC(s.keys.cvk, number, card.Expiry)
		}
	}
	a.Reason = Decide(c, &req, cardCVC, now)
	if a.Channel == api.ChannelAssisted && card != nil && a.Reason != api.ReasonCVCRequired {
		// Three digits are guessed in a thousand tries: after a few wrong
		// ones the card takes no assisted order, right code or not.
		var failed int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM authorizations WHERE card_id = ? AND channel = 'assisted'
			AND reason IN (?, ?) AND decided > ?`, card.ID, api.ReasonCVCMismatch, api.ReasonCVCLocked,
			nanos(now.Add(-CVCLockWindow))).Scan(&failed); err != nil {
			return Authorization{}, false, fmt.Errorf("issuer database: %w", err)
		}
		if failed >= MaxCVCFailures {
			a.Reason = api.ReasonCVCLocked
		}
	}
	if a.Reason == "" {
		a.Decision = api.Approved
		if a.AuthCode, err = NewAuthCode(); err != nil {
			return Authorization{}, false, err
		}
		res, err := tx.ExecContext(ctx, `UPDATE cards SET available = available - ?
			WHERE card_id = ? AND status = 'active' AND available >= ?`, req.Amount, card.ID, req.Amount)
		if err != nil {
			return Authorization{}, false, fmt.Errorf("issuer database: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return Authorization{}, false, fmt.Errorf("issuer database: debit of %s touched %d rows (%v)", card.ID, n, err)
		}
	}
	var cardID any
	if a.CardID != "" {
		cardID = a.CardID
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO authorizations
		(merchant, order_id, header_hash, sealer, channel, session, card_id, amount, currency, decision, reason, auth_code, decided)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.Merchant, a.OrderID, a.HeaderHash[:], a.Sealer, a.Channel, a.Session, cardID,
		a.Amount, a.Currency, a.Decision, a.Reason, a.AuthCode, nanos(a.Decided)); err != nil {
		return Authorization{}, false, fmt.Errorf("issuer database: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Authorization{}, false, fmt.Errorf("issuer database: %w", err)
	}
	return a, false, nil
}

// cardByLookup finds the card with this lookup hash and checks that its
// sealed number is number; nil when there is none.
func (s *Store) cardByLookup(ctx context.Context, tx *sql.Tx, lookup []byte, number string) (*matchedCard, error) {
	var m matchedCard
	var status string
	var created int64
	err := tx.QueryRowContext(ctx, `SELECT `+cardColumns+`, number_nonce, number_ct FROM cards WHERE lookup = ?`, lookup).
		Scan(&m.ID, &m.Last4, &m.Cardholder, &m.Expiry, &m.Currency, &m.Limit, &m.Available, &status, &created, &m.nonce, &m.ct)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	m.Status, m.Created = Status(status), fromNanos(created)
	ok, err := s.keys.matches(m.ID, m.nonce, m.ct, number)
	if err != nil {
		s.log.Error("card record fails authentication", "card_id", m.ID)
		return nil, fmt.Errorf("%w: %s", err, m.ID)
	}
	if !ok {
		s.log.Error("card lookup hash does not match its sealed number", "card_id", m.ID)
		return nil, fmt.Errorf("%w: %s", ErrCorrupt, m.ID)
	}
	return &m, nil
}

// Decide returns why req must be declined on card c at now, or "" to
// approve. c is nil when no card has the section's number. The order of the
// checks is part of the contract.
//
// Online (sealed by a cardholder): enrollment (to this cardholder, with the
// expiry the cardholder sealed), status, expiry, amount binding, currency,
// credit. The section's CVC is not looked at.
//
// Assisted (sealed by a consultant, ChannelOf): the buyer holds no key, so
// no enrollment binding applies; instead a CVC must be present, the card
// known (its number, with the sealed expiry), and the CVC equal to cardCVC,
// the card's derived one, compared in constant time; then status, expiry,
// amount binding, currency, credit as online. A missing or wrong code is
// refused before the card's status, expiry or credit show in the answer.
func Decide(c *Card, req *AuthRequest, cardCVC string, now time.Time) string {
	assisted := ChannelOf(req.Cardholder) == api.ChannelAssisted
	switch {
	case assisted && req.CVC == "":
		return api.ReasonCVCRequired
	case c == nil || c.Expiry != req.Expiry || (!assisted && c.Cardholder != req.Cardholder):
		return api.ReasonNotEnrolled
	case assisted && (cardCVC == "" || subtle.ConstantTimeCompare([]byte(req.CVC), []byte(cardCVC)) != 1):
		return api.ReasonCVCMismatch
	case c.Status != StatusActive:
		return api.ReasonInactive
	case Expired(c.Expiry, now) || Expired(req.Expiry, now):
		return api.ReasonExpired
	case req.Total == nil || req.Total.Amount != req.Amount || req.Total.Currency != req.Currency:
		return api.ReasonAmountMismatch
	case req.Currency != c.Currency:
		return api.ReasonCurrency
	case req.Amount > c.Available:
		return api.ReasonInsufficientCredit
	}
	return ""
}

// A card whose security code was wrong MaxCVCFailures times in assisted
// orders within CVCLockWindow is declined for assisted orders until the
// window has passed.
const (
	MaxCVCFailures = 3
	CVCLockWindow  = 24 * time.Hour
)

const authCodeAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// NewAuthCode returns 6 characters of [0-9A-Z], uniformly from crypto/rand.
func NewAuthCode() (string, error) {
	out := make([]byte, 0, 6)
	var buf [16]byte
	for len(out) < 6 {
		if _, err := rand.Read(buf[:]); err != nil {
			return "", err
		}
		for _, b := range buf {
			// 252 = 7 × 36: reject the rest so every character is equally likely.
			if b < 252 && len(out) < 6 {
				out = append(out, authCodeAlphabet[b%36])
			}
		}
	}
	return string(out), nil
}

const authColumns = `merchant, order_id, header_hash, sealer, channel, session, COALESCE(card_id, ''),
	amount, currency, decision, reason, auth_code, decided, voided, voided_at`

func scanAuthorization(sc interface{ Scan(...any) error }) (Authorization, error) {
	var a Authorization
	var hh []byte
	var decided, voidedAt int64
	if err := sc.Scan(&a.Merchant, &a.OrderID, &hh, &a.Sealer, &a.Channel, &a.Session, &a.CardID,
		&a.Amount, &a.Currency, &a.Decision, &a.Reason, &a.AuthCode, &decided, &a.Voided, &voidedAt); err != nil {
		return Authorization{}, err
	}
	if len(hh) != 32 {
		return Authorization{}, fmt.Errorf("header hash of %d bytes", len(hh))
	}
	a.HeaderHash = [32]byte(hh)
	a.Decided, a.VoidedAt = fromNanos(decided), fromNanos(voidedAt)
	return a, nil
}

func getAuthorization(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, merchant, orderID string) (Authorization, error) {
	a, err := scanAuthorization(q.QueryRowContext(ctx, `SELECT `+authColumns+` FROM authorizations WHERE merchant = ? AND order_id = ?`, merchant, orderID))
	if errors.Is(err, sql.ErrNoRows) {
		return Authorization{}, ErrNotFound
	}
	if err != nil {
		return Authorization{}, fmt.Errorf("issuer database: %w", err)
	}
	return a, nil
}

// Authorizations lists the stored answers, newest first; with a session,
// only the orders keyed in that assisted session. Records hold no card
// number, not even its last digits.
func (s *Store) Authorizations(ctx context.Context, session string) ([]Authorization, error) {
	q, args := `SELECT `+authColumns+` FROM authorizations ORDER BY decided DESC, rowid DESC`, []any(nil)
	if session != "" {
		q, args = `SELECT `+authColumns+` FROM authorizations WHERE session = ? ORDER BY decided DESC, rowid DESC`, []any{session}
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("issuer database: %w", err)
	}
	defer rows.Close()
	var out []Authorization
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
// ErrNotFound.
func (s *Store) Authorization(ctx context.Context, merchant, orderID string) (Authorization, error) {
	return getAuthorization(ctx, s.db, merchant, orderID)
}

// Void releases the hold of merchant's authorization for orderID: an
// approved amount goes back to the card's available credit, once. Voiding
// again, or voiding a decline (nothing was held), only returns the record.
// ErrNotFound when merchant has no authorization for orderID.
func (s *Store) Void(ctx context.Context, merchant, orderID string) (Authorization, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Authorization{}, fmt.Errorf("issuer database: %w", err)
	}
	defer rollback(tx)
	a, err := getAuthorization(ctx, tx, merchant, orderID)
	if err != nil {
		return Authorization{}, err
	}
	if a.Voided {
		return a, nil
	}
	now := s.now().UTC()
	if a.Decision == api.Approved && a.CardID != "" {
		// MIN: the CHECK keeps available within the limit whatever happened since.
		if _, err := tx.ExecContext(ctx, `UPDATE cards SET available = MIN(credit_limit, available + ?) WHERE card_id = ?`,
			a.Amount, a.CardID); err != nil {
			return Authorization{}, fmt.Errorf("issuer database: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE authorizations SET voided = 1, voided_at = ? WHERE merchant = ? AND order_id = ?`,
		nanos(now), merchant, orderID); err != nil {
		return Authorization{}, fmt.Errorf("issuer database: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Authorization{}, fmt.Errorf("issuer database: %w", err)
	}
	a.Voided, a.VoidedAt = true, now
	return a, nil
}
