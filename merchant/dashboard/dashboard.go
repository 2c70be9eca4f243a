// Package dashboard is the merchant operators' dashboard (DESIGN.md §10):
// orders with their state, totals, timelines and tokens, the relay outbox
// and its dead letters, the consultants' audit and the catalog, behind a
// login. It is server-rendered with html/template and runs no script at
// all, so its Content-Security-Policy allows none. Accounts are created by
// 'merchant operator add' (argon2id, password.go); a session is a random
// token in a Secure, HttpOnly, SameSite=Strict cookie whose SHA-256 the
// merchant store keeps with an expiry; every POST carries a CSRF token;
// repeated failures lock the account; a viewer reads, an admin also
// re-drives dead letters and edits the catalog. No page shows a card
// number, an address or the buyer's contact details: the merchant store
// holds no card number or address, and the buyer's name and e-mail stay
// out of the pages.
package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"orderseal/internal/outbox"
	"orderseal/internal/web/secure"
	"orderseal/merchant/store"
)

// Prefix is where the dashboard is served.
const Prefix = "/dashboard/"

// Cookies of the dashboard.
const (
	SessionCookie = "orderseal_dashboard"
	loginCookie   = "orderseal_dashboard_login" // the login form's CSRF token, before any session
)

// Defaults of Options.
const (
	DefaultSessionTTL  = 8 * time.Hour
	DefaultMaxFailures = 5
	DefaultLockFor     = 15 * time.Minute
	maxForm            = 16 << 10
)

// Stable codes of the refusals, in each error page's data-code.
const (
	CodeLoginFailed   = "login-failed"
	CodeAccountLocked = "account-locked"
	CodeCSRF          = "csrf-refused"
	CodeRole          = "role-forbidden"
	CodeNotLoggedIn   = "not-logged-in"
	CodeUnknownOrder  = "unknown-order"
	CodeBadRequest    = "bad-request"
	CodeCatalog       = "catalog-invalid"
	CodeUnavailable   = "store-unavailable"
)

// Redrive re-drives one dead letter, or says why it left it alone
// (skipped). The merchant package supplies it, with the rule 'merchant
// outbox retry' follows.
type Redrive func(ctx context.Context, e outbox.Entry) (redriven bool, skipped string, err error)

// Options configure the dashboard.
type Options struct {
	Store    store.Store
	Merchant string // the merchant's identity, in each page's header
	Redrive  Redrive
	Logger   *slog.Logger
	Now      func() time.Time
	// SessionTTL is how long a login lasts; MaxFailures failed logins in a
	// row lock an account for LockFor. Zero: the defaults.
	SessionTTL  time.Duration
	MaxFailures int
	LockFor     time.Duration
}

// Dashboard serves the dashboard's pages.
type Dashboard struct {
	opt  Options
	mux  *http.ServeMux
	tpl  *template.Template
	css  []byte
	log  *slog.Logger
	now  func() time.Time
	pol  secure.Policy
	hash func() string
}

//go:embed templates static
var files embed.FS

// New builds the dashboard.
func New(opt Options) (*Dashboard, error) {
	if opt.Store == nil || opt.Redrive == nil {
		return nil, errors.New("dashboard: a store and a redrive rule are required")
	}
	d := &Dashboard{opt: opt, log: opt.Logger, now: opt.Now, pol: secure.Policy{NoScript: true, Forms: true}, hash: dummyHash}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.opt.SessionTTL <= 0 {
		d.opt.SessionTTL = DefaultSessionTTL
	}
	if d.opt.MaxFailures <= 0 {
		d.opt.MaxFailures = DefaultMaxFailures
	}
	if d.opt.LockFor <= 0 {
		d.opt.LockFor = DefaultLockFor
	}
	var err error
	if d.tpl, err = template.New("").Funcs(funcs).ParseFS(files, "templates/*.html"); err != nil {
		return nil, err
	}
	if d.css, err = files.ReadFile("static/dashboard.css"); err != nil {
		return nil, err
	}
	m := http.NewServeMux()
	m.HandleFunc("GET "+Prefix+"{$}", d.home)
	m.HandleFunc("GET "+Prefix+"dashboard.css", d.style)
	m.HandleFunc("GET "+Prefix+"login", d.loginPage)
	m.HandleFunc("POST "+Prefix+"login", d.login)
	m.HandleFunc("POST "+Prefix+"logout", d.auth(store.RoleViewer, d.logout))
	m.HandleFunc("GET "+Prefix+"orders", d.auth(store.RoleViewer, d.orders))
	m.HandleFunc("GET "+Prefix+"orders/{id}", d.auth(store.RoleViewer, d.order))
	m.HandleFunc("GET "+Prefix+"outbox", d.auth(store.RoleViewer, d.outbox))
	m.HandleFunc("POST "+Prefix+"outbox/retry", d.auth(store.RoleAdmin, d.retry))
	m.HandleFunc("GET "+Prefix+"audit", d.auth(store.RoleViewer, d.audit))
	m.HandleFunc("GET "+Prefix+"catalog", d.auth(store.RoleViewer, d.catalog))
	m.HandleFunc("POST "+Prefix+"catalog", d.auth(store.RoleAdmin, d.putProduct))
	d.mux = m
	return d, nil
}

// ServeHTTP serves the dashboard, every answer with the strict headers and
// never cached: its pages show order data.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	secure.Headers(w, r, d.pol, true)
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	}
	d.mux.ServeHTTP(w, r)
}

func (d *Dashboard) style(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Write(d.css)
}

// viewer is the operator a page is rendered for.
type viewer struct {
	Name, Role string
	CSRF       string
}

// Admin reports whether the operator may change things.
func (v *viewer) Admin() bool { return v != nil && v.Role == store.RoleAdmin }

// page is what every template gets.
type page struct {
	Title    string
	Merchant string
	Op       *viewer
	Nav      string
	Error    string
	Code     string // the stable code of Error
	Notice   string
	Data     any
}

type ctxKey struct{}

func operatorOf(r *http.Request) *viewer { v, _ := r.Context().Value(ctxKey{}).(*viewer); return v }

// render writes a page with status.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.Merchant = d.opt.Merchant
	if p.Op == nil {
		p.Op = operatorOf(r)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := d.tpl.ExecuteTemplate(w, name, p); err != nil {
		d.log.Error("dashboard page", "page", name, "err", err)
	}
}

// fail renders the error page with a stable code.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	d.render(w, r, status, "error.html", page{Title: http.StatusText(status), Error: msg, Code: code})
}

func (d *Dashboard) unavailable(w http.ResponseWriter, r *http.Request, err error) {
	d.log.Error("dashboard store", "err", err)
	d.fail(w, r, http.StatusServiceUnavailable, CodeUnavailable, "The merchant database did not answer; try again.")
}

// token is a fresh random token, base64url.
func token() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenHash(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// csrfOf is a session's CSRF token: derived from its secret token under a
// label, so it need not be stored, and only a page of the session knows it.
func csrfOf(tok string) string {
	h := sha256.Sum256([]byte("orderseal dashboard csrf v1\x00" + tok))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func equal(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// sameOrigin refuses a POST a browser says came from another site
// (Sec-Fetch-Site), or whose Origin names another host: a second fence
// beside the CSRF token and the SameSite cookie.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	// A page under Referrer-Policy no-referrer posts with Origin "null":
	// then Sec-Fetch-Site alone tells.
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return false
		}
	}
	return true
}

func (d *Dashboard) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// auth serves h to a logged-in operator whose role allows it; a POST must
// also carry the session's CSRF token and come from this origin.
func (d *Dashboard) auth(role string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(SessionCookie)
		var op *store.Operator
		if err == nil {
			_, op, err = d.opt.Store.Login(r.Context(), tokenHash(c.Value))
		}
		switch {
		case errors.Is(err, http.ErrNoCookie), errors.Is(err, store.ErrNoLogin):
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
				return
			}
			d.fail(w, r, http.StatusUnauthorized, CodeNotLoggedIn, "Log in first.")
			return
		case err != nil:
			d.unavailable(w, r, err)
			return
		}
		v := &viewer{Name: op.Name, Role: op.Role, CSRF: csrfOf(c.Value)}
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, v))
		if r.Method == http.MethodPost {
			if err := r.ParseForm(); err != nil {
				d.fail(w, r, http.StatusBadRequest, CodeBadRequest, "The form could not be read.")
				return
			}
			if !sameOrigin(r) || !equal(r.PostForm.Get("csrf"), v.CSRF) {
				d.log.Warn("dashboard csrf refused", "operator", op.Name, "path", r.URL.Path)
				d.fail(w, r, http.StatusForbidden, CodeCSRF, "The form's security token is missing or stale; reload the page and try again.")
				return
			}
		}
		if role == store.RoleAdmin && op.Role != store.RoleAdmin {
			d.log.Warn("dashboard role refused", "operator", op.Name, "role", op.Role, "path", r.URL.Path)
			d.fail(w, r, http.StatusForbidden, CodeRole, "Your role ("+op.Role+") may look but not change this; an admin can.")
			return
		}
		h(w, r)
	}
}

func (d *Dashboard) home(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, Prefix+"orders", http.StatusSeeOther)
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	d.loginForm(w, r, http.StatusOK, "", "")
}

// loginForm renders the login page with a fresh login CSRF token, kept in
// a cookie of its own (double submit: there is no session yet).
func (d *Dashboard) loginForm(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	t := token()
	d.setCookie(w, loginCookie, t, 600)
	d.render(w, r, status, "login.html", page{Title: "Log in", Op: &viewer{CSRF: t}, Error: msg, Code: code})
}

func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if err := r.ParseForm(); err != nil {
		d.loginForm(w, r, http.StatusBadRequest, CodeBadRequest, "The form could not be read.")
		return
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !sameOrigin(r) || !equal(r.PostForm.Get("csrf"), c.Value) {
		d.loginForm(w, r, http.StatusForbidden, CodeCSRF, "The login form's security token is missing or stale; try again.")
		return
	}
	name, pw := r.PostForm.Get("name"), r.PostForm.Get("password")
	op, err := d.opt.Store.Operator(ctx, name)
	if errors.Is(err, store.ErrNoOperator) {
		VerifyPassword(d.hash(), pw) // as slow as a wrong password
		d.log.Warn("dashboard login failed", "reason", "no such operator")
		d.loginForm(w, r, http.StatusUnauthorized, CodeLoginFailed, "Wrong name or password.")
		return
	}
	if err != nil {
		d.unavailable(w, r, err)
		return
	}
	now := d.now()
	if op.Locked(now) {
		d.log.Warn("dashboard login refused: locked", "operator", op.Name)
		d.loginForm(w, r, http.StatusLocked, CodeAccountLocked, lockedMsg(op))
		return
	}
	ok, err := VerifyPassword(op.PasswordHash, pw)
	if err != nil {
		d.log.Error("dashboard operator hash unreadable", "operator", op.Name, "err", err)
	}
	if !ok {
		op, err := d.opt.Store.FailLogin(ctx, op.Name, d.opt.MaxFailures, d.opt.LockFor)
		if err != nil {
			d.unavailable(w, r, err)
			return
		}
		if op.Locked(now) {
			d.log.Warn("dashboard account locked", "operator", op.Name, "until", op.LockedUntil)
			d.loginForm(w, r, http.StatusLocked, CodeAccountLocked, lockedMsg(op))
			return
		}
		d.log.Warn("dashboard login failed", "operator", op.Name, "failures", op.Failures)
		d.loginForm(w, r, http.StatusUnauthorized, CodeLoginFailed, "Wrong name or password.")
		return
	}
	t := token()
	if err := d.opt.Store.StartLogin(ctx, &store.Login{TokenHash: tokenHash(t), Operator: op.Name, Created: now, Expires: now.Add(d.opt.SessionTTL)}); err != nil {
		d.unavailable(w, r, err)
		return
	}
	d.log.Info("dashboard login", "operator", op.Name, "role", op.Role)
	d.setCookie(w, loginCookie, "", -1)
	d.setCookie(w, SessionCookie, t, int(d.opt.SessionTTL/time.Second))
	http.Redirect(w, r, Prefix+"orders", http.StatusSeeOther)
}

func lockedMsg(op *store.Operator) string {
	return "This account is locked after repeated failed logins until " + op.LockedUntil.UTC().Format("15:04:05 MST") +
		"; an admin can unlock it sooner with 'merchant operator unlock'."
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if err := d.opt.Store.EndLogin(r.Context(), tokenHash(c.Value)); err != nil {
			d.unavailable(w, r, err)
			return
		}
	}
	d.log.Info("dashboard logout", "operator", operatorOf(r).Name)
	d.setCookie(w, SessionCookie, "", -1)
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
}
