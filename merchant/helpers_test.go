package merchant_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/chacha20poly1305"

	carrierapi "orderseal/carrier/api"
	"orderseal/internal/outbox"
	"orderseal/internal/problem"
	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/signedhttp"
	"orderseal/internal/web"
	"orderseal/internal/wire"
	issuerapi "orderseal/issuer/api"
	"orderseal/keygen"
	"orderseal/merchant"
	"orderseal/merchant/api"
	"orderseal/merchant/store"
	"orderseal/order"
	"orderseal/suite"
	"orderseal/tstest/keys"
	"orderseal/vault"
	vaultapi "orderseal/vault/api"
	vaultstore "orderseal/vault/store"
)

// Identities of the parties the tests play.
const (
	otherBankID  = "issuer:otherbank.example"
	otherVaultID = "vault:elsewhere.example"
	daveID       = "consultant:dave"
	rogueCoID    = "company:elsewhere.example"
)

// cardNumber is the card of order/testdata/order_token.json: it travels in
// the issuer's section only and must never rest with the merchant.
const cardNumber = "4111111111111111"

// addressCanary is the first line of alice's registered address.
const addressCanary = "Canary-Lane-5e1b"

// trackingNumber is what the fake carrier books under (UPU S10).
const trackingNumber = "OS123456785DE"

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// swapHandler lets a test replace the server behind a URL (a restarted
// merchant keeps its address).
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := s.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	http.Error(w, "not yet", http.StatusServiceUnavailable)
}

// --- fake issuer ---------------------------------------------------------

// issuerStep scripts one answer of the fake issuer.
type issuerStep struct {
	status  int           // a refusal with this status and code
	code    string        //
	decline string        // a decline with this reason
	badHash bool          // echo a header hash that is not the bundle's
	hang    bool          // hold the request until the caller gives up
	gate    chan struct{} // answer once it is closed (announced on arrived first)
	expire  bool          // answer once the order's bundle has expired (the merchant's clock jumps past it)
}

type issuerRequest struct {
	orderID  string
	bundle   *order.Bundle
	section  *order.Section
	amount   int64
	currency string
	session  string
}

type fakeIssuer struct {
	t       testing.TB
	keys    *keygen.Cache
	ts      *httptest.Server
	arrived chan string // an order id each time a hanging step is reached

	mu          sync.Mutex
	steps       []issuerStep
	requests    []issuerRequest
	voids       []string
	errs        []string
	voidUnknown bool   // answer voids as the issuer does for an order it never saw
	expire      func() // moves the merchant's clock past every bundle's expiry
	// hold, when set, is the hold approvals report (state authorized, until
	// hold); GET then answers each order in state held, and counts gets.
	hold  time.Time
	held  string
	gets  int
	plans map[string]*issuerapi.Plan // by order id: the schedule an approval answers with
}

func newFakeIssuer(t *testing.T, id string) *fakeIssuer {
	f := &fakeIssuer{t: t, keys: keys.Keys(t, id), arrived: make(chan string, 8)}
	e := web.New(slog.New(slog.DiscardHandler))
	verify := signedhttp.NewVerifier(f.keys).Middleware()
	e.PUT(issuerapi.PathAuthorizations+":id", f.authorize, verify, signedhttp.Allow("merchant"))
	e.POST(issuerapi.PathAuthorizations+":id"+issuerapi.PathVoidSuffix, f.void, verify, signedhttp.Allow("merchant"))
	e.GET(issuerapi.PathAuthorizations+":id", f.get, verify, signedhttp.Allow("merchant"))
	f.ts = httptest.NewServer(e)
	t.Cleanup(f.ts.Close)
	return f
}

func (f *fakeIssuer) script(steps ...issuerStep) {
	f.mu.Lock()
	f.steps = append(f.steps, steps...)
	f.mu.Unlock()
}

func (f *fakeIssuer) violation(msg string) {
	f.mu.Lock()
	f.errs = append(f.errs, msg)
	f.mu.Unlock()
}

func (f *fakeIssuer) snapshot() ([]issuerRequest, []string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]issuerRequest(nil), f.requests...), append([]string(nil), f.voids...), append([]string(nil), f.errs...)
}

// onlySection checks a relayed bundle carries the full header and exactly
// one section, role's.
func onlySection(b *order.Bundle, role order.Role) string {
	if len(b.Sections) != 1 {
		return fmt.Sprintf("relayed bundle carries %d sections", len(b.Sections))
	}
	if _, ok := b.Sections[role]; !ok {
		return "relayed bundle lacks the " + string(role) + " section"
	}
	for _, r := range []order.Role{order.RoleMerchant, order.RoleIssuer, order.RoleCarrier} {
		if _, ok := b.Parties[r]; !ok {
			return "relayed header lacks the " + string(r) + " party"
		}
		if _, ok := b.Commitments[r]; !ok {
			return "relayed header lacks the " + string(r) + " commitment"
		}
	}
	return ""
}

func (f *fakeIssuer) authorize(c echo.Context) error {
	var req issuerapi.AuthorizeRequest
	if err := web.Bind(c, &req, issuerapi.MaxBody); err != nil {
		return err
	}
	b, err := order.ParseBundle(req.Bundle)
	if err != nil {
		f.violation("issuer got an unparsable bundle: " + err.Error())
		return problem.New(http.StatusBadRequest, issuerapi.CodeBundleInvalid, "Bad bundle", err.Error())
	}
	if msg := onlySection(b, order.RoleIssuer); msg != "" {
		f.violation("issuer: " + msg)
	}
	if b.OrderID != c.Param("id") {
		f.violation("issuer: path names " + c.Param("id") + ", bundle " + b.OrderID)
	}
	sec, err := order.Open(b, f.keys, order.RoleIssuer, order.OpenOptions{})
	if err != nil {
		f.violation("issuer section does not open: " + err.Error())
		return problem.New(http.StatusUnprocessableEntity, issuerapi.CodeSectionRefused, "Section refused", err.Error())
	}
	f.mu.Lock()
	f.requests = append(f.requests, issuerRequest{orderID: b.OrderID, bundle: b, section: sec, amount: req.Amount, currency: req.Currency, session: req.Session})
	var step issuerStep
	if len(f.steps) > 0 {
		step, f.steps = f.steps[0], f.steps[1:]
	}
	expire := f.expire
	f.mu.Unlock()
	if step.expire {
		expire()
	}
	switch {
	case step.hang:
		f.arrived <- b.OrderID
		<-c.Request().Context().Done()
		return c.Request().Context().Err()
	case step.gate != nil:
		f.arrived <- b.OrderID
		<-step.gate
	}
	if step.status != 0 {
		return problem.New(step.status, step.code, "Scripted refusal", "The fake issuer was told to refuse.")
	}
	hh := b.HeaderHash()
	if step.badHash {
		hh[0] ^= 1
	}
	auth := issuerapi.Authorization{OrderID: b.OrderID, HeaderHash: base64.RawURLEncoding.EncodeToString(hh[:]),
		Decision: issuerapi.Approved, AuthCode: "A1B2C3", Amount: req.Amount, Currency: req.Currency,
		Decided: time.Now().UTC().Format(time.RFC3339)}
	f.mu.Lock()
	if !f.hold.IsZero() && step.decline == "" {
		auth.State, auth.HoldUntil = issuerapi.StateAuthorized, f.hold.UTC().Format(time.RFC3339)
	}
	auth.Plan = f.plans[b.OrderID]
	f.mu.Unlock()
	if step.decline != "" {
		auth.Decision, auth.Reason, auth.AuthCode = issuerapi.Declined, step.decline, ""
	} else if b.Parties[order.RoleVault] != "" {
		// As the real issuer does: the approval only the vault can verify.
		if auth.VaultApproval, err = order.VaultApproval(f.keys, b); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusOK, auth)
}

// get answers GET of an authorization: the order as authorized, in the
// state f.held.
func (f *fakeIssuer) get(c echo.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	for _, r := range f.requests {
		if r.orderID == c.Param("id") {
			return c.JSON(http.StatusOK, issuerapi.Authorization{OrderID: r.orderID, Decision: issuerapi.Approved, Amount: r.amount,
				Currency: r.currency, State: f.held, HoldUntil: f.hold.UTC().Format(time.RFC3339)})
		}
	}
	return problem.New(http.StatusNotFound, issuerapi.CodeUnknownAuth, "Unknown authorization", "No authorization for this order id.")
}

func (f *fakeIssuer) void(c echo.Context) error {
	f.mu.Lock()
	f.voids = append(f.voids, c.Param("id"))
	unknown := f.voidUnknown
	f.mu.Unlock()
	if unknown {
		return problem.New(http.StatusNotFound, issuerapi.CodeUnknownAuth, "Unknown authorization", "No authorization for this order id.")
	}
	return c.JSON(http.StatusOK, issuerapi.Authorization{OrderID: c.Param("id"), Decision: issuerapi.Approved, Voided: true})
}

// --- fake carrier --------------------------------------------------------

type carrierStep struct {
	status int
	code   string
	expire bool // as issuerStep's
}

type carrierRequest struct {
	bundle    *order.Bundle
	section   *order.Section
	invoice   string
	eventsURL string
	parcel    *carrierapi.Parcel
}

type fakeCarrier struct {
	keys *keygen.Cache
	ts   *httptest.Server

	mu       sync.Mutex
	steps    []carrierStep
	requests []carrierRequest
	errs     []string
	expire   func() // as fakeIssuer's
	cancels  []string
	refuse   string // a cancel is refused (409) with this code; "": cancelled
}

func newFakeCarrier(t *testing.T, id string) *fakeCarrier {
	f := &fakeCarrier{keys: keys.Keys(t, id)}
	e := web.New(slog.New(slog.DiscardHandler))
	verify := signedhttp.NewVerifier(f.keys).Middleware()
	e.PUT(carrierapi.PathShipments+":id", f.book, verify, signedhttp.Allow("merchant"))
	e.POST(carrierapi.PathShipments+":id"+carrierapi.CancelSuffix, f.cancel, verify, signedhttp.Allow("merchant"))
	f.ts = httptest.NewServer(e)
	t.Cleanup(f.ts.Close)
	return f
}

func (f *fakeCarrier) script(steps ...carrierStep) {
	f.mu.Lock()
	f.steps = append(f.steps, steps...)
	f.mu.Unlock()
}

func (f *fakeCarrier) snapshot() ([]carrierRequest, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]carrierRequest(nil), f.requests...), append([]string(nil), f.errs...)
}

func (f *fakeCarrier) book(c echo.Context) error {
	var req carrierapi.BookingRequest
	if err := web.Bind(c, &req, carrierapi.MaxBody); err != nil {
		return err
	}
	b, err := order.ParseBundle(req.Bundle)
	if err != nil {
		return problem.New(http.StatusBadRequest, carrierapi.CodeBundleInvalid, "Bad bundle", err.Error())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if msg := onlySection(b, order.RoleCarrier); msg != "" {
		f.errs = append(f.errs, "carrier: "+msg)
	}
	sec, err := order.Open(b, f.keys, order.RoleCarrier, order.OpenOptions{})
	if err != nil {
		f.errs = append(f.errs, "carrier section does not open: "+err.Error())
		return problem.New(http.StatusUnprocessableEntity, carrierapi.CodeSectionRefused, "Section refused", err.Error())
	}
	f.requests = append(f.requests, carrierRequest{bundle: b, section: sec, invoice: req.Invoice, eventsURL: req.EventsURL, parcel: req.Parcel})
	if len(f.steps) > 0 {
		step := f.steps[0]
		f.steps = f.steps[1:]
		if step.expire {
			f.expire()
		}
		if step.status != 0 {
			return problem.New(step.status, step.code, "Scripted refusal", "The fake carrier was told to refuse.")
		}
	}
	hh := b.HeaderHash()
	return c.JSON(http.StatusOK, carrierapi.Shipment{OrderID: b.OrderID, HeaderHash: base64.RawURLEncoding.EncodeToString(hh[:]),
		Tracking: trackingNumber, Status: carrierapi.StatusBooked, Booked: time.Now().UTC().Format(time.RFC3339)})
}

// cancel answers a booking's cancel as the carrier does: the shipment,
// cancelled, or the scripted refusal.
func (f *fakeCarrier) cancel(c echo.Context) error {
	f.mu.Lock()
	f.cancels = append(f.cancels, c.Param("id"))
	refuse := f.refuse
	f.mu.Unlock()
	if refuse != "" {
		return problem.New(http.StatusConflict, refuse, "Scripted refusal", "The fake carrier was told to refuse the cancel.")
	}
	return c.JSON(http.StatusOK, carrierapi.Shipment{OrderID: c.Param("id"), Tracking: trackingNumber, Status: carrierapi.StatusCancelled,
		Booked: time.Now().UTC().Format(time.RFC3339)})
}

func (f *fakeCarrier) cancelled() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cancels...)
}

// --- real vault ----------------------------------------------------------

type vaultEnv struct {
	ts      *httptest.Server
	st      *vaultstore.Store
	index   string // the index database file
	dataKey *vaultstore.DataKey
}

func newVault(t *testing.T) *vaultEnv {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"index", "primary", "backup"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	dk, err := vaultstore.CreateDataKey(filepath.Join(dir, "data.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := vault.OpenStore(context.Background(), vault.StoreConfig{Index: filepath.Join(dir, "index", "index.db"),
		Data: filepath.Join(dir, "primary", "data.db"), Backup: filepath.Join(dir, "backup", "backup.db"), DataKey: dk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := vault.NewServer(keys.Keys(t, keys.Vault), st, vault.Options{})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &vaultEnv{ts: ts, st: st, index: filepath.Join(dir, "index", "index.db"), dataKey: dk}
}

// register stores an address for owner and returns its token.
func (v *vaultEnv) register(t testing.TB, owner string) string {
	t.Helper()
	c, err := vaultapi.NewClient(keys.Keys(t, owner), v.ts.URL, keys.Vault, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := json.Marshal(order.Address{Name: "Bob Beispiel", Line1: addressCanary + " 1", City: "Berlin", PostalCode: "10115", Country: "DE"})
	res, err := c.Register(context.Background(), vaultapi.TypeAddress, "home", false, addr)
	if err != nil {
		t.Fatal(err)
	}
	return res.Token
}

// --- the merchant --------------------------------------------------------

type env struct {
	sender  order.Address // the shop's ship-from address (Config.Sender); zero: none
	t       *testing.T
	dir     string
	dbPath  string
	log     *syncBuffer
	front   *swapHandler
	ts      *httptest.Server
	issuer  *fakeIssuer
	carrier *fakeCarrier
	vault   *vaultEnv
	skew    atomic.Int64 // added to the merchant's clock (not the signing window's)
	// holdSweep is Config.HoldSweep of the Server open makes (0: the default).
	holdSweep time.Duration

	st     store.Store
	srv    *merchant.Server
	cancel context.CancelFunc
	done   chan struct{}
}

// newEnv starts a merchant (not yet relaying: call run) in front of a fake
// issuer, a fake carrier and a real vault, with the test catalog.
func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), log: &syncBuffer{}, front: &swapHandler{}}
	e.dbPath = filepath.Join(e.dir, "merchant.db")
	e.issuer = newFakeIssuer(t, keys.Bank)
	e.carrier = newFakeCarrier(t, keys.Parcel)
	e.vault = newVault(t)
	e.ts = httptest.NewServer(e.front)
	t.Cleanup(e.ts.Close)
	expire := func() { e.skew.Store(int64(order.DefaultLifetime + time.Hour)) }
	e.issuer.expire, e.carrier.expire = expire, expire
	e.open()
	ctx := context.Background()
	for _, p := range []store.Product{
		{SKU: "BOOK-1984.pb", Name: "Nineteen Eighty-Four (paperback)", UnitPrice: 1299, Currency: "EUR"},
		{SKU: "mug_blue-350", Name: "Blue mug, 350 ml", UnitPrice: 850, Currency: "EUR"},
	} {
		if err := e.st.PutProduct(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		e.stop()
		e.st.Close()
	})
	return e
}

// open opens the merchant database and a Server on it behind e.ts.
func (e *env) open() {
	e.st, e.srv = e.node()
	e.front.set(e.srv.Handler())
}

// node opens the merchant database and a Server on it, as one more node
// of the merchant would: the same peers, its own store handle.
func (e *env) node() (store.Store, *merchant.Server) {
	t := e.t
	t.Helper()
	st, err := merchant.OpenStore(context.Background(), e.dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := merchant.NewServer(merchant.Config{
		Keys:      keys.Keys(t, keys.Shop),
		Store:     st,
		Carrier:   merchant.Peer{Identity: keys.Parcel, URL: e.carrier.ts.URL},
		Issuers:   []merchant.Peer{{Identity: keys.Bank, URL: e.issuer.ts.URL}},
		Vault:     merchant.Peer{Identity: keys.Vault, URL: e.vault.ts.URL},
		PublicURL: e.ts.URL,
		Logger:    logger,
		Companies: []string{keys.CallCenter},
		// The vault's audit checkpoints, as 'merchant serve' keeps them beside its database.
		VaultCheckpointFile: e.dbPath + ".vault-checkpoint.json",
		MaxShift:            8 * time.Hour,
		Sender:              e.sender,
		Now:                 func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) },
		HoldSweep:           e.holdSweep,
		Outbox: func(r *outbox.Runner) {
			r.Poll, r.MinBackoff, r.MaxBackoff, r.Timeout = 20*time.Millisecond, 5*time.Millisecond, 40*time.Millisecond, 10*time.Second
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return st, srv
}

// run starts relaying.
func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan struct{})
	go func() { e.srv.Run(ctx); close(e.done) }()
}

// stop stops relaying and waits for the runner to return.
func (e *env) stop() {
	if e.cancel != nil {
		e.cancel()
		<-e.done
		e.cancel = nil
	}
}

// restart plays a killed merchant process: the runner stops, the database
// is closed, and a new Server opens it again at the same URL.
func (e *env) restart() {
	e.stop()
	if err := e.st.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
}

func (e *env) client(t testing.TB, id string) *api.Client {
	t.Helper()
	c, err := api.NewClient(keys.Keys(t, id), e.ts.URL, keys.Shop, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// post sends body to the intake signed by caller ("" : unsigned).
func (e *env) post(t testing.TB, caller string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	if caller == "" {
		resp, err := http.Post(e.ts.URL+api.PathOrders, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp.StatusCode, resp.Header, buf.Bytes()
	}
	return e.signedPost(t, caller, api.PathOrders, body)
}

// signedPost sends body to path signed by caller.
func (e *env) signedPost(t testing.TB, caller, path string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	resp, err := signedhttp.NewClient(keys.Keys(t, caller), nil).Do(context.Background(), keys.Shop, http.MethodPost, e.ts.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.Status, resp.Header, resp.Body
}

// count returns what the merchant holds of one kind: "orders", "timeline",
// "assisted_sessions", "catalog" or "outbox" (jobs).
func (e *env) count(t testing.TB, what string) int {
	t.Helper()
	ctx := context.Background()
	tally, err := e.st.Tally(ctx)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := e.st.Outbox().Count(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	n, ok := map[string]int{"orders": tally.Orders, "timeline": tally.Events, "assisted_sessions": tally.Sessions,
		"catalog": tally.Products, "outbox": jobs.Pending + jobs.Done + jobs.Failed}[what]
	if !ok {
		t.Fatalf("count %q: nothing of that name", what)
	}
	return n
}

// waitState polls the order until it is in state, or fails at the deadline.
func (e *env) waitState(t testing.TB, id, state string) *store.Order {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		o, err := e.st.Get(context.Background(), id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		if err == nil && o.State == state {
			return o
		}
		if time.Now().After(deadline) {
			got := "absent"
			if o != nil {
				got = o.State + " (" + o.Reason + ")"
			}
			t.Fatalf("order %s: state %s, want %s", id, got, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitJobs polls until the order has no pending outbox job left.
func (e *env) waitJobs(t testing.TB, id string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		n := 0
		for _, s := range e.jobs(t, id) {
			if s == outbox.StatePending {
				n++
			}
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s: %d jobs still pending", id, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// jobs returns the order's outbox jobs as kind → state.
func (e *env) jobs(t testing.TB, id string) map[string]string {
	t.Helper()
	es, err := e.st.Outbox().List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, j := range es {
		if j.Key == id {
			out[j.Kind] = j.State
		}
	}
	return out
}

// --- bundles -------------------------------------------------------------

var stdParties = order.Parties{Merchant: keys.Shop, Issuer: keys.Bank, Carrier: keys.Parcel, Vault: keys.Vault}

// testOrder is order/testdata/order_token.json shipped to token.
func testOrder(t testing.TB, token string) *order.Order {
	t.Helper()
	data, err := os.ReadFile("../order/testdata/order_token.json")
	if err != nil {
		t.Fatal(err)
	}
	o, err := order.ParseOrder(data)
	if err != nil {
		t.Fatal(err)
	}
	o.ShipTo.Token = token
	return o
}

func seal(t testing.TB, owner string, o *order.Order, p order.Parties, opt order.SealOptions) *order.Bundle {
	t.Helper()
	b, err := order.Seal(o, keys.Keys(t, owner), p, opt)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func marshal(t testing.TB, b *order.Bundle) []byte {
	t.Helper()
	raw, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// reseal replaces role's section of b with sec, sealed by b's cardholder,
// as the cardholder's own (buggy or hostile) software could: the section
// opens and matches its commitment, but says what Seal would never write.
// Only role's section is valid afterwards (the header hash changed).
func reseal(t testing.TB, b *order.Bundle, role order.Role, sec *order.Section) {
	t.Helper()
	salt := make([]byte, 32)
	rand.Read(salt)
	sec.Role, sec.Salt, sec.OrderID = role, wire.B64(salt), b.OrderID
	pt, err := json.Marshal(sec)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	h.Write([]byte("orderseal-v1-commit"))
	h.Write(pt)
	b.Commitments[role] = [32]byte(h.Sum(nil))
	hH := b.HeaderHash()
	pw, err := suite.Pairwise(keys.Party(t, b.Cardholder), b.Parties[role])
	if err != nil {
		t.Fatal(err)
	}
	sk := pw.Expand(keygen.LabelSection, string(role), b.OrderID)
	aead, err := chacha20poly1305.NewX(sk[:])
	if err != nil {
		t.Fatal(err)
	}
	s := order.Sealed{Nonce: make([]byte, chacha20poly1305.NonceSizeX)}
	rand.Read(s.Nonce)
	s.CT = aead.Seal(nil, s.Nonce[:], pt, append(hH[:], role...))
	b.Sections[role] = s
}

// merchantSection opens b's merchant section as the shop.
func merchantSection(t testing.TB, b *order.Bundle) *order.Section {
	t.Helper()
	sec, err := order.Open(b, keys.Keys(t, keys.Shop), order.RoleMerchant, order.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

// editJSON decodes a bundle's JSON into a map, lets edit change it, and
// encodes it again.
func editJSON(t testing.TB, raw []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// problemOf decodes a problem+json answer and checks its status and code.
func problemOf(t testing.TB, status int, header http.Header, body []byte, wantStatus int, wantCode string) *rfc9457.Problem {
	t.Helper()
	if ct := header.Get("Content-Type"); ct != rfc9457.ContentType {
		t.Fatalf("HTTP %d Content-Type %q, want %s: %s", status, ct, rfc9457.ContentType, body)
	}
	p, err := rfc9457.Decode(body)
	if err != nil {
		t.Fatalf("HTTP %d: not a problem document (%v): %s", status, err, body)
	}
	if status != wantStatus || p.Code != wantCode || p.Status != status {
		t.Fatalf("HTTP %d problem %q (status member %d): %s; want %d %q", status, p.Code, p.Status, p.Detail, wantStatus, wantCode)
	}
	return p
}

// wantProblem checks err is a problem with code.
func wantProblem(t testing.TB, err error, status int, code string) {
	t.Helper()
	var p *rfc9457.Problem
	if !errors.As(err, &p) {
		t.Fatalf("want problem %q, got %v", code, err)
	}
	if p.Code != code || p.Status != status {
		t.Fatalf("want %d %q, got %d %q: %s", status, code, p.Status, p.Code, p.Detail)
	}
}
