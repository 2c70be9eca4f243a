package carrier_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"orderseal/carrier"
	"orderseal/carrier/api"
	"orderseal/carrier/store"
	"orderseal/internal/cli"
	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/signedhttp"
	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/order"
	"orderseal/suite"
	"orderseal/tstest/keys"
	"orderseal/vault"
	vaultapi "orderseal/vault/api"
	vaultstore "orderseal/vault/store"
)

// Identities of the parties the tests play.
const ()

// Canary strings of an inline address: they may rest in the vault only.
const (
	canaryStreet = "Canary-Lane-7f3a9 12"
	canaryCity   = "Kanarienhausen"
	canaryPostal = "99817"
)

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

// env is a vault and a carrier, each served by httptest on loopback, with
// the carrier's files in a directory of their own so they can be scanned.
type env struct {
	dir        string // carrier files only
	dbPath     string
	vaultTS    *httptest.Server
	vaultDown  atomic.Bool // the vault answers 503, unsigned, as a broken proxy would
	st         store.Store
	srv        *carrier.Server
	ts         *httptest.Server
	log        *syncBuffer
	carrierKey string // path of the carrier's key file
	// merchants is the carrier's configuration; a test may point an entry
	// elsewhere before it books.
	merchants carrier.Merchants
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), log: &syncBuffer{}, merchants: carrier.Merchants{keys.Shop: eventsBase, keys.OtherShop: eventsBase}}
	vdir := t.TempDir()
	dk, err := vaultstore.CreateDataKey(filepath.Join(vdir, "data.key"))
	if err != nil {
		t.Fatal(err)
	}
	vst, err := vault.OpenStore(context.Background(), vault.StoreConfig{Index: filepath.Join(vdir, "index.db"),
		Data: filepath.Join(vdir, "data.db"), DataKey: dk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vst.Close() })
	vh := vault.NewServer(keys.Keys(t, keys.Vault), vst, vault.Options{}).Handler()
	e.vaultTS = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.vaultDown.Load() {
			http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
			return
		}
		vh.ServeHTTP(w, r)
	}))
	t.Cleanup(e.vaultTS.Close)

	e.dbPath = filepath.Join(e.dir, "carrier.db")
	e.st, err = carrier.OpenStore(context.Background(), e.dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	logger := slog.New(slog.NewJSONHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.srv = carrier.NewServer(keys.Keys(t, keys.Parcel), e.st, e.vaultClient(t, keys.Parcel), carrier.Options{Logger: logger, Merchants: e.merchants})
	e.ts = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.ts.Close)

	e.carrierKey = keys.WriteKeyFile(t, t.TempDir(), keys.Parcel)
	return e
}

func (e *env) vaultClient(t testing.TB, id string) *vaultapi.Client {
	t.Helper()
	c, err := vaultapi.NewClient(keys.Keys(t, id), e.vaultTS.URL, keys.Vault, &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// merchant is the carrier client of merchant id.
func (e *env) merchant(t testing.TB, id string) *api.Client {
	t.Helper()
	c, err := api.NewClient(keys.Keys(t, id), e.ts.URL, keys.Parcel, &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// raw is a signed-request client for requests api.Client would not send.
func (e *env) raw(t testing.TB, id string) *signedhttp.Client {
	t.Helper()
	return signedhttp.NewClient(keys.Keys(t, id), &http.Client{Timeout: 10 * time.Second})
}

// put sends a booking request as caller; a []byte body is sent as it is.
func (e *env) put(t testing.TB, caller, orderID string, req any) error {
	t.Helper()
	u := e.ts.URL + api.PathShipments + orderID
	raw, ok := req.([]byte)
	if !ok {
		return e.raw(t, caller).DoJSON(context.Background(), keys.Parcel, http.MethodPut, u, req, nil)
	}
	resp, err := e.raw(t, caller).Do(context.Background(), keys.Parcel, http.MethodPut, u, raw)
	if err != nil {
		return err
	}
	if resp.Status/100 == 2 {
		return nil
	}
	p, err := rfc9457.Decode(resp.Body)
	if err != nil {
		t.Fatalf("HTTP %d without a problem document: %s", resp.Status, resp.Body)
	}
	p.Status = resp.Status
	return p
}

// run runs the carrier command line.
func run(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = carrier.Main(context.Background(), args, cli.Stdio{In: bytes.NewReader(nil), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

var inlineAddress = order.Address{Name: "Bob Beispiel", Line1: canaryStreet, Line2: "3. OG links",
	City: canaryCity, PostalCode: canaryPostal, Country: "DE"}

// sealOrder seals the test order as alice for merchant and carrier, shipped
// to token or, when token is "", to an inline address.
func sealOrder(t testing.TB, merchant, carrierID, token string, inline *order.Address, opt order.SealOptions) *order.Bundle {
	t.Helper()
	data, err := os.ReadFile("../order/testdata/order_token.json")
	if err != nil {
		t.Fatal(err)
	}
	o, err := order.ParseOrder(data)
	if err != nil {
		t.Fatal(err)
	}
	o.ShipTo.Token, o.ShipTo.Address = token, inline
	p := order.Parties{Merchant: merchant, Issuer: keys.Bank, Carrier: carrierID}
	if token != "" {
		p.Vault = keys.Vault
	}
	b, err := order.Seal(o, keys.Keys(t, keys.Alice), p, opt)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// grantedOrder registers an address for alice, seals an order to its token
// and has the merchant present the vault section: what the merchant does
// before booking.
func (e *env) grantedOrder(t testing.TB, invoice string) (*order.Bundle, string) {
	t.Helper()
	ctx := context.Background()
	addr, err := vaultapi.NormalizeAddress(order.Address{Name: "Bob Beispiel", Line1: "Hauptstr. 5", City: "Berlin", PostalCode: "10115", Country: "DE"})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := e.vaultClient(t, keys.Alice).Register(ctx, vaultapi.TypeAddress, "home", false, addr)
	if err != nil {
		t.Fatal(err)
	}
	b := sealOrder(t, keys.Shop, keys.Parcel, reg.Token, nil, order.SealOptions{})
	if _, err := e.vaultClient(t, keys.Shop).Grant(ctx, b, invoice, approve(t, b)); err != nil {
		t.Fatal(err)
	}
	return b, reg.Token
}

// relay is the booking request body api.Client sends for b.
func relay(t testing.TB, b *order.Bundle, invoice, eventsURL string) api.BookingRequest {
	t.Helper()
	r, err := b.ForRole(order.RoleCarrier)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := r.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return api.BookingRequest{Bundle: raw, Invoice: invoice, EventsURL: eventsURL}
}

// resealCarrier replaces b's carrier section with one sealed by alice
// around sec, as buggy or hostile cardholder software could.
func resealCarrier(t testing.TB, b *order.Bundle, sec order.Section) {
	t.Helper()
	salt := make([]byte, 32)
	rand.Read(salt)
	sec.Role, sec.Salt, sec.OrderID = order.RoleCarrier, wire.B64(salt), b.OrderID
	pt, err := json.Marshal(&sec)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	h.Write([]byte("orderseal-v1-commit"))
	h.Write(pt)
	b.Commitments[order.RoleCarrier] = [32]byte(h.Sum(nil))
	hH := b.HeaderHash()
	pw, err := suite.Pairwise(keys.Party(t, keys.Alice), keys.Parcel)
	if err != nil {
		t.Fatal(err)
	}
	sk := pw.Expand(keygen.LabelSection, string(order.RoleCarrier), b.OrderID)
	aead, err := chacha20poly1305.NewX(sk[:])
	if err != nil {
		t.Fatal(err)
	}
	s := order.Sealed{Nonce: make([]byte, chacha20poly1305.NonceSizeX)}
	rand.Read(s.Nonce)
	s.CT = aead.Seal(nil, s.Nonce[:], pt, append(hH[:], order.RoleCarrier...))
	b.Sections[order.RoleCarrier] = s
}

// wantProblem checks err is a problem with code and status.
func wantProblem(t testing.TB, err error, status int, code string) {
	t.Helper()
	var p *rfc9457.Problem
	if !errors.As(err, &p) {
		t.Fatalf("want problem %q, got %v", code, err)
	}
	if p.Code != code || p.Status != status {
		t.Fatalf("want problem %q (%d), got %q (%d): %s", code, status, p.Code, p.Status, p.Detail)
	}
}

// assertNoAddress checks that no file of the carrier (database, WAL, shm,
// labels excluded by the caller) nor its log holds the inline address.
func (e *env) assertNoAddress(t *testing.T) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, s := range []string{canaryStreet, canaryCity, canaryPostal} {
			if bytes.Contains(data, []byte(s)) {
				t.Errorf("%s holds %q", path, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 2 { // the database and its WAL at least
		t.Fatalf("scanned only %d files", files)
	}
	for _, s := range []string{canaryStreet, canaryCity, canaryPostal} {
		if bytes.Contains(e.log.Bytes(), []byte(s)) {
			t.Errorf("the carrier's log holds %q", s)
		}
	}
}

// waitFor polls until cond holds or fails the test after 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readAll is io.ReadAll for a test.

// approve is the issuer's approval of b for the vault, which activates the
// order's grant.
func approve(t testing.TB, b *order.Bundle) string {
	t.Helper()
	tok, err := order.VaultApproval(keys.Keys(t, keys.Bank), b)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
