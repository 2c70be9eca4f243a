package issuer

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"orderseal/internal/problem"
	"orderseal/internal/signedhttp"
	"orderseal/internal/web"
	"orderseal/issuer/api"
	"orderseal/issuer/store"
	"orderseal/order/money"
)

// The payment lifecycle after approval (DESIGN.md §6.8): captures, refunds
// and the release of a hold's remainder, each a signed merchant request
// idempotent by the merchant's key and judged against the issuer's own
// record of the authorization — its amount, currency and merchant, never
// the request's word for them.

// opProblem is the refusal of an operation, one stable code per cause.
func opProblem(err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return unknownAuth()
	case errors.Is(err, store.ErrCaptureAfterVoid):
		return problem.New(http.StatusConflict, api.CodeCaptureAfterVoid, "Authorization voided", "The authorization was voided; nothing can be captured.")
	case errors.Is(err, store.ErrCaptureExceeds):
		return problem.New(http.StatusUnprocessableEntity, api.CodeCaptureExceeds, "Capture exceeds the authorization", "The capture is larger than what the authorization still holds.")
	case errors.Is(err, store.ErrAuthorizationExpired):
		return problem.New(http.StatusConflict, api.CodeAuthorizationExpired, "Authorization expired", "The hold period passed and the hold was released; authorize again.")
	case errors.Is(err, store.ErrAuthorizationClosed):
		return problem.New(http.StatusConflict, api.CodeAuthorizationCompleted, "Authorization completed", "The rest of the hold was released; nothing more can be captured.")
	case errors.Is(err, store.ErrRefundExceeds):
		return problem.New(http.StatusUnprocessableEntity, api.CodeRefundExceedsCaptured, "Refund exceeds the captured amount", "The refund is larger than what was captured and not yet refunded.")
	case errors.Is(err, store.ErrVoidAfterCapture):
		return problem.New(http.StatusConflict, api.CodeVoidAfterCapture, "Already captured", "Part of the authorization was captured: refund it instead of voiding.")
	case errors.Is(err, store.ErrNotApproved):
		return problem.New(http.StatusConflict, api.CodeNotApproved, "Authorization declined", "A declined authorization holds nothing.")
	case errors.Is(err, store.ErrIdempotencyKeyReused):
		return problem.New(http.StatusConflict, api.CodeIdempotencyKeyReused, "Idempotency key reused", "This key was used for another operation; choose a new key.")
	case errors.Is(err, store.ErrOpCurrency):
		return problem.New(http.StatusUnprocessableEntity, api.CodeCurrencyMismatch, "Currency differs", "The operation's currency is not the authorization's.")
	case errors.Is(err, money.ErrUnsupported):
		return currencyUnsupported()
	case errors.Is(err, store.ErrInvalid):
		return problem.New(http.StatusUnprocessableEntity, api.CodeInvalidOperation, "Invalid operation", err.Error())
	}
	return unavailable(err)
}

func unknownAuth() error {
	return problem.New(http.StatusNotFound, api.CodeUnknownAuth, "Unknown authorization",
		"This merchant has no authorization for this order id.")
}

// operate makes op for the calling merchant and answers with the record:
// 201 when it was applied now, 200 for a retry under a stored key.
func (s *Server) operate(c echo.Context, op store.Op) error {
	op.Merchant, op.OrderID = signedhttp.Caller(c), c.Param("order_id")
	if op.Currency != "" {
		if err := money.Check(op.Currency); err != nil {
			return currencyUnsupported()
		}
	}
	a, replayed, err := s.store.Operate(c.Request().Context(), op)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrInvalid) {
			s.logger.Info("operation refused", "merchant", op.Merchant, "order_id", op.OrderID, "op", op.Kind,
				"amount", op.Amount, "cause", err.Error())
		}
		return opProblem(err)
	}
	status := http.StatusCreated
	if replayed {
		status = http.StatusOK
	} else {
		s.logger.Info("authorization "+op.Kind, "merchant", op.Merchant, "order_id", a.OrderID, "card_id", a.CardID,
			"amount", op.Amount, "state", a.State(), "captured", a.Captured, "refunded", a.Refunded)
	}
	return c.JSON(status, answer(a))
}

// capture answers POST /v1/authorizations/:order_id/captures.
func (s *Server) capture(c echo.Context) error {
	var req api.OpRequest
	if err := web.Bind(c, &req, 4<<10); err != nil {
		return err
	}
	return s.operate(c, store.Op{Key: req.IdempotencyKey, Kind: store.OpCapture, Amount: req.Amount, Currency: req.Currency, Final: req.Final})
}

// refund answers POST /v1/authorizations/:order_id/refunds.
func (s *Server) refund(c echo.Context) error {
	var req api.OpRequest
	if err := web.Bind(c, &req, 4<<10); err != nil {
		return err
	}
	if req.Final {
		return problem.New(http.StatusUnprocessableEntity, api.CodeInvalidOperation, "Invalid operation", "A refund is never final.")
	}
	return s.operate(c, store.Op{Key: req.IdempotencyKey, Kind: store.OpRefund, Amount: req.Amount, Currency: req.Currency})
}

// release answers POST /v1/authorizations/:order_id/release.
func (s *Server) release(c echo.Context) error {
	var req api.ReleaseRequest
	if err := web.Bind(c, &req, 4<<10); err != nil {
		return err
	}
	return s.operate(c, store.Op{Key: req.IdempotencyKey, Kind: store.OpRelease})
}

// getAuthorization answers GET /v1/authorizations/:order_id: the record as
// the issuer keeps it, a lapsed hold shown expired (and released) at once.
func (s *Server) getAuthorization(c echo.Context) error {
	ctx := c.Request().Context()
	merchant := signedhttp.Caller(c)
	a, err := s.store.Authorization(ctx, merchant, c.Param("order_id"))
	if errors.Is(err, store.ErrNotFound) {
		return unknownAuth()
	}
	if err != nil {
		return unavailable(err)
	}
	if a.Held() > 0 && !a.HoldUntil.IsZero() && !s.now().Before(a.HoldUntil) {
		if _, err := s.store.ExpireHolds(ctx); err != nil {
			return unavailable(err)
		}
		if a, err = s.store.Authorization(ctx, merchant, a.OrderID); err != nil {
			return unavailable(err)
		}
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, answer(a))
}

// ExpireHolds releases every lapsed hold every period until ctx ends: the
// issuer's side of DESIGN.md §6.8 "authorizations expire after the
// issuer's hold period". The merchant sees the expiry on its next step.
func (s *Server) ExpireHolds(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		if n, err := s.store.ExpireHolds(ctx); err != nil && ctx.Err() == nil {
			s.logger.Error("expiring holds", "err", err)
		} else if n > 0 {
			s.logger.Info("holds expired", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
