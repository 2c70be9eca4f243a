package store

import "time"

// Payment is what the merchant knows of an order's payment after
// authorization (DESIGN.md §6.8): the issuer's last signed answer about
// it, never the merchant's own arithmetic. Amounts are minor units of the
// order's currency.
type Payment struct {
	OrderID   string
	State     string // the issuer's lifecycle state (issuer/api State…)
	Captured  int64
	Refunded  int64
	HoldUntil time.Time // when the uncaptured rest of the hold expires (zero: unknown)
	Updated   time.Time
}

// PaymentEvent is the timeline state of the entries RecordPayment and
// Enqueue append: a step of the payment, beside the order's own states.
const PaymentEvent = "payment"

// Job is an outbox job an order calls for whose key is not the order id:
// one of several captures or refunds of an order, each under its own
// idempotency key, with what it does in its payload.
type Job struct {
	Kind, Key string
	Payload   []byte
}
