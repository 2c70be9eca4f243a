package merchant

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"orderseal/internal/problem"
	"orderseal/internal/signedhttp"
	"orderseal/merchant/api"
	"orderseal/merchant/store"
)

// cancel answers POST /v1/orders/:id/cancel from the order's cardholder:
// an order not yet booked with the carrier moves to cancelled, in the same
// transaction as the void job that revokes its address grant at the vault
// and releases its hold at the issuer (relay.go). A second cancel, a
// booked parcel, or an order with nothing held is refused with its own
// code and changes nothing.
func (s *Server) cancel(c echo.Context) error {
	ctx := c.Request().Context()
	o, err := s.cfg.Store.Get(ctx, c.Param("id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && o.Cardholder != signedhttp.Caller(c)) {
		return problem.New(http.StatusNotFound, api.CodeUnknownOrder, "Unknown order", "No such order for this cardholder.")
	}
	if err != nil {
		return unavailable(err)
	}
	if p := notCancellable(o.State); p != nil {
		return p
	}
	applied, err := s.cfg.Store.Apply(ctx, o.ID, store.Transition{From: []string{api.StateReceived, api.StateAuthorized},
		To: api.StateCancelled, Reason: "cancelled", Detail: "cancelled by the cardholder", Jobs: []string{jobVoid}})
	if err != nil {
		return unavailable(err)
	}
	if o, err = s.cfg.Store.Get(ctx, o.ID); err != nil {
		return unavailable(err)
	}
	if !applied { // another request moved it first
		if p := notCancellable(o.State); p != nil {
			return p
		}
		return unavailable(errors.New("cancel: order moved on meanwhile"))
	}
	s.runner.Kick()
	s.log.Info("order cancelled", "order", o.ID)
	tl, err := s.cfg.Store.Timeline(ctx, o.ID)
	if err != nil {
		return unavailable(err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, statusOf(o, tl))
}

// notCancellable is the refusal to cancel an order in state, nil when it may be.
func notCancellable(state string) *problem.Problem {
	switch state {
	case api.StateReceived, api.StateAuthorized:
		return nil
	case api.StateCancelled:
		return problem.New(http.StatusConflict, api.CodeAlreadyCancelled, "Already cancelled", "The order was cancelled already.")
	case api.StateShipped, api.StateDelivered:
		return problem.New(http.StatusConflict, api.CodeOrderShipped, "Already shipped", "The parcel is booked with the carrier; ask the merchant for a refund.")
	}
	return problem.New(http.StatusConflict, api.CodeNotCancellable, "Not cancellable", "The order was "+state+": nothing is held.")
}
