package vault

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"orderseal/internal/problem"
	"orderseal/internal/signedhttp"
	"orderseal/internal/web"
	"orderseal/keygen"
	"orderseal/order"
	"orderseal/vault/api"
	"orderseal/vault/store"
)

// Grant limits (DESIGN.md §7). The cardholder seals the uses and the
// expiry; the vault caps the expiry at MaxGrantTTL. A vault section sealed
// without uses (an older bundle) gets DefaultGrantUses and at most
// DefaultGrantTTL; a carrier's deposit the same.
const (
	DefaultGrantUses = 3
	DefaultGrantTTL  = 72 * time.Hour
	MaxGrantTTL      = 30 * 24 * time.Hour
)

// Server is the vault's HTTP API.
type Server struct {
	keys   keygen.Keyring
	store  *store.Store
	logger *slog.Logger
	now    func() time.Time
	echo   *echo.Echo
}

// Options configure a Server.
type Options struct {
	Logger   *slog.Logger
	Now      func() time.Time
	Verifier []signedhttp.Option
	// CORSOrigins are the shop origins whose checkout pages may list and
	// reveal their cardholder's own entries (cors.go); a request from any
	// other page is refused.
	CORSOrigins []string
}

// NewServer wires the routes: every one behind the signed-request verifier,
// each limited to the roles that may call it.
func NewServer(keys keygen.Keyring, st *store.Store, opt Options) *Server {
	// The verifier reads up to a batch's body; every route binds its own, lower limit.
	p := signedhttp.NewPartyServer(keys, st.Nonces(nil), api.MaxBatchBody, opt.Logger, opt.Now, opt.Verifier...)
	s := &Server{keys: keys, store: st, logger: p.Logger, now: p.Now, echo: p.Echo}
	e := s.echo
	e.Pre(cors(opt.CORSOrigins))
	// Owners are cardholders, and carriers depositing an inline address
	// they were given (DESIGN.md §6.6) so that it rests here, not with them.
	owner := signedhttp.Allow(keygen.RoleCardholder, keygen.RoleCarrier)
	e.POST(api.PathTokens, s.register, owner)
	e.GET(api.PathTokens, s.list, owner)
	e.GET(api.PathToken+":token", s.revealOwn, owner)
	e.POST(api.PathTokensBatch, s.registerBatch, signedhttp.Allow(keygen.RoleCardholder))
	e.POST(api.PathRevealBatch, s.revealBatch, signedhttp.Allow(keygen.RoleCardholder))
	e.POST(api.PathGrants, s.grant, signedhttp.Allow(keygen.RoleMerchant))
	e.POST(api.PathRevoke, s.revoke, signedhttp.Allow(keygen.RoleMerchant))
	e.POST(api.PathReveal, s.revealGranted, signedhttp.Allow(keygen.RoleCarrier))
	return s
}

// Handler is the vault's http.Handler.
func (s *Server) Handler() http.Handler { return web.WithDocument(s.echo, OpenAPI) }

// Routes are the routes the server answers, as "METHOD /path" in OpenAPI
// form, with the probes web.Daemon answers in front of it: API's routes,
// which TestOpenAPI holds against them.
func (s *Server) Routes() []string {
	return web.DaemonRoutes(s.echo)
}

func unavailable(err error) *problem.Problem {
	return problem.New(http.StatusServiceUnavailable, "vault-unavailable", "Vault unavailable",
		"The vault cannot complete this request now; retry later.").WithInternal(err)
}

// audit appends an entry; a failure is returned so callers fail closed.
func (s *Server) audit(c echo.Context, kind, token, orderID, outcome string) error {
	if err := s.store.Audit(c.Request().Context(), kind, signedhttp.Caller(c), token, orderID, outcome); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			// A token or order id the audit log cannot hold (control
			// characters, invalid UTF-8) is the caller's error, not an
			// outage: refuse it, and nothing is revealed.
			return problem.New(http.StatusBadRequest, problem.CodeBadRequest, "Invalid request",
				"The token, order id or invoice holds characters that are not allowed.")
		}
		s.logger.Error("audit append failed", "kind", kind, "err", err)
		return unavailable(err)
	}
	return nil
}

func (s *Server) register(c echo.Context) error {
	var req api.RegisterRequest
	if err := web.Bind(c, &req, api.MaxBody); err != nil {
		return err
	}
	owner := signedhttp.Caller(c)
	isCarrier := keygen.RoleOf(owner) == keygen.RoleCarrier
	if d := req.Deposit; isCarrier != (d != nil) || (d != nil && keygen.RoleOf(d.Merchant) != keygen.RoleMerchant) {
		// A carrier's deposit belongs to one order (DESIGN.md §7); a
		// cardholder's token to no order.
		return problem.New(http.StatusBadRequest, api.CodeDepositOrder, "Deposit order",
			"A carrier deposits an inline address for one merchant's order and invoice; a cardholder registers for none.")
	}
	value, err := api.OpenRegister(s.keys, owner, &req)
	if err != nil {
		return problem.New(http.StatusBadRequest, "sealed-value", "Sealed value does not open",
			"The value was not sealed for this vault by this owner with these type, label and shareable settings.")
	}
	defer clear(value)
	norm, err := api.Normalize(req.Type, value)
	if err != nil {
		return problem.New(http.StatusUnprocessableEntity, api.ValueCode(err), "Invalid value", err.Error())
	}
	defer clear(norm)
	if req.Deposit != nil {
		return s.deposit(c, owner, req.Deposit, norm)
	}
	token, created, err := s.store.RegisterAudited(c.Request().Context(), owner, store.TokenType(req.Type), req.Label, norm, req.Shareable, 0)
	if err != nil {
		return registerRefused(err)
	}
	return registered(c, token, created)
}

// registerRefused is the refusal of a failed RegisterAudited: an entry the
// store does not take, or an outage.
func registerRefused(err error) error {
	if errors.Is(err, store.ErrInvalid) {
		return problem.New(http.StatusUnprocessableEntity, "invalid-value", "Invalid value", "The entry was refused.")
	}
	return unavailable(err)
}

// registered answers a registration: 201 with a new token, 200 with the
// token the owner already had for the same value.
func registered(c echo.Context, token string, created bool) error {
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	return c.JSON(status, api.RegisterResponse{Token: token, Created: created})
}

// registerBatch is POST /v1/tokens/batch: each item opened and normalised
// on its own (its refusal is its result), the valid ones registered in one
// durable commit with their audit entries.
func (s *Server) registerBatch(c echo.Context) error {
	var req api.BatchRegisterRequest
	if err := web.Bind(c, &req, api.MaxBatchBody); err != nil {
		return err
	}
	owner := signedhttp.Caller(c)
	out := api.BatchRegisterResponse{Results: make([]api.BatchResult, len(req.Items))}
	var items []store.BatchItem
	var at []int
	defer func() {
		for _, it := range items {
			clear(it.Value)
		}
	}()
	opener, err := api.NewRegisterOpener(s.keys, owner)
	if err != nil {
		return err
	}
	// Open and normalise the entries on every core; each keeps its slot.
	norms := make([][]byte, len(req.Items))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(req.Items)) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(req.Items); i = int(next.Add(1)) - 1 {
				r := &req.Items[i]
				if r.Deposit != nil {
					out.Results[i] = api.BatchResult{Code: api.CodeDepositOrder, Detail: "deposits are not batched"}
					continue
				}
				value, err := opener.Open(r)
				if err != nil {
					out.Results[i] = api.BatchResult{Code: "sealed-value", Detail: "The value was not sealed for this vault by this owner with these type, label and shareable settings."}
					continue
				}
				norm, err := api.Normalize(r.Type, value)
				clear(value)
				if err != nil {
					out.Results[i] = api.BatchResult{Code: api.ValueCode(err), Detail: err.Error()}
					continue
				}
				norms[i] = norm
			}
		})
	}
	wg.Wait()
	for i, norm := range norms {
		if norm != nil {
			r := &req.Items[i]
			items = append(items, store.BatchItem{Type: store.TokenType(r.Type), Label: r.Label, Value: norm, Shareable: r.Shareable})
			at = append(at, i)
		}
	}
	if len(items) > 0 {
		res, err := s.store.RegisterBatch(c.Request().Context(), owner, items)
		if err != nil {
			return unavailable(err)
		}
		for j, r := range res {
			i := at[j]
			switch {
			case r.Err != nil && store.IsRefusal(r.Err):
				out.Results[i] = api.BatchResult{Code: "invalid-value", Detail: "The entry was refused."}
			case r.Err != nil:
				return unavailable(r.Err)
			default:
				out.Results[i] = api.BatchResult{Token: r.Token, Created: r.Created}
			}
		}
	}
	return c.JSON(http.StatusOK, out)
}

// revealBatch is POST /v1/tokens/reveal: the caller's own tokens, each
// answered with its value sealed for the caller or the code of its
// refusal; every outcome is audited in one transaction before anything is
// answered (fail closed).
func (s *Server) revealBatch(c echo.Context) error {
	var req api.BatchRevealRequest
	if err := web.Bind(c, &req, 64<<10); err != nil {
		return err
	}
	ctx := c.Request().Context()
	caller := signedhttp.Caller(c)
	out := api.BatchRevealResponse{Results: make([]api.BatchReveal, len(req.Tokens))}
	values := make([][]byte, len(req.Tokens))
	defer func() {
		for _, v := range values {
			clear(v)
		}
	}()
	evs := make([]store.AuditEvent, len(req.Tokens))
	for i, tok := range req.Tokens {
		out.Results[i].Token = tok
		evs[i] = store.AuditEvent{Kind: "reveal-owner", Actor: caller, Token: tok, Outcome: "ok"}
		e, err := s.store.Lookup(ctx, tok)
		if err != nil || e.Owner != caller {
			if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrBadToken) {
				return unavailable(err)
			}
			out.Results[i].Code, evs[i].Outcome = "unknown-token", "refused:unknown-token"
			continue
		}
		v, err := s.store.Reveal(ctx, tok)
		switch {
		case errors.Is(err, store.ErrExpired):
			out.Results[i].Code, evs[i].Outcome = "token-expired", "refused:token-expired"
		case err != nil:
			return unavailable(err)
		default:
			values[i] = v
			out.Results[i].Type = string(e.Type)
		}
	}
	if err := s.store.AuditBatch(ctx, evs); err != nil {
		if errors.Is(err, store.ErrInvalid) {
			return problem.New(http.StatusBadRequest, problem.CodeBadRequest, "Invalid request", "A token holds characters that are not allowed.")
		}
		s.logger.Error("audit append failed", "kind", "reveal-owner", "err", err)
		return unavailable(err)
	}
	for i, v := range values {
		if v == nil {
			continue
		}
		sealed, err := api.SealReveal(s.keys, caller, req.Tokens[i], "", v)
		if err != nil {
			return err
		}
		out.Results[i].Value = &sealed
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, out)
}

func entryOut(e store.Entry) api.Entry {
	out := api.Entry{Token: e.Token, Type: string(e.Type), Label: e.Label, Epoch: e.Epoch,
		Created: e.Created.UTC().Format(time.RFC3339), Shareable: e.Shareable, ReplacedBy: e.ReplacedBy}
	if !e.Expires.IsZero() {
		out.Expires = e.Expires.UTC().Format(time.RFC3339)
	}
	return out
}

// deposit registers a carrier's inline address and gives the carrier a
// grant for that one order (active, DefaultGrantUses, DefaultGrantTTL),
// revoked with the order's other grants.
func (s *Server) deposit(c echo.Context, carrier string, d *api.Deposit, norm []byte) error {
	ctx := c.Request().Context()
	// The order's grant first: a revoked order takes no deposit, and
	// nothing is stored for it.
	for _, g := range s.orderGrants(ctx, carrier, d.Merchant, d.OrderID) {
		if g.State == store.GrantRevoked {
			if err := s.audit(c, "deposit", "", d.OrderID, "refused:"+api.CodeGrantRevoked); err != nil {
				return err
			}
			return problem.New(http.StatusConflict, api.CodeGrantRevoked, "Grant revoked", "The order was declined, failed or cancelled.")
		}
	}
	token, created, err := s.store.RegisterAudited(ctx, carrier, store.TypeAddress, d.OrderID, norm, false, 0)
	if err != nil {
		return registerRefused(err)
	}
	g := store.Grant{Token: token, Merchant: d.Merchant, Carrier: carrier, OrderID: d.OrderID, Invoice: d.Invoice,
		Expires: s.now().Add(DefaultGrantTTL), MaxUses: DefaultGrantUses, State: store.GrantActive}
	if old, err := s.store.Grant(ctx, token, carrier, d.OrderID); err == nil && old.State == store.GrantActive {
		// The same deposit again; or the same place deposited for another
		// merchant's order under the same order id, which shares the grant
		// (grants are keyed by token, carrier and order id): nothing to add.
	} else if err := s.store.AddGrantAudited(ctx, g, "deposit-grant", carrier, "ok:active"); err != nil {
		switch {
		case errors.Is(err, store.ErrGrantConflict), errors.Is(err, store.ErrGrantRevoked):
			if aerr := s.audit(c, "deposit", token, d.OrderID, "refused:grant-conflict"); aerr != nil {
				return aerr
			}
			return problem.New(http.StatusConflict, "grant-conflict", "Grant conflict", "This order's deposit was made with another merchant or invoice.")
		case errors.Is(err, store.ErrInvalid):
			return problem.New(http.StatusUnprocessableEntity, "invalid-request", "Invalid request", "The merchant, order id and invoice must be printable text.")
		}
		return unavailable(err)
	}
	return registered(c, token, created)
}

// orderGrants returns the grants of merchant's order made to carrier; an
// index that cannot be read gives none (the caller's next step fails on it).
func (s *Server) orderGrants(ctx context.Context, carrier, merchant, orderID string) []store.Grant {
	gs, err := s.store.GrantsOfOrder(ctx, merchant, orderID)
	if err != nil {
		return nil
	}
	out := gs[:0]
	for _, g := range gs {
		if g.Carrier == carrier {
			out = append(out, g)
		}
	}
	return out
}

func (s *Server) list(c echo.Context) error {
	ctx := c.Request().Context()
	caller := signedhttp.Caller(c)
	entries, err := s.store.List(ctx, caller)
	if err != nil {
		return unavailable(err)
	}
	if keygen.RoleOf(caller) == keygen.RoleCarrier {
		// A carrier sees only the deposits a live grant still covers.
		live, err := s.store.LiveGrantsTo(ctx, caller)
		if err != nil {
			return unavailable(err)
		}
		covered := map[string]bool{}
		for _, g := range live {
			covered[g.Token] = true
		}
		entries = slices.DeleteFunc(entries, func(e store.Entry) bool { return !covered[e.Token] })
	}
	out := api.ListResponse{Tokens: make([]api.Entry, 0, len(entries))}
	for _, e := range entries {
		out.Tokens = append(out.Tokens, entryOut(e))
	}
	return c.JSON(http.StatusOK, out)
}

var notYours = problem.New(http.StatusNotFound, "unknown-token", "Unknown token", "No such token for this caller.")

func (s *Server) revealOwn(c echo.Context) error {
	ctx := c.Request().Context()
	token := c.Param("token")
	caller := signedhttp.Caller(c)
	if keygen.RoleOf(caller) == keygen.RoleCarrier {
		// Deposits belong to their order: revealed under its grant only.
		if aerr := s.audit(c, "reveal-owner", token, "", "refused:"+api.CodeDepositGrant); aerr != nil {
			return aerr
		}
		return problem.New(http.StatusForbidden, api.CodeDepositGrant, "Reveal under the order's grant",
			"A carrier's deposit belongs to its order: reveal it with the order id and invoice.")
	}
	e, err := s.store.Lookup(ctx, token)
	if err != nil || e.Owner != caller {
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrBadToken) {
			return unavailable(err)
		}
		if aerr := s.audit(c, "reveal-owner", token, "", "refused:unknown-token"); aerr != nil {
			return aerr
		}
		return notYours
	}
	return s.sendReveal(c, ctx, "reveal-owner", caller, token, "", false, &e)
}

// sendReveal reads the value, records the outcome in the audit log (no
// entry, no answer: it fails closed) and seals the value for reader. e is
// token's index entry when the caller read it already, else nil.
func (s *Server) sendReveal(c echo.Context, ctx context.Context, kind, reader, token, orderID string, displayOnly bool, e *store.Entry) error {
	var value []byte
	var err error
	if e != nil {
		value, err = s.store.RevealEntry(ctx, *e)
	} else {
		value, err = s.store.Reveal(ctx, token)
	}
	if err != nil {
		if errors.Is(err, store.ErrExpired) {
			if aerr := s.audit(c, kind, token, orderID, "refused:token-expired"); aerr != nil {
				return aerr
			}
			return problem.New(http.StatusGone, "token-expired", "Token expired", "The token was rotated and its grace period is over.")
		}
		if aerr := s.audit(c, kind, token, orderID, "failed:vault-unavailable"); aerr != nil {
			return aerr
		}
		return unavailable(err)
	}
	defer clear(value)
	if err := s.audit(c, kind, token, orderID, "ok"); err != nil {
		return err
	}
	sealed, err := api.SealReveal(s.keys, reader, token, orderID, value)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	typ, _ := store.ParseTokenType(token)
	return c.JSON(http.StatusOK, api.RevealResponse{Token: token, Type: string(typ), DisplayOnly: displayOnly, Value: sealed})
}

func (s *Server) grant(c echo.Context) error {
	ctx := c.Request().Context()
	var req api.GrantRequest
	if err := web.Bind(c, &req, api.MaxBody); err != nil {
		return err
	}
	merchant := signedhttp.Caller(c)
	refuse := func(status int, code, title, detail, token, orderID string) error {
		if err := s.audit(c, "grant", token, orderID, "refused:"+code); err != nil {
			return err
		}
		return problem.New(status, code, title, detail)
	}
	b, err := order.ParseBundle(req.Bundle)
	if err != nil {
		if code, ok := order.SuiteCode(err); ok {
			return refuse(http.StatusBadRequest, code, "Bundle refused", err.Error(), "", "")
		}
		return refuse(http.StatusBadRequest, "bad-bundle", "Bad bundle", err.Error(), "", "")
	}
	if b.Parties[order.RoleVault] != s.keys.Identity() {
		return refuse(http.StatusForbidden, "no-vault-section", "No vault section", "The bundle carries no section for this vault.", "", b.OrderID)
	}
	if b.Parties[order.RoleMerchant] != merchant {
		return refuse(http.StatusForbidden, "wrong-merchant", "Wrong merchant", "The bundle was sealed for another merchant.", "", b.OrderID)
	}
	sec, err := order.Open(b, s.keys, order.RoleVault, order.OpenOptions{Now: s.now()})
	code, suiteRefusal := order.SuiteCode(err)
	switch {
	case suiteRefusal:
		return refuse(http.StatusForbidden, code, "Vault section refused", err.Error(), "", b.OrderID)
	case errors.Is(err, order.ErrExpired):
		return refuse(http.StatusForbidden, "bundle-expired", "Bundle expired", "The bundle's validity window has passed.", "", b.OrderID)
	case err != nil:
		return refuse(http.StatusForbidden, "vault-section-invalid", "Vault section invalid", "The vault section does not open: "+err.Error(), "", b.OrderID)
	}
	g := sec.Grant
	if g.Merchant != merchant {
		return refuse(http.StatusForbidden, "wrong-merchant", "Wrong merchant", "The cardholder authorized another merchant.", g.Token, b.OrderID)
	}
	if g.Carrier != b.Parties[order.RoleCarrier] {
		return refuse(http.StatusForbidden, "wrong-carrier", "Wrong carrier", "The grant names a carrier other than the bundle's.", g.Token, b.OrderID)
	}
	expires, err := time.Parse(time.RFC3339, g.Expires)
	now := s.now()
	if err != nil || !expires.After(now) {
		return refuse(http.StatusForbidden, "grant-expired", "Grant expired", "The cardholder's authorization has expired.", g.Token, b.OrderID)
	}
	// Uses and expiry are the cardholder's, sealed in the section; an
	// older section that names no uses gets the short defaults.
	uses, ttl := g.MaxUses, MaxGrantTTL
	if uses == 0 {
		uses, ttl = DefaultGrantUses, DefaultGrantTTL
	}
	if expires.After(now.Add(ttl)) {
		expires = now.Add(ttl)
	}
	answer := func(grant store.Grant) error {
		return c.JSON(http.StatusOK, api.GrantResponse{GrantID: grant.ID, Token: g.Token, Carrier: g.Carrier, OrderID: b.OrderID,
			Invoice: grant.Invoice, State: string(grant.State), Expires: grant.Expires.UTC().Format(time.RFC3339), MaxUses: grant.MaxUses,
			AuditCheckpoint: s.checkpoint()})
	}
	if req.Approval != "" {
		if err := order.VerifyVaultApproval(s.keys, b, merchant, req.Approval); err != nil {
			return refuse(http.StatusForbidden, api.CodeApprovalInvalid, "Approval invalid",
				"The issuer's approval does not verify for this bundle.", g.Token, b.OrderID)
		}
		// The usual second call: the activation of the grant this
		// merchant's first call made pending, after the token and its
		// owner were checked. Its transaction reads the grant itself;
		// only when this merchant has none does the full path below run.
		activated, _, err := s.store.ActivateGrant(ctx, merchant, g.Token, g.Carrier, b.OrderID)
		switch {
		case err == nil:
			return answer(activated)
		case errors.Is(err, store.ErrGrantRevoked):
			return refuse(http.StatusConflict, api.CodeGrantRevoked, "Grant revoked", "The order's grants were revoked.", g.Token, b.OrderID)
		case !errors.Is(err, store.ErrNoGrant):
			return unavailable(err)
		}
	}
	// Created pending, in the transaction that checks the token and its
	// owner and finds any grant made before: nothing is revealed until the
	// issuer's approval.
	grant, _, err := s.store.PendingGrant(ctx, store.Grant{Token: g.Token, Merchant: merchant, Carrier: g.Carrier, OrderID: b.OrderID,
		Invoice: req.Invoice, Expires: expires, MaxUses: uses}, b.Cardholder, "grant", merchant, "ok:pending")
	if errors.Is(err, store.ErrGrantConflict) {
		// The same section presented at the same time by another
		// merchant node (two runs of one relay job) made the grant
		// first: answered as a retry is, with that grant.
		if won, gerr := s.store.Grant(ctx, g.Token, g.Carrier, b.OrderID); gerr == nil && won.Merchant == merchant {
			grant, err = won, nil
		}
	}
	if err != nil {
		switch {
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrBadToken):
			return refuse(http.StatusNotFound, "unknown-token", "Unknown token", "The vault holds no such token.", g.Token, b.OrderID)
		case errors.Is(err, store.ErrNotOwner):
			return refuse(http.StatusForbidden, "not-owner", "Not the owner", "The token belongs to another cardholder and is not shareable.", g.Token, b.OrderID)
		case errors.Is(err, store.ErrGrantConflict):
			return refuse(http.StatusConflict, "grant-conflict", "Grant conflict", "A different grant exists for this token, carrier and order.", g.Token, b.OrderID)
		case errors.Is(err, store.ErrGrantRevoked):
			return refuse(http.StatusConflict, api.CodeGrantRevoked, "Grant revoked", "The order's grants were revoked.", g.Token, b.OrderID)
		case errors.Is(err, store.ErrExpired):
			return refuse(http.StatusGone, "token-expired", "Token expired", "The token was rotated and its grace period is over.", g.Token, b.OrderID)
		case errors.Is(err, store.ErrGrantExpired):
			return refuse(http.StatusForbidden, "grant-expired", "Grant expired", "The cardholder's authorization has expired.", g.Token, b.OrderID)
		case errors.Is(err, store.ErrInvalid):
			return refuse(http.StatusUnprocessableEntity, "invalid-request", "Invalid request", "The invoice must be printable text.", g.Token, b.OrderID)
		}
		return unavailable(err)
	}
	switch {
	case err != nil:
		return unavailable(err)
	case grant.Merchant != merchant:
		return refuse(http.StatusConflict, "grant-conflict", "Grant conflict", "A different grant exists for this token, carrier and order.", g.Token, b.OrderID)
	case grant.State == store.GrantRevoked:
		return refuse(http.StatusConflict, api.CodeGrantRevoked, "Grant revoked", "The order's grants were revoked.", g.Token, b.OrderID)
	}
	// A grant presented again keeps its invoice, uses and expiry: the
	// answer to a retry is the first answer.
	if req.Approval != "" && grant.State == store.GrantPending {
		activated, _, err := s.store.ActivateGrant(ctx, merchant, g.Token, g.Carrier, b.OrderID)
		switch {
		case errors.Is(err, store.ErrGrantRevoked):
			return refuse(http.StatusConflict, api.CodeGrantRevoked, "Grant revoked", "The order's grants were revoked.", g.Token, b.OrderID)
		case err != nil:
			return unavailable(err)
		}
		grant = activated
	}
	return answer(grant)
}

// checkpoint is the newest audit checkpoint, handed to the merchant with
// every grant and revocation (DESIGN.md §7); nil before the first.
func (s *Server) checkpoint() *api.AuditCheckpoint {
	cp := s.store.LatestCheckpoint()
	if cp.Seq == 0 {
		return nil
	}
	return &api.AuditCheckpoint{Seq: cp.Seq, Head: cp.Head, At: cp.At, MAC: cp.MAC}
}

func (s *Server) revoke(c echo.Context) error {
	var req api.RevokeRequest
	if err := web.Bind(c, &req, 4<<10); err != nil {
		return err
	}
	n, err := s.store.RevokeGrants(c.Request().Context(), signedhttp.Caller(c), req.OrderID, req.Reason)
	if errors.Is(err, store.ErrInvalid) {
		return problem.New(http.StatusUnprocessableEntity, "invalid-request", "Invalid request", "The order id and reason must be printable text.")
	}
	if err != nil {
		return unavailable(err)
	}
	return c.JSON(http.StatusOK, api.RevokeResponse{OrderID: req.OrderID, Revoked: n, AuditCheckpoint: s.checkpoint()})
}

func (s *Server) revealGranted(c echo.Context) error {
	ctx := c.Request().Context()
	var req api.RevealGrantRequest
	if err := web.Bind(c, &req, 4<<10); err != nil {
		return err
	}
	carrier := signedhttp.Caller(c)
	_, err := s.store.UseGrant(ctx, req.Token, carrier, req.OrderID, req.Invoice)
	code, title := "", ""
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNoGrant):
		code, title = "no-grant", "No grant"
	case errors.Is(err, store.ErrGrantPending):
		code, title = api.CodeGrantPending, "Grant pending"
	case errors.Is(err, store.ErrGrantRevoked):
		code, title = api.CodeGrantRevoked, "Grant revoked"
	case errors.Is(err, store.ErrGrantExpired):
		code, title = "grant-expired", "Grant expired"
	case errors.Is(err, store.ErrGrantUsedUp):
		code, title = "grant-used-up", "Grant used up"
	case errors.Is(err, store.ErrInvoiceMismatch):
		code, title = "invoice-mismatch", "Invoice mismatch"
	default:
		return unavailable(err)
	}
	if code != "" {
		if aerr := s.audit(c, "reveal-grant", req.Token, req.OrderID, "refused:"+code); aerr != nil {
			return aerr
		}
		return problem.New(http.StatusForbidden, code, title, "No live grant lets this caller see this token for this order and invoice.")
	}
	return s.sendReveal(c, ctx, "reveal-grant", carrier, req.Token, req.OrderID, true, nil)
}
