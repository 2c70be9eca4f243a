package store

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"time"

	"orderseal/issuer/api"
	"orderseal/keygen"
	"orderseal/order"
	"orderseal/order/money"
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
	CVC        string // the CVC from the issuer section ("" when it had none)
	// Hold is how long an approval holds the credit before it expires
	// (0: DefaultHold).
	Hold time.Duration
	// Installments is the plan from the issuer section (0 or 1: a single
	// payment), checked against the card's product (PlanAllowed).
	Installments int
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
	// The lifecycle after approval (payment.go).
	HoldUntil     time.Time // approvals: when the hold's remainder expires
	Captured      int64     // minor units captured, in total
	Refunded      int64     // minor units refunded, in total (≤ Captured)
	Released      time.Time // when the remainder was released (zero: not yet)
	ReleaseReason string    // ReleaseCompleted or ReleaseExpired
	Installments  int       // approvals: the plan's count (1: a single payment); Schedule derives its payments
}

// ChannelOf is the channel of a bundle sealed by sealer: assisted when a
// merchant's consultant keyed it (DESIGN.md §6.7), online otherwise.
func ChannelOf(sealer string) string {
	if keygen.RoleOf(sealer) == keygen.RoleConsultant {
		return api.ChannelAssisted
	}
	return api.ChannelOnline
}

func (r *AuthRequest) check() error {
	assisted := ChannelOf(r.Cardholder) == api.ChannelAssisted
	switch {
	case keygen.ValidateIdentity(r.Merchant) != nil || keygen.RoleOf(r.Merchant) != keygen.RoleMerchant:
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
	case money.Check(r.Currency) != nil:
		return fmt.Errorf("%w: currency: %w", ErrInvalid, money.ErrUnsupported)
	}
	return nil
}

// PrepareAuthorize is the first step of a backend's Authorize, before its
// transaction: ErrNoCardKey when ks is nil, ErrInvalid for a malformed
// request, else the lookup hash of the request's number (nil when it is not
// a card number: no card matches, and the decision is a decline).
func PrepareAuthorize(ks *SubKeys, req *AuthRequest) ([]byte, error) {
	if ks == nil {
		return nil, ErrNoCardKey
	}
	if err := req.check(); err != nil {
		return nil, err
	}
	return ks.Lookup(req.Number), nil
}

// Replay is the answer to req when (merchant, order id) was answered
// before with prev: prev itself for the same bundle (a retry: no second
// debit), ErrOrderIDReused for another.
func Replay(prev Authorization, req *AuthRequest) (Authorization, error) {
	if prev.HeaderHash != req.HeaderHash {
		return Authorization{}, ErrOrderIDReused
	}
	return prev, nil
}

// Decision is the answer to req at now on card, the card whose sealed
// number the caller matched with req.Number (nil: none), to be recorded
// with a debit of req.Amount when approved. For an assisted order on a
// known card it asks cvcFailures for the card's wrong codes decided after
// since, inside the backend's transaction, and locks the card at
// MaxCVCFailures. An approval carries a fresh auth code.
func Decision(ks *SubKeys, req *AuthRequest, card *Card, now time.Time,
	cvcFailures func(cardID string, since time.Time) (int, error)) (Authorization, error) {
	now = now.UTC()
	a := Authorization{Merchant: req.Merchant, OrderID: req.OrderID, HeaderHash: req.HeaderHash,
		Sealer: req.Cardholder, Channel: ChannelOf(req.Cardholder), Session: req.Session,
		Amount: req.Amount, Currency: req.Currency, Decided: now, Decision: api.Declined, Installments: 1}
	cardCVC := ""
	if card != nil {
		a.CardID = card.ID
		if a.Channel == api.ChannelAssisted || req.CVC != "" {
			cardCVC = deriveCVC(ks.cvk, req.Number, card.Expiry)
		}
	}
	a.Reason = Decide(card, req, cardCVC, now)
	if a.Channel == api.ChannelAssisted && card != nil && a.Reason != api.ReasonCVCRequired {
		// Three digits are guessed in a thousand tries: after a few wrong
		// ones the card takes no assisted order, right code or not.
		failed, err := cvcFailures(card.ID, now.Add(-CVCLockWindow))
		if err != nil {
			return Authorization{}, err
		}
		if failed >= MaxCVCFailures {
			a.Reason = api.ReasonCVCLocked
		}
	}
	if a.Reason == "" {
		a.Decision = api.Approved
		hold := req.Hold
		if hold <= 0 {
			hold = DefaultHold
		}
		a.HoldUntil = now.Add(hold)
		a.Installments = max(req.Installments, 1)
		var err error
		if a.AuthCode, err = NewAuthCode(); err != nil {
			return Authorization{}, err
		}
	}
	return a, nil
}

// Decide returns why req must be declined on card c at now, or "" to
// approve. c is nil when no card has the section's number. The order of the
// checks is part of the contract.
//
// Online (sealed by a cardholder): enrollment (to this cardholder, with the
// expiry the cardholder sealed), then, when the section carries a CVC, that
// CVC equal to cardCVC (compared in constant time: a wrong one is
// ReasonCVCMismatch, never an approval), then status, expiry, amount
// binding, currency, credit. A section without a CVC is not refused for it:
// the cardholder's key, to which the card is enrolled, authenticates the
// order (the CVC is optional in a card file).
//
// Assisted (sealed by a consultant, ChannelOf): the buyer holds no key, so
// no enrollment binding applies; instead a CVC must be present, the card
// known (its number, with the sealed expiry), and the CVC equal to cardCVC,
// the card's derived one, compared in constant time; then status, expiry,
// amount binding, currency, credit as online. A missing or wrong code is
// refused before the card's status, expiry or credit show in the answer.
// A declined record keeps Installments 1: only an approval has a plan.
func Decide(c *Card, req *AuthRequest, cardCVC string, now time.Time) string {
	assisted := ChannelOf(req.Cardholder) == api.ChannelAssisted
	switch {
	case assisted && req.CVC == "":
		return api.ReasonCVCRequired
	case c == nil || c.Expiry != req.Expiry || (!assisted && c.Cardholder != req.Cardholder):
		return api.ReasonNotEnrolled
	case (assisted || req.CVC != "") && (cardCVC == "" || subtle.ConstantTimeCompare([]byte(req.CVC), []byte(cardCVC)) != 1):
		return api.ReasonCVCMismatch
	case c.Status != StatusActive:
		return api.ReasonInactive
	case Expired(c.Expiry, now) || Expired(req.Expiry, now):
		return api.ReasonExpired
	case req.Total == nil || req.Total.Amount != req.Amount || req.Total.Currency != req.Currency:
		return api.ReasonAmountMismatch
	case req.Currency != c.Currency:
		return api.ReasonCurrency
	case !PlanAllowed(req.Number, req.Installments, req.Amount, req.Currency):
		return api.ReasonInstallments
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
