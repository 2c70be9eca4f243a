package merchant

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	carrierapi "orderseal/carrier/api"
	"orderseal/internal/outbox"
	"orderseal/internal/problem"
	"orderseal/merchant/api"
	"orderseal/merchant/store"
)

// cancel answers POST /v1/orders/:id/cancel from the order's cardholder.
// An order not yet booked with the carrier moves to cancelling with the
// void job that revokes its address grant and releases its hold (relay.go);
// a booked one whose parcel has not left (as far as the carrier's events
// tell) moves to cancelling with the unbook job, which cancels the booking
// first and then queues the void: the carrier is the party that may still
// refuse (the parcel left meanwhile), so nothing is voided before it agreed.
// Each step goes through the outbox, in the transaction that calls for it;
// the void makes the order cancelled. A second cancel, a parcel that left,
// or an order with nothing held is refused with its own code and changes
// nothing.
func (s *Server) cancel(c echo.Context) error {
	ctx := c.Request().Context()
	o, tl, err := s.cardholderOrder(c)
	if err != nil {
		return err
	}
	if p := notCancellable(o.State, tl); p != nil {
		return p
	}
	t := store.Transition{From: []string{api.StateReceived, api.StateAuthorized}, To: api.StateCancelling,
		Detail: "cancel asked by the cardholder", Jobs: []string{jobVoid}}
	if o.State == api.StateShipped {
		t.From, t.Jobs = []string{api.StateShipped}, []string{jobUnbook}
		t.Detail += ": the booking " + o.Tracking + " is cancelled first"
	}
	applied, err := s.cfg.Store.Apply(ctx, o.ID, t)
	if err != nil {
		return unavailable(err)
	}
	if o, err = s.cfg.Store.Get(ctx, o.ID); err != nil {
		return unavailable(err)
	}
	if tl, err = s.cfg.Store.Timeline(ctx, o.ID); err != nil {
		return unavailable(err)
	}
	if !applied { // another request moved it first
		if p := notCancellable(o.State, tl); p != nil {
			return p
		}
		return unavailable(errors.New("cancel: order moved on meanwhile"))
	}
	s.runner.Kick()
	s.log.Info("order cancel asked", "order", o.ID, "booked", o.Tracking != "")
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, statusOf(o, tl))
}

// notCancellable is the refusal to cancel an order in state with timeline
// tl, nil when it may be. A booked order may be while the carrier has
// reported nothing after the booking, and no cancel of it was refused.
func notCancellable(state string, tl []store.Event) *problem.Problem {
	switch state {
	case api.StateReceived, api.StateAuthorized:
		return nil
	case api.StateCancelled:
		return problem.New(http.StatusConflict, api.CodeAlreadyCancelled, "Already cancelled", "The order was cancelled already.")
	case api.StateCancelling:
		return problem.New(http.StatusConflict, api.CodeAlreadyCancelled, "Already cancelling", "The order's cancel is under way.")
	case api.StateShipped:
		if !left(tl) {
			return nil
		}
		fallthrough
	case api.StateDelivered:
		return problem.New(http.StatusConflict, api.CodeOrderShipped, "Already shipped", "The parcel has left; ask the merchant for a refund.")
	}
	return problem.New(http.StatusConflict, api.CodeNotCancellable, "Not cancellable", "The order was "+state+": nothing is held.")
}

// left reports whether tl shows the parcel on its way: a tracking event
// after the booking, or a cancel the carrier refused for that reason.
func left(tl []store.Event) bool {
	for _, e := range tl {
		if e.State == api.StateCancelling {
			return true // asked before and refused: the carrier said it left
		}
		if e.State != carrierapi.StatusBooked && e.State != carrierapi.StatusCancelled && carrierStatus[e.State] {
			return true
		}
	}
	return false
}

// carrierStatus are the tracking statuses a timeline may hold.
var carrierStatus = func() map[string]bool {
	m := map[string]bool{carrierapi.StatusBooked: true, carrierapi.StatusCancelled: true}
	for _, s := range carrierapi.EventStatuses {
		m[s] = true
	}
	return m
}()

// unbook cancels the carrier's booking of an order being cancelled, then
// queues the void (keyed by the order id: queued once, however often this
// job runs). The carrier answers a retry as it did and keeps no second
// cancel. A parcel that had left is refused by the carrier: the order goes
// back to where its parcel is, nothing voided. A job keyed "<id>/late"
// cancels a booking made after the order was cancelled.
func (s *Server) unbook(ctx context.Context, job outbox.Job) error {
	o, err := s.cfg.Store.Get(ctx, orderOfKey(job.Key))
	if err != nil {
		return err
	}
	sh, err := s.carrier.Cancel(ctx, o.ID)
	switch {
	case hasCode(err, carrierapi.CodeParcelLeft):
		return s.unbookRefused(ctx, o, job.Key, carrierapi.CodeParcelLeft)
	case hasCode(err, carrierapi.CodeUnknownShipment):
		// Never booked (a booking in flight when the order was cancelled
		// that did not reach the carrier): nothing to cancel.
		if err := s.cfg.Store.Note(ctx, o.ID, o.State, "no booking to cancel at "+o.Carrier); err != nil {
			return err
		}
	case err != nil:
		return classify(err)
	default:
		if sh.OrderID != o.ID || (o.Tracking != "" && sh.Tracking != o.Tracking) || sh.Status != carrierapi.StatusCancelled {
			return outbox.Permanent(relayError{reasonCarrierAnswer, errors.New("the carrier's answer is not this order's cancelled booking")})
		}
		s.log.Info("booking cancelled", "order", o.ID, "tracking", sh.Tracking)
	}
	if o.State != api.StateCancelling || job.Key != o.ID {
		return nil // a late booking's cancel: the order's own cancel voids it
	}
	queued, err := s.cfg.Store.Enqueue(ctx, o.ID, store.Job{Kind: jobVoid, Key: o.ID}, "")
	if queued {
		s.runner.Kick()
	}
	return err
}

// unbookRefused records the carrier's refusal to cancel an order's booking
// (the unbook job keyed key): the order goes back to shipped (delivered if
// the carrier said so meanwhile), its hold untouched; the capture on
// shipment follows the carrier's events as usual. A late booking's refusal
// is only noted: that order's own cancel went ahead without a booking.
func (s *Server) unbookRefused(ctx context.Context, o *store.Order, key, reason string) error {
	if key != o.ID {
		s.log.Error("the carrier refused to cancel a late booking", "order", o.ID, "reason", reason)
		return s.cfg.Store.Note(ctx, o.ID, o.State, "the carrier refused to cancel a booking made while the order was cancelled: "+reason)
	}
	tl, err := s.cfg.Store.Timeline(ctx, o.ID)
	if err != nil {
		return err
	}
	to := api.StateShipped
	for _, e := range tl {
		if e.State == carrierapi.StatusDelivered {
			to = api.StateDelivered
		}
	}
	applied, err := s.cfg.Store.Apply(ctx, o.ID, store.Transition{From: []string{api.StateCancelling}, To: to,
		Detail: "cancel refused by " + o.Carrier + ": " + reason + "; ask the merchant for a refund"})
	if err != nil {
		return err
	}
	if applied {
		s.log.Warn("cancel refused by the carrier", "order", o.ID, "reason", reason)
	}
	return nil
}
