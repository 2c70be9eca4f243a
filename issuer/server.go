package issuer

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"orderseal/internal/problem"
	"orderseal/internal/signedhttp"
	"orderseal/internal/web"
	"orderseal/internal/wire"
	"orderseal/issuer/api"
	"orderseal/issuer/store"
	"orderseal/keygen"
	"orderseal/order"
	"orderseal/order/money"
)

// Server is the issuer's HTTP API: merchants relay the header and issuer
// section of a bundle and get a signed approve or decline (DESIGN.md §6.5).
type Server struct {
	keys   keygen.Keyring
	store  store.Store
	hold   time.Duration
	logger *slog.Logger
	now    func() time.Time
	echo   *echo.Echo
}

// Options configure a Server.
type Options struct {
	Logger   *slog.Logger        // nil: discard
	Now      func() time.Time    // nil: time.Now; decides bundle windows and card expiry
	Verifier []signedhttp.Option // extra verifier options (tests: clock, nonce store)
	Hold     time.Duration       // how long an approval holds the credit; 0: store.DefaultHold
}

// NewServer wires the routes, every one behind the signed-request verifier
// and open to merchants only. keys must be an issuer's.
func NewServer(keys keygen.Keyring, st store.Store, opt Options) *Server {
	p := signedhttp.NewPartyServer(keys, st.Nonces(nil), api.MaxBody, opt.Logger, opt.Now, opt.Verifier...)
	s := &Server{keys: keys, store: st, logger: p.Logger, now: p.Now, echo: p.Echo, hold: opt.Hold}
	e := s.echo
	merchant := signedhttp.Allow(keygen.RoleMerchant)
	e.PUT(api.PathAuthorizations+":order_id", s.authorize, merchant)
	e.POST(api.PathAuthorizations+":order_id"+api.PathVoidSuffix, s.void, merchant)
	e.GET(api.PathAuthorizations+":order_id", s.getAuthorization, merchant)
	e.POST(api.PathAuthorizations+":order_id"+api.PathCapturesSuffix, s.capture, merchant)
	e.POST(api.PathAuthorizations+":order_id"+api.PathRefundsSuffix, s.refund, merchant)
	e.POST(api.PathAuthorizations+":order_id"+api.PathReleaseSuffix, s.release, merchant)
	return s
}

// Handler is the issuer's http.Handler.
func (s *Server) Handler() http.Handler { return web.WithDocument(s.echo, OpenAPI) }

// Routes are the routes the server answers, as "METHOD /path" in OpenAPI
// form, with the probes web.Daemon answers in front of it: API's routes,
// which TestOpenAPI holds against them.
func (s *Server) Routes() []string {
	return web.DaemonRoutes(s.echo)
}

func unavailable(err error) *problem.Problem {
	return problem.New(http.StatusServiceUnavailable, api.CodeUnavailable, "Issuer unavailable",
		"The issuer cannot decide now; retry later with the same bundle.").WithInternal(err)
}

func bundleInvalid(detail string) *problem.Problem {
	return problem.New(http.StatusBadRequest, api.CodeBundleInvalid, "Bundle invalid", detail)
}

func answer(a store.Authorization) api.Authorization {
	out := api.Authorization{OrderID: a.OrderID, HeaderHash: wire.B64(a.HeaderHash[:]), Decision: a.Decision,
		Reason: a.Reason, AuthCode: a.AuthCode, Amount: a.Amount, Currency: a.Currency,
		Decided: a.Decided.UTC().Format(time.RFC3339), Voided: a.Voided, Channel: a.Channel, Session: a.Session,
		State: a.State(), Captured: a.Captured, Refunded: a.Refunded}
	if !a.HoldUntil.IsZero() {
		out.HoldUntil = a.HoldUntil.UTC().Format(time.RFC3339)
	}
	if sched := a.Schedule(); sched != nil {
		out.Plan = &api.Plan{Installments: a.Installments}
		for _, in := range sched {
			out.Plan.Schedule = append(out.Plan.Schedule, api.Installment{N: in.N, Due: in.Due.Format(time.DateOnly), Amount: in.Amount})
		}
	}
	return out
}

func sessionMismatch() *problem.Problem {
	return problem.New(http.StatusUnprocessableEntity, api.CodeSessionMismatch, "Session mismatch",
		"An assisted order is relayed with the session its issuer section names, an online order with none.")
}

// authorize answers PUT /v1/authorizations/:order_id. Checks, in order:
// request shape; bundle structure and parties (this issuer, this merchant,
// this key system, the path's order id); an earlier answer for the same
// merchant and order id (same bundle: that answer again, even past the
// bundle's window, so a retry never loses an approval, provided the request
// names the session it was decided in; another bundle: order-id-reused);
// the bundle's window; the issuer section; the session the request names
// against the section's (DESIGN.md §6.7: a consultant's order names the one
// the merchant verified, an online order none). Only then is a decision
// taken and stored. Nothing is stored for a refused request.
func (s *Server) authorize(c echo.Context) error {
	ctx := c.Request().Context()
	var req api.AuthorizeRequest
	if err := web.Bind(c, &req, api.MaxBody); err != nil {
		return err
	}
	if err := money.Check(req.Currency); err != nil {
		return currencyUnsupported()
	}
	merchant := signedhttp.Caller(c)
	b, err := order.ParseBundle(req.Bundle)
	if err != nil {
		if code, ok := order.SuiteCode(err); ok {
			return problem.New(http.StatusBadRequest, code, "Bundle refused", err.Error())
		}
		return bundleInvalid("The bundle does not parse: " + err.Error())
	}
	if b.Parties[order.RoleIssuer] != s.keys.Identity() {
		return bundleInvalid("The bundle names another issuer.")
	}
	if b.System != s.keys.Params().System {
		return bundleInvalid("The bundle belongs to another key system.")
	}
	if b.Parties[order.RoleMerchant] != merchant {
		return problem.New(http.StatusForbidden, api.CodeWrongMerchant, "Wrong merchant",
			"The bundle was sealed for another merchant.")
	}
	if b.OrderID != c.Param("order_id") {
		return problem.New(http.StatusBadRequest, api.CodeOrderIDMismatch, "Order id mismatch",
			"The path and the bundle name different orders.")
	}
	if _, ok := b.Sections[order.RoleIssuer]; !ok || len(b.Sections) != 1 {
		return bundleInvalid("Relay the header and the issuer section only.")
	}
	hH := b.HeaderHash()
	// An earlier answer for this merchant and order id decides before any
	// check below. A new order has none, and the transaction that decides
	// it reads the same row anyway (Authorize answers a replay of the same
	// bundle, and refuses another with ErrOrderIDReused), so it is looked
	// up here only when a check refuses: one read of it for a new order,
	// not two.
	earlier := func(refusal func() error) error {
		prev, err := s.store.Authorization(ctx, merchant, b.OrderID)
		switch {
		case err == nil && prev.HeaderHash == hH && prev.Session != req.Session:
			s.logger.Info("session mismatch", "merchant", merchant, "order_id", b.OrderID, "cardholder", b.Cardholder)
			return sessionMismatch()
		case err == nil && prev.HeaderHash == hH:
			return c.JSON(http.StatusOK, s.answerFor(prev, b))
		case err == nil:
			return orderIDReused()
		case !errors.Is(err, store.ErrNotFound):
			return unavailable(err)
		}
		return refusal()
	}

	now := s.now()
	switch err := b.CheckTime(now); {
	case errors.Is(err, order.ErrExpired):
		return earlier(func() error {
			return problem.New(http.StatusUnprocessableEntity, api.CodeBundleExpired, "Bundle expired",
				"The bundle's validity window has passed.")
		})
	case errors.Is(err, order.ErrNotYetValid):
		return earlier(func() error {
			return problem.New(http.StatusUnprocessableEntity, api.CodeBundleExpired, "Bundle not yet valid",
				"The bundle was created in the future; check the cardholder's clock.")
		})
	case err != nil:
		return earlier(func() error { return bundleInvalid("The bundle's validity window is malformed.") })
	}
	sec, err := order.Open(b, s.keys, order.RoleIssuer, order.OpenOptions{Now: now})
	if err != nil {
		return earlier(func() error {
			// The cause names no plaintext, but a client learns nothing
			// useful from it either: one fixed detail for every failure.
			s.logger.Info("issuer section refused", "merchant", merchant, "order_id", b.OrderID, "cause", sectionCause(err))
			if code, ok := order.SuiteCode(err); ok { // the suite's refusals name no plaintext either
				return problem.New(http.StatusUnprocessableEntity, code, "Section refused", err.Error())
			}
			return problem.New(http.StatusUnprocessableEntity, api.CodeSectionRefused, "Section refused",
				"The issuer section does not open for this issuer under this header.")
		})
	}
	if sec.Session != req.Session {
		clearSection(sec)
		return earlier(func() error {
			s.logger.Info("session mismatch", "merchant", merchant, "order_id", b.OrderID, "cardholder", b.Cardholder)
			return sessionMismatch()
		})
	}
	ar := store.AuthRequest{Merchant: merchant, OrderID: b.OrderID, HeaderHash: hH, Cardholder: b.Cardholder,
		Total: sec.Total, Amount: req.Amount, Currency: req.Currency, Session: sec.Session, Hold: s.hold}
	if sec.Plan != nil {
		ar.Installments = sec.Plan.Installments
	}
	if sec.Card != nil {
		// The CVC is compared with the card's derived one and dropped with
		// the section: never stored, never logged.
		ar.Number, ar.Expiry, ar.CVC = sec.Card.Number, sec.Card.Expiry, sec.Card.CVC
	}
	clearSection(sec)
	a, replayed, err := s.store.Authorize(ctx, ar)
	ar.Number, ar.CVC = "", ""
	switch {
	case errors.Is(err, store.ErrOrderIDReused):
		return orderIDReused()
	case errors.Is(err, money.ErrUnsupported):
		return earlier(func() error { return currencyUnsupported() })
	case errors.Is(err, store.ErrInvalid):
		return earlier(func() error {
			return problem.New(http.StatusUnprocessableEntity, "invalid-request", "Invalid request", "The request is invalid.")
		})
	case err != nil:
		return unavailable(err)
	}
	if !replayed {
		s.logger.Info("authorization decided", "merchant", merchant, "order_id", a.OrderID, "cardholder", b.Cardholder,
			"channel", a.Channel, "session", a.Session,
			"decision", a.Decision, "reason", a.Reason, "card_id", a.CardID, "amount", a.Amount, "currency", a.Currency)
	}
	status := http.StatusCreated
	if replayed {
		status = http.StatusOK
	}
	return c.JSON(status, s.answerFor(a, b))
}

// answerFor is answer with, for an approved and unvoided order whose bundle
// names a vault, the approval the vault can verify.
func (s *Server) answerFor(a store.Authorization, b *order.Bundle) api.Authorization {
	out := answer(a)
	if a.Decision == api.Approved && !a.Voided && a.ReleaseReason != store.ReleaseExpired && b.Parties[order.RoleVault] != "" {
		tok, err := order.VaultApproval(s.keys, b)
		if err != nil {
			s.logger.Error("vault approval", "order_id", a.OrderID, "err", err)
			return out
		}
		out.VaultApproval = tok
	}
	return out
}

func orderIDReused() *problem.Problem {
	return problem.New(http.StatusConflict, api.CodeOrderIDReused, "Order id reused",
		"This merchant already used this order id with another bundle.")
}

// sectionCause names why a section did not open, for the log: a sentinel,
// never the wrapped text.
func sectionCause(err error) string {
	for _, e := range []error{order.ErrNotAccepted, order.ErrNoKEM, order.ErrKEM, order.ErrEpoch, order.ErrAuth, order.ErrCommitment, order.ErrSectionBody, order.ErrNoSection,
		order.ErrNotRecipient, order.ErrSystem, order.ErrParties, order.ErrExpired, order.ErrNotYetValid, order.ErrMalformed} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "other"
}

// clearSection drops the card fields of an opened section once copied.
// Go strings cannot be zeroed; this at least ends their reachability here.
func clearSection(sec *order.Section) {
	if sec.Card != nil {
		*sec.Card = order.Card{}
	}
}

// void answers POST /v1/authorizations/:order_id/void: once per order
// (its idempotency key is the order's), void-after-capture once part of
// it was captured, and an expired hold answered as it is.
func (s *Server) void(c echo.Context) error {
	merchant := signedhttp.Caller(c)
	a, err := s.store.Void(c.Request().Context(), merchant, c.Param("order_id"))
	if err != nil {
		return opProblem(err)
	}
	s.logger.Info("authorization voided", "merchant", merchant, "order_id", a.OrderID, "decision", a.Decision, "card_id", a.CardID)
	return c.JSON(http.StatusOK, answer(a))
}

// currencyUnsupported is the refusal of a currency package money does not
// know, in the words and code every party uses.
func currencyUnsupported() error {
	return problem.New(http.StatusUnprocessableEntity, money.CodeUnsupported, "Currency not supported", "currency: "+money.ErrUnsupported.Error())
}
