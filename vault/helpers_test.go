package vault_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/signedhttp"
	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/order"
	"orderseal/suite"
	"orderseal/tstest/keys"
	"orderseal/vault"
	"orderseal/vault/api"
	"orderseal/vault/store"
)

// canary is a string that only ever travels sealed: it must never show up
// in a file, log or HTTP body the owner or a live grantee does not read.
const canary = "Canary-Lane-7f3a9"

// clock is the vault's clock: real time plus an offset the test moves, so
// signed requests (dated by the callers' real clocks) still verify.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// exchange is one HTTP round trip as a party saw it on the wire.
type exchange struct {
	caller, method, path string
	status               int
	header               http.Header
	reqBody, respBody    []byte
}

type recorder struct {
	mu sync.Mutex
	ex []exchange
}

func (r *recorder) all() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.ex...)
}

// last returns the last exchange of caller.
func (r *recorder) last(t testing.TB, caller string) exchange {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.ex) - 1; i >= 0; i-- {
		if r.ex[i].caller == caller {
			return r.ex[i]
		}
	}
	t.Fatalf("no exchange recorded for %s", caller)
	return exchange{}
}

// recordingTransport keeps a copy of every request and response body.
type recordingTransport struct {
	caller string
	rec    *recorder
	next   http.RoundTripper
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := rt.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	rt.rec.mu.Lock()
	rt.rec.ex = append(rt.rec.ex, exchange{caller: rt.caller, method: req.Method, path: req.URL.Path,
		status: resp.StatusCode, header: resp.Header.Clone(), reqBody: reqBody, respBody: body})
	rt.rec.mu.Unlock()
	return resp, nil
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

// vaultEnv is a vault served on loopback by httptest, with its files in a
// temp dir (each data file in its own directory) and every party's traffic
// recorded.
type vaultEnv struct {
	dir                 string
	indexPath, dataPath string
	backupPath          string
	clk                 *clock
	st                  *store.Store
	srv                 *vault.Server
	ts                  *httptest.Server
	log                 *syncBuffer
	rec                 *recorder
}

func newVaultEnv(t *testing.T) *vaultEnv {
	t.Helper()
	return newObservedVaultEnv(t, store.Observer{})
}

// newObservedVaultEnv is newVaultEnv with the store's metrics hooks.
func newObservedVaultEnv(t *testing.T, obs store.Observer) *vaultEnv {
	t.Helper()
	dir := t.TempDir()
	e := &vaultEnv{dir: dir, clk: &clock{}, log: &syncBuffer{}, rec: &recorder{},
		indexPath:  filepath.Join(dir, "index", "index.db"),
		dataPath:   filepath.Join(dir, "primary", "data.db"),
		backupPath: filepath.Join(dir, "backup", "backup.db")}
	for _, d := range []string{"index", "primary", "backup"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	dk, err := store.CreateDataKey(filepath.Join(dir, "data.key"))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.st, err = vault.OpenStore(context.Background(), vault.StoreConfig{Index: e.indexPath, Data: e.dataPath,
		Backup: e.backupPath, DataKey: dk, Now: e.clk.Now, Logger: logger, Observe: obs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.st.Close() })
	e.srv = vault.NewServer(keys.Keys(t, keys.Vault), e.st, vault.Options{Logger: logger, Now: e.clk.Now})
	e.ts = httptest.NewServer(e.srv.Handler())
	t.Cleanup(e.ts.Close)
	return e
}

func (e *vaultEnv) httpClient(caller string) *http.Client {
	return &http.Client{Timeout: 30 * time.Second,
		Transport: &recordingTransport{caller: caller, rec: e.rec, next: e.ts.Client().Transport}}
}

// client is id's vault client, its traffic recorded under id.
func (e *vaultEnv) client(t testing.TB, id string) *api.Client {
	t.Helper()
	return e.clientWithKey(t, keys.Party(t, id))
}

func (e *vaultEnv) clientWithKey(t testing.TB, k *keygen.PartyKey) *api.Client {
	t.Helper()
	c, err := api.NewClient(suite.NewKeys(k, 8), e.ts.URL, keys.Vault, e.httpClient(k.Identity()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// raw is a signed-request client for requests api.Client will not make.
func (e *vaultEnv) raw(t testing.TB, id string) *signedhttp.Client {
	t.Helper()
	return signedhttp.NewClient(keys.Keys(t, id), e.httpClient(id))
}

// addressJSON is an address whose first line is line1.
func addressJSON(line1 string) []byte {
	b, _ := json.Marshal(order.Address{Name: "Bob Beispiel", Line1: line1, City: "Berlin", PostalCode: "10115", Country: "DE"})
	return b
}

func register(t testing.TB, c *api.Client, typ, label string, shareable bool, value []byte) *api.RegisterResponse {
	t.Helper()
	res, err := c.Register(context.Background(), typ, label, shareable, value)
	if err != nil {
		t.Fatalf("register %s: %v", label, err)
	}
	if _, err := store.ParseTokenType(res.Token); err != nil || !strings.HasSuffix(res.Token, "_"+typ) {
		t.Fatalf("register %s: token %q (%v)", label, res.Token, err)
	}
	return res
}

// stdParties are the parties of a normal order shipped to a vault token.
var stdParties = order.Parties{Merchant: keys.Shop, Issuer: keys.Bank, Carrier: keys.Parcel, Vault: keys.Vault}

// bundleFor seals the test order, shipped to token, as owner for stdParties.
func bundleFor(t testing.TB, owner, token string, opt order.SealOptions) *order.Bundle {
	t.Helper()
	return sealOrder(t, owner, token, nil, stdParties, opt)
}

// sealOrder seals the test order as owner, shipped to token or, when token
// is "", to an inline address.
func sealOrder(t testing.TB, owner, token string, inline *order.Address, p order.Parties, opt order.SealOptions) *order.Bundle {
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
	b, err := order.Seal(o, keys.Keys(t, owner), p, opt)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// resealVault replaces b's vault section with one sealed by b's cardholder
// around grant, as a cardholder's own (buggy or hostile) software could:
// the vault section opens, but says what Seal would never write.
func resealVault(t testing.TB, b *order.Bundle, grant order.VaultGrant) {
	t.Helper()
	salt := make([]byte, 32)
	rand.Read(salt)
	pt, err := json.Marshal(&order.Section{Role: order.RoleVault, Salt: wire.B64(salt), OrderID: b.OrderID, Grant: &grant})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	h.Write([]byte("orderseal-v1-commit"))
	h.Write(pt)
	b.Commitments[order.RoleVault] = [32]byte(h.Sum(nil))
	hH := b.HeaderHash()
	k := keys.Party(t, b.Cardholder)
	pw, err := suite.Pairwise(k, keys.Vault)
	if err != nil {
		t.Fatal(err)
	}
	sk := pw.Expand(keygen.LabelSection, string(order.RoleVault), b.OrderID)
	aead, err := chacha20poly1305.NewX(sk[:])
	if err != nil {
		t.Fatal(err)
	}
	s := order.Sealed{Nonce: make([]byte, chacha20poly1305.NonceSizeX)}
	rand.Read(s.Nonce)
	s.CT = aead.Seal(nil, s.Nonce[:], pt, append(hH[:], order.RoleVault...))
	b.Sections[order.RoleVault] = s
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

// assertNoCanary checks that no file of the vault holds the canary in
// clear (index, pending, data, backup, WAL files alike), nor its log, nor
// any HTTP body any party sent or received: values travel sealed, so even
// the owner's and grantees' bodies hold ciphertext only.
func (e *vaultEnv) assertNoCanary(t *testing.T) {
	t.Helper()
	needle := []byte(canary)
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
		if bytes.Contains(data, needle) {
			t.Errorf("%s holds the canary in clear", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 4 { // index, pending, primary, backup at least
		t.Fatalf("scanned only %d files", files)
	}
	if bytes.Contains(e.log.Bytes(), needle) {
		t.Errorf("the vault's log holds the canary")
	}
	ex := e.rec.all()
	if len(ex) == 0 {
		t.Fatal("no HTTP traffic recorded")
	}
	for _, x := range ex {
		if bytes.Contains(x.respBody, needle) || bytes.Contains(x.reqBody, needle) {
			t.Errorf("%s %s %s (HTTP %d) carried the canary in clear", x.caller, x.method, x.path, x.status)
		}
	}
}

// approve is the issuer's approval of b for the vault (DESIGN.md §7), as
// the merchant relays it to activate the order's grant.
func approve(t testing.TB, b *order.Bundle) string {
	t.Helper()
	tok, err := order.VaultApproval(keys.Keys(t, keys.Bank), b)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
