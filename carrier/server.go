package carrier

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"orderseal/carrier/api"
	"orderseal/carrier/store"
	"orderseal/internal/problem"
	"orderseal/internal/signedhttp"
	"orderseal/internal/web"
	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/order"
	"orderseal/order/address"
	vaultapi "orderseal/vault/api"
)

// Depositor is the part of the vault client booking needs: deposit an
// inline address for one merchant's order and invoice (DESIGN.md §7: it
// belongs to the order, revealed under its grant). *vaultapi.Client is one.
type Depositor interface {
	Deposit(ctx context.Context, merchant, orderID, invoice string, value []byte) (*vaultapi.RegisterResponse, error)
}

// Server is the carrier's HTTP API: merchants book shipments on it.
type Server struct {
	keys      keygen.Keyring
	store     store.Store
	vault     Depositor
	merchants Merchants
	logger    *slog.Logger
	now       func() time.Time
	echo      *echo.Echo
	policies  *order.PolicySet
}

// Options configure a Server.
type Options struct {
	Logger *slog.Logger // nil: discard; never given addresses
	// Merchants maps each merchant identity to the base URL its tracking
	// events go to; a merchant without an entry cannot book.
	Merchants Merchants
	Now       func() time.Time // nil: time.Now; bundle validity is judged by it
	Verifier  []signedhttp.Option
	// Policies are the section policies the carrier knows: a bundle naming
	// one of them by id must carry its hash, and the carrier section must
	// hold what it requires always. nil: order.DefaultPolicies.
	Policies *order.PolicySet
}

// NewServer wires the routes behind the signed-request verifier. vault
// receives inline addresses, so that the carrier stores only tokens.
func NewServer(keys keygen.Keyring, st store.Store, vault Depositor, opt Options) *Server {
	if keygen.RoleOf(keys.Identity()) != keygen.RoleCarrier {
		panic("carrier: NewServer with the key of " + keys.Identity())
	}
	p := signedhttp.NewPartyServer(keys, st.Nonces(nil), api.MaxBody, opt.Logger, opt.Now, opt.Verifier...)
	s := &Server{keys: keys, store: st, vault: vault, merchants: opt.Merchants, logger: p.Logger, now: p.Now, echo: p.Echo, policies: opt.Policies}
	if s.policies == nil {
		s.policies = order.DefaultPolicies()
	}
	e := s.echo
	e.PUT(api.PathShipments+":order_id", s.book, signedhttp.Allow("merchant"))
	e.POST(api.PathShipments+":order_id"+api.CancelSuffix, s.cancel, signedhttp.Allow("merchant"))
	return s
}

// Handler is the carrier's http.Handler.
func (s *Server) Handler() http.Handler { return web.WithDocument(s.echo, OpenAPI) }

// Routes are the routes the server answers, as "METHOD /path" in OpenAPI
// form, with the probes web.Daemon answers in front of it: API's routes,
// which TestOpenAPI holds against them.
func (s *Server) Routes() []string {
	return web.DaemonRoutes(s.echo)
}

// shipmentOut is the wire answer for sh.
func shipmentOut(sh store.Shipment) api.Shipment {
	return api.Shipment{OrderID: sh.OrderID, HeaderHash: wire.B64(sh.HeaderHash[:]), Tracking: sh.Tracking,
		Status: sh.Status, Booked: sh.Booked.Format(store.TimeLayout)}
}

// checkEventsURL accepts only absolute http(s) URLs without credentials.
func checkEventsURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil && u.Fragment == ""
}

// eventsURL is where the configuration sends merchant's events for
// orderID. A request's URL is refused unless it is that one, so that a
// mismatch shows at the merchant instead of events silently going elsewhere.
func (s *Server) eventsURL(merchant, orderID, requested string) (string, error) {
	configured, ok := s.merchants.EventsURL(merchant, orderID)
	if !ok {
		return "", problem.New(http.StatusForbidden, api.CodeMerchantNotConfigured, "Merchant not configured",
			"This carrier has no events URL configured for the calling merchant.")
	}
	if requested != "" && requested != configured {
		return "", problem.New(http.StatusUnprocessableEntity, api.CodeEventsURLMismatch, "Events URL not configured",
			"Tracking events go only to the URL the carrier is configured with for this merchant; omit events_url.")
	}
	return configured, nil
}

// checkPolicy holds the bundle to the section policy its header names,
// when the carrier knows that policy: the same hash, and the fields it
// always requires of the carrier section present.
func (s *Server) checkPolicy(b *order.Bundle, sec *order.Section) error {
	if b.Policy == nil {
		return nil
	}
	pol, ok := s.policies.ByRef(b.Policy)
	if pol == nil {
		return nil // a merchant's own policy: the merchant vouched for it
	}
	if !ok {
		return problem.New(http.StatusUnprocessableEntity, api.CodePolicyMismatch, "Policy mismatch",
			"The bundle names policy "+pol.ID+" with another hash than the policy of that id.")
	}
	if pol.Require[order.FieldRecipientPhone] == order.RequireAlways && (sec.Recipient == nil || sec.Recipient.Phone == "") {
		return problem.New(http.StatusUnprocessableEntity, api.CodePolicyRequirement, "Policy requirement",
			"Policy "+pol.ID+" requires the recipient's phone in the carrier section.")
	}
	return nil
}

// book is PUT /v1/shipments/:order_id. Checks run cheapest first, and
// nothing is stored (nor deposited) until every one has passed. A new
// booking answers 201; a retry of it (same header hash and invoice)
// answers 200 with the same shipment, its status being the current one.
func (s *Server) book(c echo.Context) error {
	ctx := c.Request().Context()
	merchant := signedhttp.Caller(c)
	var req api.BookingRequest
	if err := web.Bind(c, &req, api.MaxBody); err != nil {
		return err
	}
	if req.EventsURL != "" && !checkEventsURL(req.EventsURL) {
		return problem.New(http.StatusUnprocessableEntity, api.CodeEventsURL, "Bad events URL",
			"events_url must be an absolute http or https URL without credentials or fragment.")
	}
	b, err := order.ParseBundle(req.Bundle)
	if err != nil {
		if code, ok := order.SuiteCode(err); ok {
			return problem.New(http.StatusBadRequest, code, "Bundle refused", err.Error())
		}
		return problem.New(http.StatusBadRequest, api.CodeBundleInvalid, "Bundle invalid", err.Error())
	}
	if b.Parties[order.RoleCarrier] != s.keys.Identity() {
		return problem.New(http.StatusBadRequest, api.CodeBundleInvalid, "Bundle invalid", "The bundle names another carrier.")
	}
	if b.Parties[order.RoleMerchant] != merchant {
		return problem.New(http.StatusForbidden, api.CodeWrongMerchant, "Wrong merchant", "The bundle was sealed for another merchant.")
	}
	if c.Param("order_id") != b.OrderID {
		return problem.New(http.StatusBadRequest, api.CodeOrderIDMismatch, "Order id mismatch", "The path and the bundle name different orders.")
	}
	events, err := s.eventsURL(merchant, b.OrderID, req.EventsURL)
	if err != nil {
		return err
	}
	hH := b.HeaderHash()

	// A booked order answers before the bundle's window is judged again: a
	// retry of an acknowledged booking gets the same answer even late. A
	// new order has no booking, and the transaction that books it reads
	// the same row anyway (Book answers a retry and refuses another
	// bundle), so the booking is looked up here only when a check refuses,
	// and before an inline address goes to the vault: one read of it for a
	// new order, not two.
	answered := func() (bool, error) {
		switch old, err := s.store.ByOrder(ctx, merchant, b.OrderID); {
		case err == nil:
			if old.HeaderHash != hH || old.Invoice != req.Invoice {
				return true, problem.New(http.StatusConflict, api.CodeOrderIDReused, "Order id reused",
					"This order id is booked with another bundle or invoice.")
			}
			return true, c.JSON(http.StatusOK, shipmentOut(old))
		case !errors.Is(err, store.ErrNotFound):
			return true, err
		}
		return false, nil
	}
	refuse := func(refusal error) error {
		if done, err := answered(); done {
			return err
		}
		return refusal
	}

	switch err := b.CheckTime(s.now()); {
	case errors.Is(err, order.ErrExpired):
		return refuse(problem.New(http.StatusUnprocessableEntity, api.CodeBundleExpired, "Bundle expired", "The bundle's validity window has passed."))
	case errors.Is(err, order.ErrNotYetValid):
		return refuse(problem.New(http.StatusBadRequest, api.CodeBundleInvalid, "Bundle invalid", "The bundle was created in the future; check clocks."))
	case err != nil:
		return refuse(problem.New(http.StatusBadRequest, api.CodeBundleInvalid, "Bundle invalid", err.Error()))
	}
	sec, err := order.Open(b, s.keys, order.RoleCarrier, order.OpenOptions{Now: s.now()})
	if err != nil {
		if code, ok := order.SuiteCode(err); ok {
			return refuse(problem.New(http.StatusUnprocessableEntity, code, "Section refused", err.Error()))
		}
		if errors.Is(err, order.ErrExpired) {
			return refuse(problem.New(http.StatusUnprocessableEntity, api.CodeBundleExpired, "Bundle expired", "The bundle's validity window has passed."))
		}
		return refuse(problem.New(http.StatusUnprocessableEntity, api.CodeSectionRefused, "Section refused", "The carrier section does not open: "+err.Error()))
	}
	if p := s.checkPolicy(b, sec); p != nil {
		return refuse(p)
	}
	sh := store.Shipment{Merchant: merchant, OrderID: b.OrderID, HeaderHash: hH, Invoice: req.Invoice,
		GiftNote: sec.GiftNote, EventsURL: events}
	if b.Policy != nil {
		sh.Policy = b.Policy.ID
	}
	if r := sec.Recipient; r != nil {
		sh.RecipientName, sh.RecipientPhone = r.Name, r.Phone
	}
	if p := req.Parcel; p != nil {
		sender, err := address.Normalize(p.Sender)
		if err != nil {
			return refuse(problem.New(http.StatusUnprocessableEntity, api.CodeParcelInvalid, "Parcel invalid",
				"The parcel's sender is not a postal address: "+err.Error()))
		}
		p.Sender = sender
		raw, err := json.Marshal(p)
		if err != nil {
			return err
		}
		sh.Parcel, sh.Origin = string(raw), sender.Country
	}
	switch {
	case sec.ShipToken != "" && sec.ShipTo != nil:
		return refuse(problem.New(http.StatusUnprocessableEntity, api.CodeNoDestination, "Ambiguous destination",
			"The carrier section names both a token and an address; it must name exactly one."))
	case sec.ShipToken != "":
		sh.ShipToken, sh.Source = sec.ShipToken, store.Granted
	case sec.ShipTo != nil:
		norm, err := vaultapi.NormalizeAddress(*sec.ShipTo)
		if err != nil {
			// address-invalid, and the rule's own code in the detail's first word.
			return refuse(problem.New(http.StatusUnprocessableEntity, api.CodeAddressInvalid, "Address invalid",
				vaultapi.ValueCode(err)+": the inline address is not a valid postal address: "+err.Error()))
		}
		// A retry of a booking answers without depositing the address again.
		if done, err := answered(); done {
			clear(norm)
			return err
		}
		// The address rests in the vault, as this order's deposit, before
		// anything is stored here; the database keeps the token.
		res, err := s.vault.Deposit(ctx, merchant, b.OrderID, req.Invoice, norm)
		clear(norm)
		if err != nil {
			s.logger.Warn("vault deposit failed", "order_id", b.OrderID, "merchant", merchant, "err", err)
			return problem.New(http.StatusServiceUnavailable, api.CodeVaultDeposit, "Vault unavailable",
				"The inline address could not be deposited in the vault; retry later.").WithInternal(err)
		}
		sh.ShipToken, sh.Source = res.Token, store.Deposited
	default:
		return refuse(problem.New(http.StatusUnprocessableEntity, api.CodeNoDestination, "No destination",
			"The carrier section names neither a ship-to token nor an address."))
	}
	booked, created, err := s.store.Book(ctx, sh)
	if errors.Is(err, store.ErrOrderIDReused) {
		return problem.New(http.StatusConflict, api.CodeOrderIDReused, "Order id reused",
			"This order id is booked with another bundle, invoice or events URL.")
	}
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		s.logger.Info("shipment booked", "tracking", booked.Tracking, "merchant", merchant, "order_id", booked.OrderID,
			"source", string(booked.Source))
	}
	return c.JSON(status, shipmentOut(booked))
}

// cancel is POST /v1/shipments/:order_id/cancel: the calling merchant's
// booking is cancelled while its parcel has not left. A retry answers the
// cancelled shipment again; a parcel picked up (or any later event) is
// refused with parcel-left, and nothing changes.
func (s *Server) cancel(c echo.Context) error {
	merchant := signedhttp.Caller(c)
	sh, changed, err := s.store.Cancel(c.Request().Context(), merchant, c.Param("order_id"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return problem.New(http.StatusNotFound, api.CodeUnknownShipment, "Unknown shipment",
			"This carrier has no booking of the calling merchant for this order.")
	case errors.Is(err, store.ErrParcelLeft):
		return problem.New(http.StatusConflict, api.CodeParcelLeft, "Parcel left",
			"The parcel was picked up; its booking cannot be cancelled. Refund the order instead.")
	case err != nil:
		return err
	}
	if changed {
		s.logger.Info("booking cancelled", "tracking", sh.Tracking, "merchant", merchant, "order_id", sh.OrderID)
	}
	return c.JSON(http.StatusOK, shipmentOut(sh))
}
