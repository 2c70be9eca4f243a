package merchant

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	carrierapi "orderseal/carrier/api"
	"orderseal/internal/outbox"
	"orderseal/internal/problem"
	"orderseal/internal/signedhttp"
	"orderseal/internal/signedhttp/httpsig"
	"orderseal/internal/web"
	issuerapi "orderseal/issuer/api"
	"orderseal/keygen"
	"orderseal/merchant/api"
	"orderseal/merchant/store"
	"orderseal/order"
	"orderseal/order/money"
	vaultapi "orderseal/vault/api"
)

// Peer is another party the merchant talks to: its identity and base URL.
type Peer struct{ Identity, URL string }

// ParsePeer reads "role:name=http://host:port".
func ParsePeer(s string, role keygen.Role) (Peer, error) {
	id, u, ok := strings.Cut(s, "=")
	if !ok {
		return Peer{}, fmt.Errorf("%q: want %s:NAME=URL", s, role)
	}
	if err := keygen.ValidateIdentity(id); err != nil || keygen.RoleOf(id) != role {
		return Peer{}, fmt.Errorf("%q: %q is not a %s identity", s, id, role)
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		return Peer{}, fmt.Errorf("%q: %q is not an http(s) URL", s, u)
	}
	return Peer{Identity: id, URL: strings.TrimRight(u, "/")}, nil
}

// Config is what a merchant node needs.
type Config struct {
	Keys      keygen.Keyring
	Store     store.Store
	Carrier   Peer   // the carrier this merchant ships with
	Issuers   []Peer // issuers whose cards it accepts
	Vault     Peer   // the vault it asks for address grants
	PublicURL string // where the carrier posts tracking events, e.g. http://127.0.0.1:8080
	MaxItems  int    // 0: 100
	// Companies run this merchant's phone orders: a consultant logs in only
	// with one of their signatures (DESIGN.md §6.7). None: no assisted orders.
	Companies []string
	MaxShift  time.Duration // longest assisted session; 0: api.DefaultMaxShift
	// Policies are published in the order form; a bundle naming another
	// policy is refused. nil: order.DefaultPolicies.
	Policies *order.PolicySet
	// Sender is the ship-from and return address printed on labels (the
	// shop's own); zero: none is declared, and the carrier prints the
	// merchant's identity.
	Sender order.Address
	// Service names the carrier service booked for a domestic parcel ("":
	// "Standard"), ServiceAbroad for one abroad ("": "International"), and
	// ItemWeightG each item's declared weight in grams (0: 400).
	Service       string
	ServiceAbroad string
	ItemWeightG   int

	Logger     *slog.Logger
	Now        func() time.Time
	HTTPClient *http.Client // for relays; nil: 30 s timeout
	Verifier   []signedhttp.Option
	Outbox     func(*outbox.Runner) // tunes the relay runner (tests)
	// HoldSweep is how often Run asks the issuers about holds past their
	// end (0: DefaultHoldSweep; negative: never).
	HoldSweep time.Duration
	// VaultCheckpointFile keeps the newest audit checkpoint the vault
	// hands out with its grants ("": not kept).
	VaultCheckpointFile string
	// Pages are the browser pages served beside the API (the checkout,
	// merchant/checkout; the dashboard, merchant/dashboard): each is mounted
	// under its own prefix, unsigned, with its own security headers and
	// authentication. None: the node serves no HTML.
	Pages []Page
}

// Page is a browser page and its files, mounted under Prefix.
type Page struct {
	Prefix  string // "/checkout/"
	Handler http.Handler
}

// Server is the merchant web node: intake, status, tracking events, and the
// relay runner behind them.
type Server struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	echo    *echo.Echo
	runner  *outbox.Runner
	issuers map[string]*issuerapi.Client
	bundles bundleCache // parsed bundles of the orders in flight, for the relay
	carrier *carrierapi.Client
	vault   *vaultapi.Client
	dir     directory

	cpMu      sync.Mutex
	cpSeq     int64                     // seq of the vault checkpoint kept
	cpNext    *vaultapi.AuditCheckpoint // newer than cpSeq, waiting for the writer
	cpWriting bool                      // writeCheckpoints is writing
	cpTimer   *time.Timer               // the next write, when one is due
	cpLast    time.Time                 // when the file was last replaced
	cpWrites  int                       // replacements made (tests)
}

// policies is the published policy set.
func (s *Server) policies() *order.PolicySet {
	if s.cfg.Policies != nil {
		return s.cfg.Policies
	}
	return defaultPolicies()
}

var defaultPolicies = sync.OnceValue(order.DefaultPolicies)

// NewServer wires the routes. Every route is behind the signed-request
// verifier and limited to the role that may call it; the order form too
// (DESIGN.md §5 Hardening), so its answer is signed under K(caller, merchant)
// and a man in the middle cannot swap the parties it names.
func NewServer(cfg Config) (*Server, error) {
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now, issuers: map[string]*issuerapi.Client{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.cfg.MaxItems == 0 {
		s.cfg.MaxItems = 100
	}
	if s.cfg.MaxShift == 0 {
		s.cfg.MaxShift = api.DefaultMaxShift
	}
	if s.cfg.MaxShift < api.MinShift {
		return nil, fmt.Errorf("the longest assisted session must be at least %s", api.MinShift)
	}
	for _, c := range cfg.Companies {
		if err := keygen.ValidateIdentity(c); err != nil || keygen.RoleOf(c) != keygen.RoleCompany {
			return nil, fmt.Errorf("%q is not a company identity", c)
		}
	}
	if keygen.RoleOf(cfg.Keys.Identity()) != keygen.RoleMerchant {
		return nil, fmt.Errorf("the key is for %s, not a merchant", cfg.Keys.Identity())
	}
	if len(cfg.Issuers) == 0 {
		return nil, errors.New("no issuer configured")
	}
	for _, p := range cfg.Issuers {
		c, err := issuerapi.NewClient(cfg.Keys, p.URL, p.Identity, cfg.HTTPClient)
		if err != nil {
			return nil, err
		}
		s.issuers[p.Identity] = c
	}
	var err error
	if s.carrier, err = carrierapi.NewClient(cfg.Keys, cfg.Carrier.URL, cfg.Carrier.Identity, cfg.HTTPClient); err != nil {
		return nil, err
	}
	if s.vault, err = vaultapi.NewClient(cfg.Keys, cfg.Vault.URL, cfg.Vault.Identity, cfg.HTTPClient); err != nil {
		return nil, err
	}
	if s.cfg.PublicURL, err = httpsig.BaseURL("public", cfg.PublicURL); err != nil {
		return nil, err
	}

	if cfg.VaultCheckpointFile != "" {
		s.cpSeq = readCheckpointSeq(cfg.VaultCheckpointFile)
	}
	s.runner = &outbox.Runner{Store: cfg.Store.Outbox(), Logger: s.log, Now: s.now, Poll: time.Second, Workers: DefaultRelayWorkers,
		Handlers: map[string]outbox.Handler{
			jobAuthorize: s.authorize,
			jobGrant:     s.grant,
			jobBook:      s.book,
			jobVoid:      s.void,
			jobUnbook:    s.unbook,
			jobCapture:   s.capture,
			jobRefund:    s.refund,
			jobRelease:   s.release,
		},
		GiveUp:   s.giveUp,
		Deadline: s.deadline,
	}
	if cfg.Outbox != nil {
		cfg.Outbox(s.runner)
	}

	// The replay memory is the store's, durable and shared by every node
	// on this database; cfg.Verifier (tests) may replace it.
	vopts := append([]signedhttp.Option{signedhttp.WithMaxBody(api.MaxAssistedBody), signedhttp.WithLogger(s.log),
		signedhttp.WithNonceStore(cfg.Store.Nonces(nil))}, cfg.Verifier...)
	verify := signedhttp.NewVerifier(cfg.Keys, vopts...).Middleware()
	e := web.New(s.log)
	e.GET(api.PathOrderForm, s.orderForm, verify, signedhttp.Allow(keygen.RoleCardholder, keygen.RoleConsultant))
	e.POST(api.PathOrders, s.intake, verify, signedhttp.Allow(keygen.RoleCardholder, keygen.RoleConsultant))
	e.GET(api.PathOrder+":id", s.status, verify, signedhttp.Allow(keygen.RoleCardholder, keygen.RoleConsultant))
	e.POST(api.PathSessions, s.login, verify, signedhttp.Allow(keygen.RoleConsultant))
	e.GET(api.PathSession+":id", s.session, verify, signedhttp.Allow(keygen.RoleConsultant))
	e.POST(api.PathSession+":id"+api.LogoutSuffix, s.logout, verify, signedhttp.Allow(keygen.RoleConsultant))
	e.POST(api.PathAssistedOrders, s.assistedIntake, verify, signedhttp.Allow(keygen.RoleConsultant))
	e.POST(api.PathOrder+":id"+api.EventsSuffix, s.carrierEvent, verify, signedhttp.Allow(keygen.RoleCarrier))
	e.POST(api.PathOrder+":id"+api.CancelSuffix, s.cancel, verify, signedhttp.Allow(keygen.RoleCardholder))
	for _, p := range cfg.Pages {
		h := echo.WrapHandler(p.Handler)
		e.GET(p.Prefix+"*", h)
		e.HEAD(p.Prefix+"*", h)
		e.POST(p.Prefix+"*", h) // a page's own handler refuses what it does not take
		e.GET(strings.TrimSuffix(p.Prefix, "/"), func(c echo.Context) error { return c.Redirect(http.StatusFound, p.Prefix) })
	}
	s.echo = e
	return s, nil
}

// Handler is the node's http.Handler.
func (s *Server) Handler() http.Handler { return web.WithDocument(s.echo, OpenAPI) }

// Routes are the routes the server answers, as "METHOD /path" in OpenAPI
// form, with the probes web.Daemon answers in front of it: API's routes,
// which TestOpenAPI holds against them.
func (s *Server) Routes() []string {
	return web.DaemonRoutes(s.echo)
}

// Run relays stored orders until ctx ends; orders a previous process left
// half-relayed resume at once. Beside the relay, it sweeps for holds that
// ended (Config.HoldSweep).
// DefaultRelayWorkers is how many relay jobs a node runs at once. A job
// mostly waits for a peer's answer, so the relay needs many in flight to
// keep up with its intake; each peer takes up to
// signedhttp.DefaultPerParty requests of one party at once.
const DefaultRelayWorkers = 32

func (s *Server) Run(ctx context.Context) {
	defer s.flushCheckpoint()
	d := cmp.Or(s.cfg.HoldSweep, DefaultHoldSweep)
	if d < 0 {
		s.runner.Run(ctx)
		return
	}
	done := make(chan struct{})
	go func() { defer close(done); s.sweepHolds(ctx, d) }()
	s.runner.Run(ctx)
	<-done
}

func unavailable(err error) *problem.Problem {
	return problem.New(http.StatusServiceUnavailable, api.CodeMerchantUnavailable, "Merchant unavailable",
		"The order could not be stored now; retry later.").WithInternal(err)
}

func (s *Server) form(ctx context.Context) (*api.OrderForm, error) {
	products, err := s.cfg.Store.Catalog(ctx)
	if err != nil {
		return nil, err
	}
	f := &api.OrderForm{Merchant: s.cfg.Keys.Identity(), Carrier: s.cfg.Carrier.Identity, Vault: s.cfg.Vault.Identity,
		MaxItems: s.cfg.MaxItems, Catalog: make([]api.Product, 0, len(products))}
	for _, p := range s.cfg.Issuers {
		f.Issuers = append(f.Issuers, p.Identity)
	}
	for _, p := range products {
		f.Currency = p.Currency // one currency per shop: the CLI refuses to mix them
		f.Catalog = append(f.Catalog, api.Product{SKU: p.SKU, Name: p.Name, UnitPrice: p.UnitPrice})
	}
	f.Directory = s.directoryForForm(ctx)
	f.Policies = s.policies()
	f.ShipFrom = s.cfg.Sender.Country
	return f, nil
}

func (s *Server) orderForm(c echo.Context) error {
	f, err := s.form(c.Request().Context())
	if err != nil {
		return unavailable(err)
	}
	return c.JSON(http.StatusOK, f)
}

// intake validates a bundle, opens the merchant's section, checks it against
// the catalog and stores it with its first relay job before answering 202.
// Anything refused stores nothing.
func (s *Server) intake(c echo.Context) error {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, api.MaxBody+1))
	if err != nil {
		return problem.New(http.StatusBadRequest, api.CodeBundleInvalid, "Unreadable body", "The request body could not be read.")
	}
	return s.accept(c, body, nil)
}

// accept runs the intake checks on a bundle and stores it. assisted is the
// session and proof of an order a consultant keyed in, nil for an online one.
func (s *Server) accept(c echo.Context, body []byte, assisted *api.AssistedOrder) error {
	ctx := c.Request().Context()
	b, err := order.ParseBundle(body)
	if err != nil {
		if code, ok := order.SuiteCode(err); ok {
			return problem.New(http.StatusBadRequest, code, "Bundle refused", err.Error())
		}
		switch {
		case errors.Is(err, order.ErrTooLarge):
			return problem.New(http.StatusRequestEntityTooLarge, problem.CodeBodyTooLarge, "Bundle too large",
				fmt.Sprintf("A bundle is at most %d bytes.", order.MaxBundleSize))
		case errors.Is(err, order.ErrVersion), errors.Is(err, order.ErrSuite), errors.Is(err, order.ErrSystem):
			return problem.New(http.StatusBadRequest, api.CodeUnsupportedVersion, "Unsupported bundle", err.Error())
		}
		return problem.New(http.StatusBadRequest, api.CodeBundleInvalid, "Invalid bundle", err.Error())
	}
	if b.System != s.cfg.Keys.Params().System {
		return problem.New(http.StatusBadRequest, api.CodeUnsupportedVersion, "Unsupported bundle", order.ErrSystem.Error())
	}
	if caller := signedhttp.Caller(c); b.Cardholder != caller {
		return problem.New(http.StatusForbidden, api.CodeCardholderMismatch, "Not your bundle",
			"The bundle names another cardholder than the one who signed the request.")
	}
	if consultant := keygen.RoleOf(b.Cardholder) == keygen.RoleConsultant; consultant != (assisted != nil) {
		if consultant {
			return problem.New(http.StatusForbidden, api.CodeNotAssisted, "Assisted order without a session",
				"An order keyed by a consultant goes to "+api.PathAssistedOrders+" with its session's proof.")
		}
		return problem.New(http.StatusForbidden, api.CodeNotAssisted, "Not an assisted order",
			"Only a bundle sealed by a consultant is taken as an assisted order.")
	}
	if err := s.checkParties(b); err != nil {
		return err
	}
	if err := b.CheckTime(s.now()); err != nil {
		// A bundle sent again after its expiry because the first answer was
		// lost gets that answer: its order is stored, nothing is done twice.
		if acc, ok := s.storedAlready(ctx, b); ok {
			return c.JSON(http.StatusAccepted, acc)
		}
		return problem.New(http.StatusUnprocessableEntity, api.CodeBundleExpired, "Bundle outside its validity window", err.Error())
	}
	if b.Policy != nil {
		if _, ok := s.policies().ByRef(b.Policy); !ok {
			return problem.New(http.StatusUnprocessableEntity, api.CodePolicyUnknown, "Unknown section policy",
				"The bundle names a section policy (id and hash) that this merchant's order form does not publish.")
		}
	}
	sec, err := order.Open(b, s.cfg.Keys, order.RoleMerchant, order.OpenOptions{Now: s.now()})
	if err != nil {
		if code, ok := order.SuiteCode(err); ok {
			return problem.New(http.StatusUnprocessableEntity, code, "Merchant section refused", err.Error())
		}
		if errors.Is(err, order.ErrExpired) || errors.Is(err, order.ErrNotYetValid) {
			return problem.New(http.StatusUnprocessableEntity, api.CodeBundleExpired, "Bundle outside its validity window", err.Error())
		}
		return problem.New(http.StatusUnprocessableEntity, api.CodeSectionRefused, "Merchant section refused",
			"The merchant section does not open or does not match its commitment.")
	}
	if assisted != nil {
		if p := s.checkSession(ctx, b, sec, assisted); p != nil {
			return p
		}
	}
	if p := s.checkCatalog(ctx, sec); p != nil {
		return p
	}
	if _, ok := b.Parties[order.RoleVault]; ok && sec.ShipToken == "" {
		return problem.New(http.StatusUnprocessableEntity, api.CodeDestinationMissing, "Ship-to token missing",
			"The bundle grants a vault token but the merchant section names none.")
	}
	items, err := json.Marshal(sec.Items)
	if err != nil {
		return err
	}
	hh := b.HeaderHash()
	o := &store.Order{ID: b.OrderID, Cardholder: b.Cardholder, HeaderHash: hh[:], Bundle: body,
		Issuer: b.Parties[order.RoleIssuer], Carrier: b.Parties[order.RoleCarrier], Vault: b.Parties[order.RoleVault],
		ShipToken: sec.ShipToken, BuyerName: sec.BuyerName, BuyerEmail: sec.BuyerEmail, Items: items,
		Total: sec.Total.Amount, Currency: sec.Total.Currency, State: api.StateReceived, Session: sec.Session}
	stored, created, err := s.cfg.Store.Insert(ctx, o, jobAuthorize)
	if errors.Is(err, store.ErrOrderReused) {
		return problem.New(http.StatusConflict, api.CodeOrderIDReused, "Order id already used",
			"A different bundle was already submitted under this order id.")
	}
	if p := sessionProblem(err); p != nil {
		return p
	}
	if err != nil {
		return unavailable(err)
	}
	if created {
		s.bundles.put(o.ID, body, b, false)
		s.bundles.setDest(o.ID, sec.ShipCountry)
		if assisted != nil {
			s.log.Info("assisted order received", "order", o.ID, "consultant", o.Cardholder, "session", o.Session,
				"device", assisted.Device, "issuer", o.Issuer, "total", o.Total, "currency", o.Currency)
		} else {
			s.log.Info("order received", "order", o.ID, "issuer", o.Issuer, "carrier", o.Carrier, "total", o.Total, "currency", o.Currency)
		}
		s.runner.Kick()
	}
	return c.JSON(http.StatusAccepted, api.Accepted{OrderID: stored.ID, State: stored.State})
}

// storedAlready returns the acceptance of an order stored under b's id,
// cardholder and header hash: b is the bundle that order came in.
func (s *Server) storedAlready(ctx context.Context, b *order.Bundle) (api.Accepted, bool) {
	o, err := s.cfg.Store.Get(ctx, b.OrderID)
	if err != nil {
		return api.Accepted{}, false
	}
	hh := b.HeaderHash()
	if o.Cardholder != b.Cardholder || !bytes.Equal(o.HeaderHash, hh[:]) {
		return api.Accepted{}, false
	}
	return api.Accepted{OrderID: o.ID, State: o.State}, true
}

func (s *Server) checkParties(b *order.Bundle) error {
	if b.Parties[order.RoleMerchant] != s.cfg.Keys.Identity() {
		return problem.New(http.StatusUnprocessableEntity, api.CodeWrongMerchant, "Bundle for another merchant",
			"The bundle's merchant party is not this merchant.")
	}
	if b.Parties[order.RoleCarrier] != s.cfg.Carrier.Identity {
		return problem.New(http.StatusUnprocessableEntity, api.CodeCarrierNotAccepted, "Carrier not accepted",
			"This merchant ships with "+s.cfg.Carrier.Identity+".")
	}
	if s.issuers[b.Parties[order.RoleIssuer]] == nil {
		return problem.New(http.StatusUnprocessableEntity, api.CodeIssuerNotAccepted, "Issuer not accepted",
			"This merchant does not accept cards of that issuer; see the order form.")
	}
	if v, ok := b.Parties[order.RoleVault]; ok && v != s.cfg.Vault.Identity {
		return problem.New(http.StatusUnprocessableEntity, api.CodeVaultNotAccepted, "Vault not accepted",
			"This merchant works with "+s.cfg.Vault.Identity+".")
	}
	return nil
}

// checkCatalog compares the merchant's section with the catalog: every SKU
// known, name and unit price as listed, one currency, and the total the sum
// of the lines.
func (s *Server) checkCatalog(ctx context.Context, sec *order.Section) *problem.Problem {
	if sec.Total == nil || len(sec.Items) == 0 {
		return problem.New(http.StatusUnprocessableEntity, api.CodeCatalogMismatch, "No items",
			"The merchant section carries no items or no total.")
	}
	if len(sec.Items) > s.cfg.MaxItems {
		return problem.New(http.StatusUnprocessableEntity, api.CodeCatalogMismatch, "Too many lines",
			fmt.Sprintf("An order has at most %d lines.", s.cfg.MaxItems))
	}
	if err := money.Check(sec.Total.Currency); err != nil {
		return problem.New(http.StatusUnprocessableEntity, money.CodeUnsupported, "Currency not supported", "currency: "+err.Error())
	}
	skus := make([]string, 0, len(sec.Items))
	for _, it := range sec.Items {
		skus = append(skus, it.SKU)
	}
	slices.Sort(skus)
	products, err := s.cfg.Store.Products(ctx, slices.Compact(skus))
	if err != nil {
		return unavailable(err)
	}
	bySKU := make(map[string]store.Product, len(products))
	for _, p := range products {
		bySKU[p.SKU] = p
	}
	var sum int64
	for _, it := range sec.Items {
		p, ok := bySKU[it.SKU]
		if !ok {
			return problem.New(http.StatusUnprocessableEntity, api.CodeCatalogMismatch, "Unknown product", "No product "+it.SKU+" in the catalog.")
		}
		if it.UnitPrice != p.UnitPrice || it.Name != p.Name {
			return problem.New(http.StatusUnprocessableEntity, api.CodeCatalogMismatch, "Price or name differs",
				fmt.Sprintf("%s is listed as %q at %s.", p.SKU, p.Name, money.Format(p.UnitPrice, p.Currency)))
		}
		if p.Currency != sec.Total.Currency {
			return problem.New(http.StatusUnprocessableEntity, api.CodeCurrencyMismatch, "Currency differs",
				"The catalog prices "+p.SKU+" in "+p.Currency+".")
		}
		line := it.Qty * it.UnitPrice
		if it.Qty <= 0 || (it.UnitPrice != 0 && line/it.UnitPrice != it.Qty) || sum+line < sum {
			return problem.New(http.StatusUnprocessableEntity, api.CodeTotalMismatch, "Amount overflow", "The order lines overflow.")
		}
		sum += line
	}
	if sum != sec.Total.Amount {
		return problem.New(http.StatusUnprocessableEntity, api.CodeTotalMismatch, "Total differs",
			fmt.Sprintf("The lines add up to %s, the order says %s.", money.Format(sum, sec.Total.Currency), money.Format(sec.Total.Amount, sec.Total.Currency)))
	}
	return nil
}

// cardholderOrder reads the order the path names, and its timeline, for
// the calling cardholder: another cardholder's order is as unknown as one
// that does not exist.
func (s *Server) cardholderOrder(c echo.Context) (*store.Order, []store.Event, error) {
	ctx := c.Request().Context()
	o, err := s.cfg.Store.Get(ctx, c.Param("id"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && o.Cardholder != signedhttp.Caller(c)) {
		return nil, nil, problem.New(http.StatusNotFound, api.CodeUnknownOrder, "Unknown order", "No such order for this cardholder.")
	}
	if err != nil {
		return nil, nil, unavailable(err)
	}
	tl, err := s.cfg.Store.Timeline(ctx, o.ID)
	if err != nil {
		return nil, nil, unavailable(err)
	}
	return o, tl, nil
}

func (s *Server) status(c echo.Context) error {
	o, tl, err := s.cardholderOrder(c)
	if err != nil {
		return err
	}
	p, ok, err := s.cfg.Store.Payment(c.Request().Context(), o.ID)
	if err != nil {
		return unavailable(err)
	}
	st := statusOf(o, tl)
	withPayment(&st, p, ok)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, st)
}

func statusOf(o *store.Order, tl []store.Event) api.Status {
	st := api.Status{OrderID: o.ID, State: o.State, Reason: o.Reason, Total: o.Total, Currency: o.Currency,
		AuthCode: o.AuthCode, Invoice: o.Invoice, Tracking: o.Tracking, Timeline: make([]api.Event, 0, len(tl))}
	if o.Tracking != "" {
		st.Carrier = o.Carrier
	}
	for _, e := range tl {
		st.Timeline = append(st.Timeline, api.Event{At: e.At.Format(time.RFC3339), State: e.State, Detail: e.Detail})
		if e.State == api.PlanEvent {
			st.Installments = e.Detail
		}
	}
	return st
}

// carrierEvent takes a tracking event from the order's carrier; a retried
// event (same sequence number) is acknowledged and changes nothing.
func (s *Server) carrierEvent(c echo.Context) error {
	ctx := c.Request().Context()
	var ev carrierapi.TrackingEvent
	if err := web.Bind(c, &ev, 4<<10); err != nil {
		return err
	}
	id := c.Param("id")
	o, err := s.cfg.Store.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && o.Carrier != signedhttp.Caller(c)) || ev.OrderID != id {
		return problem.New(http.StatusNotFound, api.CodeUnknownOrder, "Unknown order", "No such order shipped with this carrier.")
	}
	if err != nil {
		return unavailable(err)
	}
	if o.Tracking != "" && ev.Tracking != o.Tracking {
		return problem.New(http.StatusConflict, api.CodeTrackingMismatch, "Tracking number differs", "The event names another shipment of this order.")
	}
	at, err := time.Parse(time.RFC3339, ev.At)
	if err != nil {
		return problem.New(http.StatusBadRequest, problem.CodeBadRequest, "Invalid time", "at must be an RFC 3339 time.")
	}
	detail := "tracking " + ev.Tracking
	if ev.Note != "" {
		detail += ": " + ev.Note
	}
	recorded, err := s.cfg.Store.CarrierEvent(ctx, id, ev.Seq, ev.Status, detail, at)
	if err != nil {
		return unavailable(err)
	}
	if recorded {
		s.log.Info("tracking event", "order", id, "status", ev.Status, "seq", ev.Seq)
	}
	// While a cancel is under way too: an event that the parcel left means
	// the carrier refuses the cancel, and the capture is due.
	if o.State == api.StateShipped || o.State == api.StateDelivered || o.State == api.StateCancelling {
		if err := s.onTracking(ctx, o, ev.Status); err != nil {
			return unavailable(err) // the carrier retries the event, and the job is enqueued then
		}
	}
	return c.JSON(http.StatusOK, eventRecorded{Recorded: recorded})
}
