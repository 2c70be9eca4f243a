package store

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"orderseal/issuer/api"
	"orderseal/keygen"
	"orderseal/order/money"
)

// The payment lifecycle after authorization (DESIGN.md §6.8). A card's
// available credit is its limit less what is held (authorized, not yet
// captured, voided, released or expired) and what is charged (captured, not
// yet refunded):
//
//	authorize  available −= amount          (a hold)
//	capture    available unchanged          (hold becomes charge)
//	release    available += amount − captured (the hold's remainder)
//	void       available += amount          (before any capture)
//	expire     available += amount − captured (the hold period passed)
//	refund     available += refund          (up to captured − refunded)

// Errors of the lifecycle: each is one stable problem code (api.Code…).
var (
	ErrNotApproved          = errors.New("the authorization was declined: nothing is held")
	ErrCaptureAfterVoid     = errors.New("the authorization was voided")
	ErrCaptureExceeds       = errors.New("the capture exceeds what the authorization still holds")
	ErrAuthorizationExpired = errors.New("the authorization's hold period has passed")
	ErrAuthorizationClosed  = errors.New("the authorization's remainder was released")
	ErrRefundExceeds        = errors.New("the refund exceeds what was captured and not yet refunded")
	ErrVoidAfterCapture     = errors.New("part of the authorization was captured: refund it instead")
	ErrOpCurrency           = errors.New("the operation's currency is not the authorization's")
	ErrIdempotencyKeyReused = errors.New("the idempotency key was used for another operation")
)

// Operation kinds.
const (
	OpCapture = "capture"
	OpRefund  = "refund"
	OpVoid    = "void"
	OpRelease = "release"
)

// Authorization states, derived from the record (Authorization.State):
// the wire's states (api.State…), which the server answers as they are.
const (
	StateDeclined          = api.StateDeclined
	StateAuthorized        = api.StateAuthorized
	StatePartiallyCaptured = api.StatePartiallyCaptured
	StateCaptured          = api.StateCaptured
	StatePartiallyRefunded = api.StatePartiallyRefunded
	StateRefunded          = api.StateRefunded
	StateVoided            = api.StateVoided
	StateExpired           = api.StateExpired
)

// Release reasons recorded with a released remainder.
const (
	ReleaseCompleted = "completed" // the merchant released it (the order completed)
	ReleaseExpired   = "expired"   // the hold period passed
)

// DefaultHold is how long an authorization holds credit when the issuer
// sets no period of its own.
const DefaultHold = 7 * 24 * time.Hour

// Op is one merchant operation on its authorization, idempotent by Key:
// the same key again returns the record as it is, another operation under
// a used key is ErrIdempotencyKeyReused.
type Op struct {
	Merchant string // the authenticated caller
	OrderID  string
	Key      string // merchant-chosen, unique per merchant
	Kind     string // OpCapture, OpRefund, OpVoid, OpRelease
	Amount   int64  // capture, refund: minor units; void, release: 0
	Currency string // capture, refund: must be the authorization's
	Final    bool   // capture: release the remainder with it (the last shipment)
}

var opKeyRe = regexp.MustCompile(`^[A-Za-z0-9_.:/-]{1,128}$`)

// ValidOpKey reports whether k may be an idempotency key.
func ValidOpKey(k string) bool { return opKeyRe.MatchString(k) }

// Check is ErrInvalid for a malformed operation.
func (op *Op) Check() error {
	switch {
	case keygen.ValidateIdentity(op.Merchant) != nil || keygen.RoleOf(op.Merchant) != keygen.RoleMerchant:
		return fmt.Errorf("%w: merchant identity", ErrInvalid)
	case op.OrderID == "" || len(op.OrderID) > 64:
		return fmt.Errorf("%w: order id", ErrInvalid)
	case !ValidOpKey(op.Key):
		return fmt.Errorf("%w: idempotency key must be 1 to 128 characters of [A-Za-z0-9_.:/-]", ErrInvalid)
	}
	switch op.Kind {
	case OpCapture, OpRefund:
		if op.Amount <= 0 || op.Amount > MaxCreditLimit {
			return fmt.Errorf("%w: amount must be 1 to %d minor units", ErrInvalid, int64(MaxCreditLimit))
		}
		if err := money.Check(op.Currency); err != nil {
			return fmt.Errorf("%w: currency: %w", ErrInvalid, err)
		}
		if op.Final && op.Kind == OpRefund {
			return fmt.Errorf("%w: a refund is never final", ErrInvalid)
		}
	case OpVoid, OpRelease:
		if op.Amount != 0 || op.Final {
			return fmt.Errorf("%w: a %s names no amount", ErrInvalid, op.Kind)
		}
	default:
		return fmt.Errorf("%w: unknown operation", ErrInvalid)
	}
	return nil
}

// OpRecord is an operation as stored under its key.
type OpRecord struct {
	OrderID, Kind, Currency string
	Amount                  int64
	Final                   bool
	At                      time.Time
}

// Same reports whether op is the operation stored as r (a retry).
func (r OpRecord) Same(op *Op) bool {
	return r.OrderID == op.OrderID && r.Kind == op.Kind && r.Amount == op.Amount && r.Currency == op.Currency && r.Final == op.Final
}

// State is the record's lifecycle state.
func (a Authorization) State() string {
	switch {
	case a.Decision != api.Approved:
		return StateDeclined
	case a.Voided:
		return StateVoided
	case a.Captured == 0 && a.ReleaseReason == ReleaseExpired:
		return StateExpired
	case a.Refunded > 0 && a.Refunded >= a.Captured:
		return StateRefunded
	case a.Refunded > 0:
		return StatePartiallyRefunded
	case a.Captured > 0 && (a.Captured == a.Amount || !a.Released.IsZero()):
		return StateCaptured
	case a.Captured > 0:
		return StatePartiallyCaptured
	}
	return StateAuthorized
}

// Held is what the authorization still holds of the card's credit.
func (a Authorization) Held() int64 {
	if a.Decision != api.Approved || a.Voided || !a.Released.IsZero() {
		return 0
	}
	return a.Amount - a.Captured
}

// lapses reports whether a still holds credit whose period has passed at now.
func (a Authorization) lapses(now time.Time) bool {
	return a.Held() > 0 && !a.HoldUntil.IsZero() && !now.Before(a.HoldUntil)
}

// Expire releases a's remainder when its hold period has passed at now:
// the credit to give back to the card (0 when nothing lapses).
func Expire(a *Authorization, now time.Time) int64 {
	if !a.lapses(now) {
		return 0
	}
	back := a.Held()
	a.Released, a.ReleaseReason = now.UTC(), ReleaseExpired
	return back
}

// ApplyOp makes op on a at now and returns the credit to give back to the
// card (never negative). A refusal changes nothing of a. The order of the
// checks is part of the contract: currency, then the state (declined,
// voided, expired, released), then the amounts. An authorization whose hold
// period passed is expired by the caller first (Expire), in the same
// transaction, so a capture after it is ErrAuthorizationExpired.
func ApplyOp(a *Authorization, op *Op, now time.Time) (int64, error) {
	now = now.UTC()
	if (op.Kind == OpCapture || op.Kind == OpRefund) && op.Currency != a.Currency {
		return 0, ErrOpCurrency
	}
	if a.Decision != api.Approved {
		if op.Kind == OpVoid {
			// Nothing was held: voiding a decline only marks it.
			if !a.Voided {
				a.Voided, a.VoidedAt = true, now
			}
			return 0, nil
		}
		return 0, ErrNotApproved
	}
	switch op.Kind {
	case OpCapture:
		switch {
		case a.Voided:
			return 0, ErrCaptureAfterVoid
		case a.ReleaseReason == ReleaseExpired:
			return 0, ErrAuthorizationExpired
		case op.Amount > a.Amount-a.Captured:
			return 0, ErrCaptureExceeds
		case !a.Released.IsZero():
			return 0, ErrAuthorizationClosed
		}
		a.Captured += op.Amount
		if op.Final || a.Captured == a.Amount {
			back := a.Amount - a.Captured
			a.Released, a.ReleaseReason = now, ReleaseCompleted
			return back, nil
		}
		return 0, nil
	case OpRefund:
		if op.Amount > a.Captured-a.Refunded {
			return 0, ErrRefundExceeds
		}
		a.Refunded += op.Amount
		return op.Amount, nil
	case OpVoid:
		switch {
		case a.Voided:
			return 0, nil
		case a.Captured > 0:
			return 0, ErrVoidAfterCapture
		case !a.Released.IsZero(): // expired: nothing is held any more
			return 0, nil
		}
		a.Voided, a.VoidedAt = true, now
		return a.Amount, nil
	case OpRelease:
		switch {
		case a.Voided || !a.Released.IsZero():
			return 0, nil
		case a.Captured == 0: // nothing was charged: a void
			a.Voided, a.VoidedAt = true, now
			return a.Amount, nil
		}
		back := a.Amount - a.Captured
		a.Released, a.ReleaseReason = now, ReleaseCompleted
		return back, nil
	}
	return 0, fmt.Errorf("%w: unknown operation", ErrInvalid)
}

// OpTx is what a backend's transaction offers RunOp: the operation stored
// under a key, the authorization (locked for the transaction), and writes.
type OpTx interface {
	// StoredOp returns the operation stored under op's merchant and key, or ErrNotFound.
	StoredOp(merchant, key string) (OpRecord, error)
	// Locked returns the authorization of (merchant, order id), locked until the end of the transaction, or ErrNotFound.
	Locked(merchant, orderID string) (Authorization, error)
	// Save writes a's lifecycle fields and gives credit back to its card (available += credit, within the limit).
	Save(a Authorization, credit int64) error
	// Record stores op under its key at at (a unique constraint on (merchant, key)).
	Record(op *Op, at time.Time) error
}

// RunOp is a backend's Operate inside its transaction tx: a retry under a
// stored key returns the record as it is (replayed); otherwise a lapsed
// hold is expired first, then op is applied, saved and recorded. commit is
// whether the transaction must be committed — also when op is refused after
// an expiry was saved, so the credit comes back whatever the answer.
func RunOp(tx OpTx, op *Op, now time.Time) (a Authorization, replayed, commit bool, err error) {
	if err := op.Check(); err != nil {
		return Authorization{}, false, false, err
	}
	prev, err := tx.StoredOp(op.Merchant, op.Key)
	switch {
	case err == nil && !prev.Same(op):
		return Authorization{}, false, false, ErrIdempotencyKeyReused
	case err == nil:
		a, err := tx.Locked(op.Merchant, op.OrderID)
		return a, err == nil, false, err
	case !errors.Is(err, ErrNotFound):
		return Authorization{}, false, false, err
	}
	if a, err = tx.Locked(op.Merchant, op.OrderID); err != nil {
		return Authorization{}, false, false, err
	}
	if back := Expire(&a, now); back > 0 {
		if err := tx.Save(a, back); err != nil {
			return Authorization{}, false, false, err
		}
		commit = true
	}
	before := a
	back, err := ApplyOp(&a, op, now)
	if err != nil {
		return before, false, commit, err
	}
	if err := tx.Save(a, back); err != nil {
		return Authorization{}, false, false, err
	}
	if err := tx.Record(op, now); err != nil {
		return Authorization{}, false, false, err
	}
	return a, false, true, nil
}
