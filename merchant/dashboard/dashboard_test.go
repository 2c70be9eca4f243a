package dashboard_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"orderseal/internal/outbox"
	"orderseal/merchant/dashboard"
	"orderseal/merchant/store"
	"orderseal/merchant/store/sqlite"
)

// Canaries: what the store may hold (the sealed bundle, the buyer's
// contact details) but no page may show.
const (
	cardCanary  = "4111111111111111"
	addrCanary  = "Canarystrasse 12"
	nameCanary  = "Ada Canaryname"
	emailCanary = "ada.canary@buyer.example"
)

var cheap = dashboard.Params{Memory: 64, Time: 1, Threads: 1} // fast tests; the parameters travel with each hash

type fixture struct {
	st  store.Store
	srv *httptest.Server
}

func newFixture(t *testing.T, opt dashboard.Options) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "dash-merchant.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for name, role := range map[string]string{"ana": store.RoleAdmin, "vic": store.RoleViewer} {
		h, err := dashboard.HashPassword(name+" has a long passphrase", cheap)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.AddOperator(ctx, &store.Operator{Name: name, Role: role, PasswordHash: h}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.PutProducts(ctx, []store.Product{{SKU: "MUG-1", Name: "Blue mug", UnitPrice: 850, Currency: "EUR"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.StartSession(ctx, &store.Session{ID: "ses_1", Consultant: "consultant:carol", Company: "company:callcenter",
		Device: "desk-7", SecretHash: make([]byte, 32), LoginNonce: "n1", Created: time.Now().Add(-time.Hour), Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, o := range []*store.Order{
		{ID: "ord_online1", Cardholder: "cardholder:alice@example.org", ShipToken: "tok_ship_online1"},
		{ID: "ord_phone1", Cardholder: "consultant:carol", Session: "ses_1"},
	} {
		o.HeaderHash, o.Bundle = []byte{1}, []byte(`{"bundlebytes":"`+cardCanary+` `+addrCanary+`"}`)
		o.Issuer, o.Carrier, o.BuyerName, o.BuyerEmail = "issuer:bank.example", "carrier:parcel.example", nameCanary, emailCanary
		o.Items, o.Total, o.Currency, o.State = []byte(`[{"sku":"MUG-1","name":"Blue mug","qty":3,"unit_price":850}]`), 2550, "EUR", "received"
		if _, _, err := st.Insert(ctx, o, "authorize"); err != nil {
			t.Fatal(err)
		}
	}
	// The phone order's relay gave up: a dead letter.
	jobs, err := st.Outbox().Claim(ctx, time.Now().Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if j.Key == "ord_phone1" {
			if err := st.Outbox().Fail(ctx, j.ID, 7, "issuer unreachable: dial tcp 10.0.0.1:443: connection refused"); err != nil {
				t.Fatal(err)
			}
		}
	}
	opt.Store = st
	opt.Merchant = "merchant:shop.example"
	opt.Logger = slog.New(slog.DiscardHandler)
	opt.Redrive = func(ctx context.Context, e outbox.Entry) (bool, string, error) {
		ok, err := st.Outbox().Redrive(ctx, e.ID, time.Now())
		return ok, "", err
	}
	d, err := dashboard.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(d)
	t.Cleanup(srv.Close)
	return &fixture{st: st, srv: srv}
}

// browser is a client with its own cookies that does not follow redirects.
func (f *fixture) browser(t *testing.T) *http.Client {
	jar, _ := cookiejar.New(nil)
	c := *f.srv.Client() // a copy: the server's client is shared
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

type answer struct {
	status int
	body   string
	header http.Header
}

func (a answer) code() string {
	m := regexp.MustCompile(`data-code="([^"]*)"`).FindStringSubmatch(a.body)
	if m == nil {
		return ""
	}
	return m[1]
}

func (a answer) csrf(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(a.body)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", a.body)
	}
	return m[1]
}

func do(t *testing.T, c *http.Client, method, u string, form url.Values, hdr ...string) answer {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, string(b), resp.Header}
}

// login logs name in with password and returns the answer to the POST.
func (f *fixture) login(t *testing.T, c *http.Client, name, password string) answer {
	t.Helper()
	page := do(t, c, http.MethodGet, f.srv.URL+dashboard.Prefix+"login", nil)
	return do(t, c, http.MethodPost, f.srv.URL+dashboard.Prefix+"login", url.Values{"csrf": {page.csrf(t)}, "name": {name}, "password": {password}})
}

func (f *fixture) loggedIn(t *testing.T, name string) *http.Client {
	t.Helper()
	c := f.browser(t)
	if a := f.login(t, c, name, name+" has a long passphrase"); a.status != http.StatusSeeOther {
		t.Fatalf("login %s: %d %s", name, a.status, a.body)
	}
	return c
}

func TestLogin(t *testing.T) {
	f := newFixture(t, dashboard.Options{})
	for _, tc := range []struct {
		name, user, password string
		status               int
		code                 string
	}{
		{"wrong password", "ana", "not ana's passphrase at all", http.StatusUnauthorized, dashboard.CodeLoginFailed},
		{"no such account", "nobody", "nobody has a long passphrase", http.StatusUnauthorized, dashboard.CodeLoginFailed},
		{"empty password", "ana", "", http.StatusUnauthorized, dashboard.CodeLoginFailed},
		{"right password", "ana", "ana has a long passphrase", http.StatusSeeOther, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := f.browser(t)
			a := f.login(t, c, tc.user, tc.password)
			if a.status != tc.status || a.code() != tc.code {
				t.Fatalf("%d %q, want %d %q", a.status, a.code(), tc.status, tc.code)
			}
			if tc.status != http.StatusSeeOther {
				if strings.Contains(a.body, tc.password) && tc.password != "" {
					t.Fatal("the page repeats the password")
				}
				return
			}
			sc := strings.Join(a.header.Values("Set-Cookie"), "\n")
			if !regexp.MustCompile(dashboard.SessionCookie + `=[A-Za-z0-9_-]{43}; Path=/dashboard/; Max-Age=\d+; HttpOnly; Secure; SameSite=Strict`).MatchString(sc) {
				t.Fatalf("session cookie %q", sc)
			}
			if loc := a.header.Get("Location"); loc != dashboard.Prefix+"orders" {
				t.Fatalf("redirect to %q", loc)
			}
			page := do(t, c, http.MethodGet, f.srv.URL+dashboard.Prefix+"orders", nil)
			if page.status != http.StatusOK || !strings.Contains(page.body, "ord_online1") || !strings.Contains(page.body, "25.50 EUR") ||
				!strings.Contains(page.body, "tok_ship_online1") || !strings.Contains(page.body, `id="operator">ana (admin)`) {
				t.Fatalf("orders page %d:\n%s", page.status, page.body)
			}
			// Logging out ends the session in the store: the old cookie opens nothing.
			out := do(t, c, http.MethodPost, f.srv.URL+dashboard.Prefix+"logout", url.Values{"csrf": {page.csrf(t)}})
			if out.status != http.StatusSeeOther {
				t.Fatalf("logout %d %s", out.status, out.body)
			}
			if a := do(t, c, http.MethodGet, f.srv.URL+dashboard.Prefix+"orders", nil); a.status != http.StatusSeeOther || a.header.Get("Location") != dashboard.Prefix+"login" {
				t.Fatalf("after logout: %d %s", a.status, a.header.Get("Location"))
			}
		})
	}
}

// TestLockout: the fifth failure in a row locks the account; the right
// password is then refused too, by this and by any other dashboard on the
// store, until the lock lifts or an admin unlocks it.
func TestLockout(t *testing.T) {
	now := time.Now()
	f := newFixture(t, dashboard.Options{MaxFailures: 5, LockFor: time.Hour, Now: func() time.Time { return now }})
	c := f.browser(t)
	for i := 1; i <= 5; i++ {
		want, code := http.StatusUnauthorized, dashboard.CodeLoginFailed
		if i == 5 {
			want, code = http.StatusLocked, dashboard.CodeAccountLocked
		}
		if a := f.login(t, c, "vic", "a guess that is wrong"); a.status != want || a.code() != code {
			t.Fatalf("failure %d: %d %q, want %d %q", i, a.status, a.code(), want, code)
		}
	}
	if a := f.login(t, c, "vic", "vic has a long passphrase"); a.status != http.StatusLocked || a.code() != dashboard.CodeAccountLocked {
		t.Fatalf("right password while locked: %d %q", a.status, a.code())
	}
	op, err := f.st.Operator(context.Background(), "vic")
	if err != nil || !op.Locked(now) {
		t.Fatalf("the lock is not in the store: %+v %v", op, err)
	}
	// Another node on the store (a new dashboard) sees the lock.
	d2, err := dashboard.New(dashboard.Options{Store: f.st, Redrive: func(context.Context, outbox.Entry) (bool, string, error) { return false, "", nil }})
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewTLSServer(d2)
	defer srv2.Close()
	f2 := &fixture{st: f.st, srv: srv2}
	if a := f2.login(t, f2.browser(t), "vic", "vic has a long passphrase"); a.status != http.StatusLocked {
		t.Fatalf("another dashboard: %d %q", a.status, a.code())
	}
	// Other accounts are not locked.
	f.loggedIn(t, "ana")
	if err := f.st.UnlockOperator(context.Background(), "vic"); err != nil {
		t.Fatal(err)
	}
	f.loggedIn(t, "vic")
}

// TestCSRF: a POST without the session's token, with another one, or from
// another site changes nothing; the login form has its own token.
func TestCSRF(t *testing.T) {
	f := newFixture(t, dashboard.Options{})
	c := f.loggedIn(t, "ana")
	good := do(t, c, http.MethodGet, f.srv.URL+dashboard.Prefix+"catalog", nil).csrf(t)
	add := func(csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "sku": {"PEN-1"}, "name": {"Pen"}, "price": {"2.50"}, "currency": {"EUR"}}
	}
	other := f.loggedIn(t, "vic")
	vicToken := do(t, other, http.MethodGet, f.srv.URL+dashboard.Prefix+"catalog", nil).csrf(t)
	for _, tc := range []struct {
		name string
		form url.Values
		hdr  []string
	}{
		{"no token", url.Values{"sku": {"PEN-1"}, "name": {"Pen"}, "price": {"2.50"}, "currency": {"EUR"}}, nil},
		{"empty token", add(""), nil},
		{"another session's token", add(vicToken), nil},
		{"a forged token", add(good[:len(good)-2] + "AA"), nil},
		{"from another site", add(good), []string{"Sec-Fetch-Site", "cross-site"}},
		{"from another origin", add(good), []string{"Origin", "https://evil.example"}},
		{"from another site, without a referrer", add(good), []string{"Origin", "null", "Sec-Fetch-Site", "cross-site"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, c, http.MethodPost, f.srv.URL+dashboard.Prefix+"catalog", tc.form, tc.hdr...)
			if a.status != http.StatusForbidden || a.code() != dashboard.CodeCSRF {
				t.Fatalf("%d %q", a.status, a.code())
			}
			if ps, _ := f.st.Catalog(context.Background()); len(ps) != 1 {
				t.Fatalf("the catalog changed: %+v", ps)
			}
		})
	}
	// What Chromium sends from the page itself, under Referrer-Policy no-referrer.
	if a := do(t, c, http.MethodPost, f.srv.URL+dashboard.Prefix+"catalog", add(good), "Origin", "null", "Sec-Fetch-Site", "same-origin"); a.status != http.StatusSeeOther {
		t.Fatalf("with the token: %d %s", a.status, a.body)
	}
	if ps, _ := f.st.Catalog(context.Background()); len(ps) != 2 || ps[1].SKU != "PEN-1" || ps[1].UnitPrice != 250 {
		t.Fatalf("catalog %+v", ps)
	}
	// The login form: its token must match its cookie.
	fresh := f.browser(t)
	a := do(t, fresh, http.MethodPost, f.srv.URL+dashboard.Prefix+"login", url.Values{"csrf": {"made-up"}, "name": {"ana"}, "password": {"ana has a long passphrase"}})
	if a.status != http.StatusForbidden || a.code() != dashboard.CodeCSRF {
		t.Fatalf("login without its token: %d %q", a.status, a.code())
	}
}

// TestRoles: a viewer reads every page but retries nothing and edits no
// catalog; an admin does both.
func TestRoles(t *testing.T) {
	f := newFixture(t, dashboard.Options{})
	ctx := context.Background()
	dead := func() []outbox.Entry {
		es, err := f.st.Outbox().List(ctx, outbox.StateFailed)
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	if len(dead()) != 1 {
		t.Fatal("the fixture has no dead letter")
	}
	vic := f.loggedIn(t, "vic")
	page := do(t, vic, http.MethodGet, f.srv.URL+dashboard.Prefix+"outbox?state=failed", nil)
	if page.status != http.StatusOK || !strings.Contains(page.body, "ord_phone1") || strings.Contains(page.body, "Retry") || strings.Contains(page.body, `id="product"`) {
		t.Fatalf("viewer's outbox:\n%s", page.body)
	}
	tok := page.csrf(t) // the logout form's
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"outbox/retry", url.Values{"all": {"1"}}},
		{"outbox/retry", url.Values{"id": {"1"}}},
		{"catalog", url.Values{"sku": {"PEN-1"}, "name": {"Pen"}, "price": {"250"}, "currency": {"EUR"}}},
	} {
		tc.form.Set("csrf", tok)
		if a := do(t, vic, http.MethodPost, f.srv.URL+dashboard.Prefix+tc.path, tc.form); a.status != http.StatusForbidden || a.code() != dashboard.CodeRole {
			t.Fatalf("viewer POST %s: %d %q", tc.path, a.status, a.code())
		}
	}
	if ps, _ := f.st.Catalog(ctx); len(dead()) != 1 || len(ps) != 1 {
		t.Fatal("a viewer changed something")
	}
	ana := f.loggedIn(t, "ana")
	page = do(t, ana, http.MethodGet, f.srv.URL+dashboard.Prefix+"outbox?state=failed", nil)
	if !strings.Contains(page.body, "Retry") {
		t.Fatalf("admin's outbox has no retry:\n%s", page.body)
	}
	a := do(t, ana, http.MethodPost, f.srv.URL+dashboard.Prefix+"outbox/retry", url.Values{"csrf": {page.csrf(t)}, "all": {"1"}})
	if a.status != http.StatusSeeOther || !strings.Contains(a.header.Get("Location"), "redriven=1") {
		t.Fatalf("admin retry: %d %s", a.status, a.header.Get("Location"))
	}
	if len(dead()) != 0 {
		t.Fatal("the dead letter was not re-driven")
	}
}

// TestPages: every page a logged-in viewer reads shows what it must and no
// card number, address, buyer name or e-mail; each carries the strict
// headers; a visitor without a session is sent to the login.
func TestPages(t *testing.T) {
	f := newFixture(t, dashboard.Options{})
	vic := f.loggedIn(t, "vic")
	anon := f.browser(t)
	for _, tc := range []struct {
		path   string
		status int
		want   []string
	}{
		{"orders", 200, []string{"ord_online1", "ord_phone1", "25.50 EUR", "received 2", "tok_ship_online1"}},
		{"orders?state=received", 200, []string{"ord_online1"}},
		{"orders/ord_phone1", 200, []string{"consultant:carol", "company:callcenter", "desk-7", "Blue mug", "8.50 EUR", "bundle stored", "issuer unreachable"}},
		{"orders/ord_online1", 200, []string{"tok_ship_online1", "cardholder:alice@example.org", "held sealed"}},
		{"orders/ord_nope", 404, []string{dashboard.CodeUnknownOrder}},
		{"outbox", 200, []string{"authorize", "ord_online1", "pending", "failed"}},
		{"outbox?state=nonsense", 400, []string{dashboard.CodeBadRequest}},
		{"audit", 200, []string{"consultant:carol"}},
		{"audit?consultant=consultant:carol", 200, []string{"ses_1", "desk-7", "ord_phone1", "25.50 EUR"}},
		{"audit?consultant=cardholder:alice@example.org", 400, []string{"consultant:NAME"}},
		{"audit?consultant=consultant:nobody", 200, []string{"has no sessions"}},
		{"catalog", 200, []string{"MUG-1", "Blue mug", "8.50 EUR"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			a := do(t, vic, http.MethodGet, f.srv.URL+dashboard.Prefix+tc.path, nil)
			if a.status != tc.status {
				t.Fatalf("%d, want %d:\n%s", a.status, tc.status, a.body)
			}
			for _, w := range tc.want {
				if !strings.Contains(a.body, w) {
					t.Errorf("the page lacks %q:\n%s", w, a.body)
				}
			}
			for _, secret := range []string{cardCanary, addrCanary, nameCanary, emailCanary, "bundlebytes"} {
				if strings.Contains(a.body, secret) {
					t.Errorf("the page shows %q", secret)
				}
			}
			for h, v := range map[string]string{"Content-Security-Policy": "script-src 'none'", "Cache-Control": "no-store",
				"X-Frame-Options": "DENY", "Strict-Transport-Security": "max-age="} {
				if !strings.Contains(a.header.Get(h), v) {
					t.Errorf("%s = %q, want %q in it", h, a.header.Get(h), v)
				}
			}
			if csp := a.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "form-action 'self'") {
				t.Errorf("CSP %q", csp)
			}
			if strings.Contains(a.body, "<script") || strings.Contains(a.body, " style=") || strings.Contains(a.body, " on") && regexp.MustCompile(` on[a-z]+=`).MatchString(a.body) {
				t.Error("the page holds a script, an inline style or an event handler")
			}
			if b := do(t, anon, http.MethodGet, f.srv.URL+dashboard.Prefix+tc.path, nil); b.status != http.StatusSeeOther || b.header.Get("Location") != dashboard.Prefix+"login" {
				t.Errorf("without a session: %d %q", b.status, b.header.Get("Location"))
			}
		})
	}
	if a := do(t, anon, http.MethodPost, f.srv.URL+dashboard.Prefix+"outbox/retry", url.Values{"all": {"1"}}); a.status != http.StatusUnauthorized || a.code() != dashboard.CodeNotLoggedIn {
		t.Fatalf("POST without a session: %d %q", a.status, a.code())
	}
}

// TestCatalogEdit: bad input is refused with its code and changes nothing.
func TestCatalogEdit(t *testing.T) {
	f := newFixture(t, dashboard.Options{})
	ana := f.loggedIn(t, "ana")
	tok := do(t, ana, http.MethodGet, f.srv.URL+dashboard.Prefix+"catalog", nil).csrf(t)
	for _, tc := range []struct {
		name                      string
		sku, pname, price, curncy string
		code                      string
	}{
		{"sku with a space", "MUG 2", "Mug", "8.50", "EUR", dashboard.CodeCatalog},
		{"no name", "MUG-2", "", "8.50", "EUR", dashboard.CodeCatalog},
		{"too many decimals", "MUG-2", "Mug", "8.505", "EUR", "currency-minor-units"},
		{"not a number", "MUG-2", "Mug", "eight", "EUR", "amount-invalid"},
		{"unknown currency", "MUG-2", "Mug", "8.50", "XXX", "currency-unsupported"},
		{"another currency", "MUG-2", "Mug", "850", "JPY", dashboard.CodeCatalog},
		{"too dear", "MUG-2", "Mug", "99999999999999", "EUR", "amount-invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, ana, http.MethodPost, f.srv.URL+dashboard.Prefix+"catalog",
				url.Values{"csrf": {tok}, "sku": {tc.sku}, "name": {tc.pname}, "price": {tc.price}, "currency": {tc.curncy}})
			if a.status != http.StatusUnprocessableEntity || a.code() != tc.code {
				t.Fatalf("%d %q, want 422 %q", a.status, a.code(), tc.code)
			}
			if ps, _ := f.st.Catalog(context.Background()); len(ps) != 1 {
				t.Fatalf("catalog changed: %+v", ps)
			}
		})
	}
}
