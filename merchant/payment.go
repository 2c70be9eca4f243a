package merchant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	carrierapi "orderseal/carrier/api"
	"orderseal/internal/outbox"
	issuerapi "orderseal/issuer/api"
	"orderseal/merchant/api"
	"orderseal/merchant/store"
	"orderseal/order/money"
)

// The payment lifecycle after authorization (DESIGN.md §6.8), through the
// outbox so that it survives restarts: a capture when the carrier reports
// the parcel shipped, partial captures and refunds the merchant's operator
// asks for (merchant capture, merchant refund), the release of what the
// hold still holds when the parcel is delivered, and a void when an order
// fails or its cardholder cancels it (relay.go). Every job's key is also
// the issuer's idempotency key, so a job replayed after a crash is answered
// as it was and moves no money twice. The merchant records the issuer's
// answer (store.Payment), never its own arithmetic.
const (
	jobCapture = "capture" // payload paymentJob; key: the issuer's idempotency key
	jobRefund  = "refund"  // payload paymentJob
	jobRelease = "release" // key: order id + "/complete"
)

// isPaymentJob reports whether kind is one of the lifecycle's jobs, whose
// keys start with the order id and a slash.
func isPaymentJob(kind string) bool {
	return kind == jobCapture || kind == jobRefund || kind == jobRelease
}

// paymentJob is the payload of a capture or refund job.
type paymentJob struct {
	Order  string `json:"order"`
	Amount int64  `json:"amount,omitempty"` // minor units; 0 with Rest
	Final  bool   `json:"final,omitempty"`  // capture: release the rest of the hold with it
	// Rest (captures): capture whatever the issuer still holds, final: the
	// carrier reported the parcel shipped.
	Rest bool `json:"rest,omitempty"`
}

// shipKey and completeKey are the keys of the jobs a carrier's report calls for.
func shipKey(id string) string     { return id + "/ship" }
func completeKey(id string) string { return id + "/complete" }

// shippedStatuses are the carrier's reports that the parcel left: the
// first of them to arrive calls for the capture (the others find it queued).
var shippedStatuses = map[string]bool{carrierapi.StatusPickedUp: true, carrierapi.StatusInTransit: true,
	carrierapi.StatusOutForDelivery: true, carrierapi.StatusDelivered: true}

// onTracking enqueues what a tracking event calls for: the capture when
// the parcel has left, the release of any rest of the hold once it is
// delivered. Called for every event, retried ones too: a job of the same
// key is not enqueued twice, and an event whose job was lost to a crash
// gets it on the carrier's retry.
func (s *Server) onTracking(ctx context.Context, o *store.Order, status string) error {
	if !shippedStatuses[status] {
		return nil
	}
	payload, _ := json.Marshal(paymentJob{Order: o.ID, Rest: true, Final: true})
	queued, err := s.cfg.Store.Enqueue(ctx, o.ID, store.Job{Kind: jobCapture, Key: shipKey(o.ID), Payload: payload},
		"capture asked: the carrier reports the parcel "+status)
	if err != nil {
		return err
	}
	if status == carrierapi.StatusDelivered {
		q, err := s.cfg.Store.Enqueue(ctx, o.ID, store.Job{Kind: jobRelease, Key: completeKey(o.ID)}, "order complete: the rest of the hold is released")
		if err != nil {
			return err
		}
		queued = queued || q
	}
	if queued {
		s.runner.Kick()
	}
	return nil
}

func parsePaymentJob(job outbox.Job) (paymentJob, error) {
	var p paymentJob
	if err := json.Unmarshal(job.Payload, &p); err != nil || p.Order == "" {
		return p, outbox.Permanent(relayError{"payment-job-invalid", fmt.Errorf("job %s: payload %q", job.Key, job.Payload)})
	}
	return p, nil
}

// issuerOf is the client of the issuer that authorized o.
func (s *Server) issuerOf(o *store.Order) (*issuerapi.Client, error) {
	c := s.issuers[o.Issuer]
	if c == nil {
		return nil, outbox.Permanent(relayError{api.CodeIssuerNotAccepted, fmt.Errorf("issuer %s no longer configured", o.Issuer)})
	}
	return c, nil
}

// answered checks that the issuer's answer is about o and records it.
func (s *Server) answered(ctx context.Context, o *store.Order, a *issuerapi.Authorization, detail string) error {
	if a.OrderID != o.ID || a.Amount != o.Total || a.Currency != o.Currency || a.Captured < 0 || a.Refunded < 0 || a.Refunded > a.Captured {
		return outbox.Permanent(relayError{reasonIssuerAnswer, errors.New("the issuer's answer is not about this order")})
	}
	p := store.Payment{OrderID: o.ID, State: a.State, Captured: a.Captured, Refunded: a.Refunded}
	if t, err := time.Parse(time.RFC3339, a.HoldUntil); err == nil {
		p.HoldUntil = t
	}
	if detail != "" {
		detail += fmt.Sprintf(" (issuer: %s, captured %s, refunded %s)", a.State,
			money.Format(a.Captured, a.Currency), money.Format(a.Refunded, a.Currency))
	}
	return s.cfg.Store.RecordPayment(ctx, p, detail)
}

// paymentJobOf reads a capture or refund job: its payload, its order and
// the client of the issuer that authorized the order.
func (s *Server) paymentJobOf(ctx context.Context, job outbox.Job) (paymentJob, *store.Order, *issuerapi.Client, error) {
	pj, err := parsePaymentJob(job)
	if err != nil {
		return pj, nil, nil, err
	}
	o, err := s.cfg.Store.Get(ctx, pj.Order)
	if err != nil {
		return pj, nil, nil, err
	}
	client, err := s.issuerOf(o)
	if err != nil {
		return pj, nil, nil, err
	}
	return pj, o, client, nil
}

// capture captures an order's payment: the amount the job names, or,
// when the carrier reported the parcel shipped, whatever the issuer's own
// record says is still held.
func (s *Server) capture(ctx context.Context, job outbox.Job) error {
	pj, o, client, err := s.paymentJobOf(ctx, job)
	if err != nil {
		return err
	}
	amount, key := pj.Amount, job.Key
	if pj.Rest {
		a, err := client.Get(ctx, o.ID)
		if err != nil {
			return classify(err)
		}
		if a.State != issuerapi.StateAuthorized && a.State != issuerapi.StatePartiallyCaptured {
			// Captured whole, completed, voided or expired: nothing to
			// capture; the merchant records what the issuer says.
			return s.answered(ctx, o, a, "nothing left to capture")
		}
		amount = a.Amount - a.Captured
		// The key names the amount: a retry after this capture finds the
		// authorization completed above, one before it asks the same.
		key += "/" + strconv.FormatInt(amount, 10)
	}
	a, err := client.Capture(ctx, o.ID, key, amount, o.Currency, pj.Final)
	if err != nil {
		return classify(err)
	}
	s.log.Info("payment captured", "order", o.ID, "amount", amount, "state", a.State)
	return s.answered(ctx, o, a, "captured "+money.Format(amount, o.Currency))
}

// refund refunds part or all of what was captured of an order.
func (s *Server) refund(ctx context.Context, job outbox.Job) error {
	pj, o, client, err := s.paymentJobOf(ctx, job)
	if err != nil {
		return err
	}
	a, err := client.Refund(ctx, o.ID, job.Key, pj.Amount, o.Currency)
	if err != nil {
		return classify(err)
	}
	s.log.Info("payment refunded", "order", o.ID, "amount", pj.Amount, "state", a.State)
	return s.answered(ctx, o, a, "refunded "+money.Format(pj.Amount, o.Currency))
}

// release releases what the issuer still holds of a delivered order.
func (s *Server) release(ctx context.Context, job outbox.Job) error {
	o, err := s.cfg.Store.Get(ctx, orderOfKey(job.Key))
	if err != nil {
		return err
	}
	client, err := s.issuerOf(o)
	if err != nil {
		return err
	}
	a, err := client.Release(ctx, o.ID, job.Key)
	if err != nil {
		return classify(err)
	}
	return s.answered(ctx, o, a, "")
}

// orderOfKey is the order id a job key starts with ("ord_…/…"; order ids
// are [A-Za-z0-9._-], order.ParseBundle).
func orderOfKey(key string) string {
	for i := range len(key) {
		if key[i] == '/' {
			return key[:i]
		}
	}
	return key
}

// paymentGiveUp records a payment job the issuer refused for good: the
// order keeps its state (the parcel is on its way, or delivered), its
// timeline names the refusal, and its payment the issuer's record of it
// (an expired hold shows as expired). It reports whether job was one.
func (s *Server) paymentGiveUp(ctx context.Context, job outbox.Job, err error) bool {
	if !isPaymentJob(job.Kind) {
		return false
	}
	id := orderOfKey(job.Key)
	reason := reasonOf(err)
	s.log.Error("payment step refused", "order", id, "step", job.Kind, "reason", reason)
	o, gerr := s.cfg.Store.Get(ctx, id)
	if gerr != nil {
		return true
	}
	detail := job.Kind + " refused by " + o.Issuer + ": " + reason
	if client := s.issuers[o.Issuer]; client != nil {
		if a, aerr := client.Get(ctx, o.ID); aerr == nil {
			if rerr := s.answered(ctx, o, a, detail); rerr == nil {
				return true
			}
		}
	}
	if nerr := s.cfg.Store.Note(ctx, o.ID, o.State, detail); nerr != nil {
		s.log.Error("recording a refused payment step", "order", id, "err", nerr)
	}
	return true
}

// paymentDeadline is how long a payment job is retried: as long as a hold
// may last, like a void.
func paymentDeadline(o *store.Order) time.Time { return o.Created.Add(voidPatience) }

// withPayment sets st's payment from the store's record, when there is one.
func withPayment(st *api.Status, p store.Payment, ok bool) {
	if !ok {
		return
	}
	st.Payment = &api.Payment{State: p.State, Captured: p.Captured, Refunded: p.Refunded}
	if !p.HoldUntil.IsZero() {
		st.Payment.HoldUntil = p.HoldUntil.Format(time.RFC3339)
	}
}
