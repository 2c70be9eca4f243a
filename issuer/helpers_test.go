package issuer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/signedhttp"
	"orderseal/issuer"
	"orderseal/issuer/api"
	"orderseal/issuer/store"
	"orderseal/keygen"
	"orderseal/order"
	"orderseal/suite"
	"orderseal/tstest/keys"
)

// Identities of the parties the tests play.
const (
	otherBankID = "issuer:other-bank.example"
	carolID     = "consultant:carol.shop.example" // the shop's phone consultant (DESIGN.md §6.7)
)

// Assisted sessions the merchant verified (order.ValidSession).
const (
	testSession  = "ses_abcdefghijklmnopqrstuvwxyz"
	otherSession = "ses_zyxwvutsrqponmlkjihgfedcba"
)

// The test order (../order/testdata/order.json): card visa, expiry
// 2031-12, CVC 737 (seal drops it: no card's code), total 3448 EUR.
const (
	visa       = "4111111111111111"
	master     = "5555555555554444"
	orderTotal = 3448
)

// clock is the issuer's clock: real time plus an offset the test moves.
// Callers that must agree with it sign with it too.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Set(at time.Time) {
	c.mu.Lock()
	c.off = time.Until(at)
	c.mu.Unlock()
}

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

// bodies keeps every request and response body that crossed the wire.
type bodies struct {
	mu  sync.Mutex
	all [][]byte
}

type recordingTransport struct {
	rec  *bodies
	next http.RoundTripper
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		var b bytes.Buffer
		b.ReadFrom(req.Body)
		req.Body.Close()
		rt.rec.add(b.Bytes())
		req = req.Clone(req.Context())
		req.Body = nopCloser{bytes.NewReader(b.Bytes())}
	}
	resp, err := rt.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	resp.Body.Close()
	rt.rec.add(b.Bytes())
	resp.Body = nopCloser{bytes.NewReader(b.Bytes())}
	return resp, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func (r *bodies) add(b []byte) {
	r.mu.Lock()
	r.all = append(r.all, bytes.Clone(b))
	r.mu.Unlock()
}

// issuerEnv is an issuer served on loopback by httptest.
type issuerEnv struct {
	dir, dbPath string
	clk         *clock
	st          store.Store
	srv         *issuer.Server
	ts          *httptest.Server
	log         *syncBuffer
	wire        *bodies
}

func newIssuerEnv(t *testing.T) *issuerEnv {
	t.Helper()
	return newIssuerEnvHold(t, 0)
}

// newIssuerEnvHold is newIssuerEnv with approvals held for hold (0: the default).
func newIssuerEnvHold(t *testing.T, hold time.Duration) *issuerEnv {
	t.Helper()
	dir := t.TempDir()
	e := &issuerEnv{dir: dir, dbPath: filepath.Join(dir, "issuer.db"), clk: &clock{}, log: &syncBuffer{}, wire: &bodies{}}
	ck, err := store.CreateCardKey(filepath.Join(dir, "card.key"))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.st, err = issuer.OpenStore(context.Background(), e.dbPath, store.Options{CardKey: ck, Now: e.clk.Now, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	e.srv = issuer.NewServer(keys.Keys(t, keys.Bank), e.st, issuer.Options{Logger: logger, Now: e.clk.Now, Hold: hold,
		Verifier: []signedhttp.Option{signedhttp.WithClock(e.clk.Now)}})
	e.ts = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.ts.Close)
	return e
}

func (e *issuerEnv) httpClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &recordingTransport{rec: e.wire, next: e.ts.Client().Transport}}
}

// client is id's issuer API client (the merchant side of the contract).
func (e *issuerEnv) client(t testing.TB, id string) *api.Client {
	t.Helper()
	c, err := api.NewClient(keys.Keys(t, id), e.ts.URL, keys.Bank, e.httpClient())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// raw is a signed-request client for requests api.Client will not make,
// dating its requests by the issuer's clock.
func (e *issuerEnv) raw(t testing.TB, id string) *signedhttp.Client {
	t.Helper()
	return signedhttp.NewClient(keys.Keys(t, id), e.httpClient(), signedhttp.WithClientClock(e.clk.Now))
}

// put sends body as caller to the authorization of orderID.
func (e *issuerEnv) put(t testing.TB, caller, orderID string, body []byte) *signedhttp.Response {
	t.Helper()
	resp, err := e.raw(t, caller).Do(context.Background(), keys.Bank, http.MethodPut, e.ts.URL+api.PathAuthorizations+orderID, body)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func (e *issuerEnv) addCard(t testing.TB, number, holder, expiry, currency string, limit int64) store.Card {
	t.Helper()
	c, err := e.st.AddCard(context.Background(), store.NewCard{Number: number, Cardholder: holder, Expiry: expiry, Currency: currency, Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *issuerEnv) available(t testing.TB, id string) int64 {
	t.Helper()
	c, err := e.st.Card(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return c.Available
}

// assertNotStored checks no authorization exists for (merchant, orderID).
func (e *issuerEnv) assertNotStored(t testing.TB, merchant, orderID string) {
	t.Helper()
	if a, err := e.st.Authorization(context.Background(), merchant, orderID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an authorization was stored for %s %s: %+v %v", merchant, orderID, a, err)
	}
}

// assertNoNumber checks that no file of the issuer, nor its log, nor any
// body on the wire holds a card number in clear.
func (e *issuerEnv) assertNoNumber(t *testing.T, numbers ...string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(e.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for _, n := range numbers {
			if bytes.Contains(data, []byte(n)) {
				t.Errorf("%s holds a card number in clear", filepath.Base(p))
			}
		}
		return nil
	})
	if err != nil || files < 2 {
		t.Fatalf("scanned %d files: %v", files, err)
	}
	e.wire.mu.Lock()
	defer e.wire.mu.Unlock()
	for _, n := range numbers {
		if bytes.Contains(e.log.Bytes(), []byte(n)) {
			t.Errorf("the issuer's log holds a card number")
		}
		for _, b := range e.wire.all {
			if bytes.Contains(b, []byte(n)) {
				t.Errorf("a body on the wire holds a card number in clear: %.200s", b)
			}
		}
	}
}

// noCVC as orderOpts.cvc seals the order without a CVC.
const noCVC = "-"

// orderOpts changes the test order before it is sealed.
type orderOpts struct {
	number, expiry string
	cvc            string // "" or noCVC: none (the test order's 737 is no enrolled card's code)
	currency       string
	issuer         string // "": keys.Bank
	merchant       string // "": keys.Shop
	seal           order.SealOptions
	key            *keygen.PartyKey // "": alice's
	installments   int              // 0: the test order's plan
	scale          int64            // 0: as it is; n: every quantity and the total times n
}

// seal seals the test order (inline address: no vault) as alice, or as o.key.
func seal(t testing.TB, o orderOpts) *order.Bundle {
	t.Helper()
	data, err := os.ReadFile("../order/testdata/order.json")
	if err != nil {
		t.Fatal(err)
	}
	ord, err := order.ParseOrder(data)
	if err != nil {
		t.Fatal(err)
	}
	if o.number != "" {
		ord.Card.Number = o.number
	}
	if o.expiry != "" {
		ord.Card.Expiry = o.expiry
	}
	switch o.cvc {
	case "", noCVC:
		ord.Card.CVC = ""
	default:
		ord.Card.CVC = o.cvc
	}
	if o.currency != "" {
		ord.Currency = o.currency
	}
	if o.installments != 0 {
		ord.Plan.Installments = o.installments
	}
	if o.scale > 1 {
		for i := range ord.Items {
			ord.Items[i].Qty *= o.scale
		}
		ord.Total *= o.scale
	}
	p := order.Parties{Merchant: keys.Shop, Issuer: keys.Bank, Carrier: keys.Parcel}
	if o.issuer != "" {
		p.Issuer = o.issuer
	}
	if o.merchant != "" {
		p.Merchant = o.merchant
	}
	key := o.key
	if key == nil {
		key = keys.Party(t, keys.Alice)
	}
	b, err := order.Seal(ord, suite.NewKeys(key, 4), p, o.seal)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sealAssisted seals the test order as carol, the shop's consultant, in
// testSession unless o.seal names another.
func sealAssisted(t testing.TB, o orderOpts) *order.Bundle {
	t.Helper()
	o.key = keys.Party(t, carolID)
	if o.seal.Session == "" {
		o.seal.Session = testSession
	}
	return seal(t, o)
}

// cvc is the CVC the issuer derives for a card (what "card add" prints).
func (e *issuerEnv) cvc(t testing.TB, number, expiry string) string {
	t.Helper()
	c, err := e.st.CVC(number, expiry)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// otherCVC is a code of c's length other than c.
func otherCVC(c string) string {
	n, mod := 0, 1
	for _, d := range c {
		n, mod = n*10+int(d-'0'), mod*10
	}
	return fmt.Sprintf("%0*d", len(c), (n+1)%mod)
}

// requestBody is what the merchant relays: the header and the issuer section.
func requestBody(t testing.TB, b *order.Bundle, amount int64, currency string) []byte {
	t.Helper()
	return requestBodySession(t, b, amount, currency, "")
}

// requestBodySession is requestBody naming an assisted session.
func requestBodySession(t testing.TB, b *order.Bundle, amount int64, currency, session string) []byte {
	t.Helper()
	relay, err := b.ForRole(order.RoleIssuer)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := relay.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(api.AuthorizeRequest{Bundle: raw, Amount: amount, Currency: currency, Session: session})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// wantProblem checks err is a problem with code.
func wantProblem(t testing.TB, err error, code string) *rfc9457.Problem {
	t.Helper()
	var p *rfc9457.Problem
	if !errors.As(err, &p) {
		t.Fatalf("want problem %q, got %v", code, err)
	}
	if p.Code != code {
		t.Fatalf("want problem %q, got %q (%d): %s", code, p.Code, p.Status, p.Detail)
	}
	return p
}

// respProblem decodes a problem response and checks its status and code.
func respProblem(t testing.TB, resp *signedhttp.Response, status int, code string) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != rfc9457.ContentType {
		t.Fatalf("HTTP %d with Content-Type %q: %s", resp.Status, ct, resp.Body)
	}
	p, err := rfc9457.Decode(resp.Body)
	if err != nil {
		t.Fatalf("problem body: %v: %s", err, resp.Body)
	}
	if resp.Status != status || p.Code != code {
		t.Fatalf("got HTTP %d %q (%s), want %d %q", resp.Status, p.Code, p.Detail, status, code)
	}
}
