package signedhttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"orderseal/internal/problem"
	"orderseal/internal/signedhttp/httpsig"
	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/web"
	"orderseal/internal/wire"
	"orderseal/keygen"
)

// Problem codes of the refusals (see the package comment for statuses).
const (
	CodeAuthMissing     = httpsig.CodeAuthMissing
	CodeUnknownIdentity = httpsig.CodeUnknownIdentity
	CodeWrongTarget     = httpsig.CodeWrongTarget
	CodeForbiddenRole   = httpsig.CodeForbiddenRole
	CodeClockSkew       = httpsig.CodeClockSkew
	CodeReplayedNonce   = httpsig.CodeReplayedNonce
	CodeBodyDigest      = httpsig.CodeBodyDigest
	CodeWrongKey        = httpsig.CodeWrongKey
	CodeBadSignature    = httpsig.CodeBadSignature
	CodeBodyTooLarge    = httpsig.CodeBodyTooLarge
	CodeURITooLong      = httpsig.CodeURITooLong
	CodeNonceQuota      = httpsig.CodeNonceQuota
	CodeCallerBusy      = httpsig.CodeCallerBusy
	CodeBodyTimeout     = httpsig.CodeBodyTimeout
	CodeNonceStore      = "nonce-store-unavailable"
)

// Defaults of a Verifier.
const (
	DefaultWindow  = 5 * time.Minute
	DefaultMaxBody = 1 << 20
	// DefaultPerPerson is how many requests of one cardholder or
	// consultant identity are read and handled at once; more get a signed
	// 429 caller-busy.
	DefaultPerPerson = 16
	// DefaultPerParty is the same for any other role: a daemon relays many
	// people's requests at once, from every node of its role.
	DefaultPerParty = 64
	// DefaultBodyTimeout bounds reading one authenticated body.
	DefaultBodyTimeout = 10 * time.Second
	// RetryAfter is the Retry-After of the verifier's 429 answers.
	RetryAfter = time.Second
)

// Verifier authenticates requests to one party and signs its responses.
type Verifier struct {
	keys    keygen.Keyring
	window  time.Duration
	nonces  NonceStore
	now     func() time.Time
	maxBody int64
	logger  *slog.Logger

	perPerson   int
	perParty    int
	bodyTimeout time.Duration
	pace        *pacer // nil: refusals are not paced
	busyMu      sync.Mutex
	busy        map[string]int // requests in progress per caller
	subKeys     httpsig.KeyCache
}

// Option configures a Verifier.
type Option func(*Verifier)

// WithWindow sets the accepted clock difference (default ±5 min).
func WithWindow(d time.Duration) Option { return func(v *Verifier) { v.window = d } }

// WithNonceStore replaces the default in-memory nonce store; a daemon gives
// its durable one (its store's Nonces).
func WithNonceStore(s NonceStore) Option { return func(v *Verifier) { v.nonces = s } }

// WithPerCaller bounds the requests of one caller in progress at once: a
// person's (cardholder, consultant) and any other party's (defaults
// DefaultPerPerson, DefaultPerParty).
func WithPerCaller(person, party int) Option {
	return func(v *Verifier) { v.perPerson, v.perParty = person, party }
}

// WithBodyTimeout bounds the time to read one body (default DefaultBodyTimeout).
func WithBodyTimeout(d time.Duration) Option { return func(v *Verifier) { v.bodyTimeout = d } }

// WithClock replaces the clock (tests); the nonce store is given its time.
func WithClock(now func() time.Time) Option { return func(v *Verifier) { v.now = now } }

// WithMaxBody bounds request bodies (default 1 MiB).
func WithMaxBody(n int64) Option { return func(v *Verifier) { v.maxBody = n } }

// WithLogger logs refusals at debug level: code, caller, method and path,
// never the query or the body.
func WithLogger(l *slog.Logger) Option { return func(v *Verifier) { v.logger = l } }

// NewVerifier authenticates requests addressed to keys.Identity().
func NewVerifier(keys keygen.Keyring, opts ...Option) *Verifier {
	if keys == nil {
		panic("signedhttp: NewVerifier with nil keys")
	}
	v := &Verifier{keys: keys, window: DefaultWindow, now: time.Now, maxBody: DefaultMaxBody,
		perPerson: DefaultPerPerson, perParty: DefaultPerParty, bodyTimeout: DefaultBodyTimeout, busy: make(map[string]int),
		pace: newPacer(DefaultCallerRefusals, DefaultAllRefusals)}
	for _, o := range opts {
		o(v)
	}
	if v.nonces == nil {
		v.nonces = nonce.NewMemory(nil)
	}
	if v.logger == nil {
		v.logger = slog.New(slog.DiscardHandler)
	}
	return v
}

const (
	callerKey        = "orderseal.signedhttp.caller"
	pendingKey       = "orderseal.signedhttp.pending"
	pendingCallerKey = "orderseal.signedhttp.pending-caller"
)

// pending is an authenticated request whose nonce Allow records once the
// caller's role is admitted.
type pending struct {
	v       *Verifier
	caller  string
	nonce   string
	expires time.Time
}

type callerCtxKey struct{}

// Caller is the authenticated caller identity, or "" outside Middleware and
// before Allow admitted the caller and recorded its nonce.
func Caller(c echo.Context) string {
	s, _ := c.Get(callerKey).(string)
	return s
}

// CallerFrom is Caller for code that holds only the request context.
func CallerFrom(ctx context.Context) (string, bool) {
	s, ok := ctx.Value(callerCtxKey{}).(string)
	return s, ok && s != ""
}

// Allow admits only callers whose role is one of roles (forbidden-role, 403).
// It must run behind Verifier.Middleware.
func Allow(roles ...keygen.Role) echo.MiddlewareFunc {
	allowed := make(map[keygen.Role]bool, len(roles))
	for _, r := range roles {
		allowed[r] = true
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			caller := Caller(c)
			if caller == "" {
				caller, _ = c.Get(pendingCallerKey).(string)
			}
			if caller == "" {
				return errors.New("signedhttp: Allow on a route not behind Verifier.Middleware")
			}
			if role := keygen.RoleOf(caller); !allowed[role] {
				if pd, ok := c.Get(pendingKey).(*pending); ok {
					pd.v.paceRefusal(c, http.StatusForbidden, caller)
				}
				return problem.Write(c, problem.New(http.StatusForbidden, CodeForbiddenRole, "Role not allowed",
					fmt.Sprintf("The %s role may not call this endpoint.", role)))
			}
			// Only now, with the role admitted, is the nonce recorded:
			// a caller the endpoint refuses cannot fill the store.
			if pd, ok := c.Get(pendingKey).(*pending); ok {
				c.Set(pendingKey, nil)
				if p := pd.v.record(c, pd); p != nil {
					return pd.v.refuse(c, p, caller)
				}
			}
			return next(c)
		}
	}
}

// callerKeys derives the request's sub-keys from K(self, caller). A party
// holding keys of several epochs (keygen.EpochKeyring) takes the epoch
// whose key id the caller sent, the current one first, so requests keyed
// in the previous or next epoch around a change of epoch still verify; if
// none matches, the current epoch's keys answer (and refuse the key id).
func (v *Verifier) callerKeys(caller, keyID string) (httpsig.Keys, error) {
	ek, ok := v.keys.(keygen.EpochKeyring)
	if !ok {
		return v.subKeys.Keys(v.keys, "", caller)
	}
	var current httpsig.Keys
	for i, e := range ek.Epochs() {
		kr, err := ek.ForEpoch(e)
		if err != nil {
			continue
		}
		// An epoch names one keyring for the Verifier's life (scope
		// "epoch:"+e; "" is the accepted suite without epochs).
		keys, err := v.subKeys.Keys(kr, "epoch:"+e, caller)
		if err != nil {
			if i == 0 {
				return httpsig.Keys{}, err
			}
			continue
		}
		switch {
		case keys.CheckKeyID(keyID):
			if i > 0 {
				current.Destroy()
			}
			return keys, nil
		case i == 0:
			current = keys
		default:
			keys.Destroy()
		}
	}
	return current, nil
}

// Middleware authenticates each request (see the package comment for the
// checks and their order), makes the caller available through Caller, lets
// the handler read the body, and signs the response: the handler writes
// into a buffer, and the signature header is set before anything is sent.
// Errors returned by the handler go to the echo error handler inside the
// buffer, so they are signed too. Register it with e.Use (404 and 405
// answers are then signed as well), outside any middleware that transforms
// bodies, with a Recover middleware inside it so panics become signed 500s.
// The daemon's error handler should be problem.ErrorHandler.
func (v *Verifier) Middleware() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			f, date, p := v.readHeaders(c.Request())
			if p != nil {
				return v.refuse(c, p, f.Caller)
			}
			self := v.keys.Identity()
			keys, err := v.callerKeys(f.Caller, f.KeyID)
			if err != nil {
				return v.refuse(c, refusal(http.StatusUnauthorized, CodeUnknownIdentity, "Unknown identity",
					"The caller identity cannot hold a key with this party."), f.Caller)
			}
			defer keys.Destroy()

			rc := http.NewResponseController(c.Response().Writer)
			// bodyDeadline(true) bounds the body's read time; (false) stops
			// reading it at once: net/http would otherwise drain an unread
			// slow body before sending the refusal.
			bodyDeadline := func(read bool) {
				if read {
					_ = rc.SetReadDeadline(time.Now().Add(v.bodyTimeout))
				} else {
					_ = rc.SetReadDeadline(time.Now())
				}
			}

			// From here on K is known: every response is signed.
			sw := startSigning(c, &keys, f.Nonce, self, f.Caller)
			defer sw.abandon() // restores the writer if a handler panics

			if p := v.authenticate(c, &f, date, &keys, bodyDeadline); p != nil {
				if err := v.refuse(c, p, f.Caller); err != nil {
					c.Error(err)
				}
			} else {
				defer v.release(f.Caller)
				c.Set(pendingCallerKey, f.Caller)
				c.Set(pendingKey, &pending{v: v, caller: f.Caller, nonce: f.Nonce, expires: date.Add(v.window)})
				// A handler panic becomes an error here, inside the
				// signer, so even that 500 is signed.
				if err := problem.Recover(next)(c); err != nil {
					c.Error(err)
				}
			}
			return sw.finish()
		}
	}
}

func refusal(status int, code, title, detail string) *problem.Problem {
	return problem.New(status, code, title, detail)
}

func (v *Verifier) refuse(c echo.Context, p *problem.Problem, caller string) error {
	v.paceRefusal(c, p.Status, caller)
	v.logger.DebugContext(c.Request().Context(), "signed request refused",
		"code", p.Code, "caller", printable(caller), "method", printable(c.Request().Method),
		"path", printable(c.Request().URL.Path))
	if p.Status == http.StatusUnauthorized {
		c.Response().Header().Set("WWW-Authenticate", "Orderseal-v1")
	}
	return problem.Write(c, p)
}

// paceRefusal paces a refusal (4xx) of caller, the caller's fault; an
// answer the party owes (5xx) is never held back. When the refusal
// cannot wait, it goes out at once and the connection is closed behind
// it (see pace.go).
func (v *Verifier) paceRefusal(c echo.Context, status int, caller string) {
	if status < 400 || status >= 500 {
		return
	}
	if !v.pace.wait(c.Request(), caller) {
		c.Response().Header().Set("Connection", "close")
	}
}

// printable bounds and sanitises attacker-chosen strings before logging.
func printable(s string) string {
	const max = 256
	if len(s) > max {
		s = s[:max] + "…"
	}
	return strconv.Quote(s)
}

// readHeaders parses the signed headers and checks identity and target:
// everything decidable before K is known.
func (v *Verifier) readHeaders(r *http.Request) (httpsig.RequestFields, time.Time, *problem.Problem) {
	var f httpsig.RequestFields
	var bad []string
	get := func(name string) string {
		vals := r.Header.Values(name)
		if len(vals) != 1 || vals[0] == "" {
			bad = append(bad, name)
			return ""
		}
		return vals[0]
	}
	f.Caller = get(httpsig.HeaderIdentity)
	f.Target = get(httpsig.HeaderTarget)
	f.Date = get(httpsig.HeaderDate)
	f.Nonce = get(httpsig.HeaderNonce)
	f.ContentSHA256 = get(httpsig.HeaderContentSHA256)
	f.KeyID = get(httpsig.HeaderKeyID)
	sig := get(httpsig.HeaderSignature)

	var date time.Time
	if f.Date != "" {
		var err error
		if date, err = httpsig.ParseDate(f.Date); err != nil {
			bad = append(bad, httpsig.HeaderDate)
		}
	}
	check := func(name, val string, n int) {
		if val != "" {
			if _, err := wire.UnB64Len(val, n); err != nil {
				bad = append(bad, name)
			}
		}
	}
	check(httpsig.HeaderNonce, f.Nonce, httpsig.NonceSize)
	check(httpsig.HeaderContentSHA256, f.ContentSHA256, httpsig.DigestSize)
	check(httpsig.HeaderKeyID, f.KeyID, httpsig.KeyIDSize)
	check(httpsig.HeaderSignature, sig, httpsig.MACSize)
	if len(bad) > 0 {
		return f, date, refusal(http.StatusUnauthorized, CodeAuthMissing, "Authentication required",
			"Missing, repeated or malformed header: "+strings.Join(bad, ", ")+".")
	}

	f.Method = r.Method
	f.RequestTarget = requestTarget(r)
	if len(f.Method) > httpsig.MaxField || len(f.RequestTarget) > httpsig.MaxField {
		return f, date, refusal(http.StatusRequestURITooLong, CodeURITooLong, "Request target too long",
			"The request target exceeds 65535 bytes.")
	}
	if err := keygen.ValidateIdentity(f.Caller); err != nil {
		return f, date, refusal(http.StatusUnauthorized, CodeUnknownIdentity, "Unknown identity",
			"Orderseal-Identity is not a valid role:name identity.")
	}
	if f.Target != v.keys.Identity() {
		return f, date, refusal(http.StatusUnauthorized, CodeWrongTarget, "Wrong target",
			"Orderseal-Target does not name this party.")
	}
	if f.Caller == f.Target {
		return f, date, refusal(http.StatusUnauthorized, CodeUnknownIdentity, "Unknown identity",
			"A party cannot call itself.")
	}
	return f, date, nil
}

// requestTarget is the request-target exactly as on the request line; for an
// absolute-form request line, its path and query.
func requestTarget(r *http.Request) string {
	rt := r.RequestURI
	if rt == "" {
		return r.URL.RequestURI() // a request built in-process
	}
	if !strings.HasPrefix(rt, "/") {
		if u, err := url.ParseRequestURI(rt); err == nil {
			return u.RequestURI()
		}
	}
	return rt
}

// authenticate runs the checks that need K: clock, key id, MAC (over the
// declared body digest, so before the body is read), the caller's share of
// request slots, then the body and its digest. The nonce is recorded later,
// by Allow, once the route admits the caller's role. On success the caller
// holds a slot the Middleware releases.
func (v *Verifier) authenticate(c echo.Context, f *httpsig.RequestFields, date time.Time, keys *httpsig.Keys, bodyDeadline func(read bool)) *problem.Problem {
	if d := v.now().Sub(date); d > v.window || d < -v.window {
		return refusal(http.StatusUnauthorized, CodeClockSkew, "Clock skew",
			fmt.Sprintf("Orderseal-Date is more than %s away from this party's clock.", v.window))
	}
	if !keys.CheckKeyID(f.KeyID) {
		return refusal(http.StatusUnauthorized, CodeWrongKey, "Wrong key",
			"The caller signs with another key for this pair: check its key file and key center.")
	}
	msg, err := f.Message()
	if err != nil || !keys.Verify(msg, c.Request().Header.Get(httpsig.HeaderSignature)) {
		return refusal(http.StatusUnauthorized, CodeBadSignature, "Bad signature",
			"The signature does not cover this request: method, path or query differ from what was signed.")
	}
	// Authenticated: from here the request counts against its caller's
	// budget, not the server's unauthenticated one.
	if limit, ok := v.acquire(f.Caller); !ok {
		bodyDeadline(false)
		c.Response().Header().Set("Connection", "close")
		c.Response().Header().Set("Retry-After", retryAfter)
		return refusal(http.StatusTooManyRequests, CodeCallerBusy, "Too many requests",
			fmt.Sprintf("This caller has %d requests in progress; retry later.", limit))
	}
	web.Authenticated(c.Request())
	bodyDeadline(true)
	body, p := v.readBody(c.Request())
	if p != nil {
		v.release(f.Caller)
		return p
	}
	if httpsig.Digest(body) != f.ContentSHA256 { // both public: no constant time needed
		v.release(f.Caller)
		return refusal(http.StatusBadRequest, CodeBodyDigest, "Body digest mismatch",
			"The body does not match Orderseal-Content-Sha256.")
	}
	return nil
}

var retryAfter = strconv.Itoa(int(RetryAfter / time.Second))

// record stores the request's nonce: replayed-nonce 401, nonce-quota 429
// (this caller only), or 503 when the store cannot answer.
func (v *Verifier) record(c echo.Context, pd *pending) *problem.Problem {
	err := v.nonces.Record(c.Request().Context(), pd.caller, pd.nonce, v.now(), pd.expires)
	switch {
	case err == nil:
		c.Set(callerKey, pd.caller)
		r := c.Request()
		c.SetRequest(r.WithContext(context.WithValue(r.Context(), callerCtxKey{}, pd.caller)))
		return nil
	case errors.Is(err, nonce.ErrReplayed):
		return refusal(http.StatusUnauthorized, CodeReplayedNonce, "Replayed request",
			"This Orderseal-Nonce was already used.")
	case errors.Is(err, nonce.ErrQuota):
		c.Response().Header().Set("Retry-After", retryAfter)
		return refusal(http.StatusTooManyRequests, CodeNonceQuota, "Too many requests",
			"This caller sent more requests within the clock window than this party keeps; retry later.")
	default:
		v.logger.WarnContext(c.Request().Context(), "nonce store failed", "err", err)
		c.Response().Header().Set("Retry-After", retryAfter)
		return refusal(http.StatusServiceUnavailable, CodeNonceStore, "Unavailable",
			"The replay check cannot be made now; retry later.")
	}
}

// acquire takes one of caller's request slots; ok is false, and limit
// says how many it holds, when it has none left.
func (v *Verifier) acquire(caller string) (limit int, ok bool) {
	limit = v.perParty
	switch keygen.RoleOf(caller) {
	case keygen.RoleCardholder, keygen.RoleConsultant:
		limit = v.perPerson
	}
	v.busyMu.Lock()
	defer v.busyMu.Unlock()
	if v.busy[caller] >= limit {
		return limit, false
	}
	v.busy[caller]++
	return limit, true
}

func (v *Verifier) release(caller string) {
	v.busyMu.Lock()
	defer v.busyMu.Unlock()
	if v.busy[caller]--; v.busy[caller] <= 0 {
		delete(v.busy, caller)
	}
}

// readBody reads at most maxBody bytes and puts them back for the handler.
func (v *Verifier) readBody(r *http.Request) ([]byte, *problem.Problem) {
	tooLarge := refusal(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "Body too large",
		fmt.Sprintf("The request body exceeds %d bytes.", v.maxBody))
	if r.ContentLength > v.maxBody {
		return nil, tooLarge
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, v.maxBody+1))
		r.Body.Close()
		var mb *http.MaxBytesError
		if errors.As(err, &mb) { // the server's ceiling (web.Limit) is below the verifier's
			return nil, refusal(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "Body too large",
				fmt.Sprintf("The request body exceeds %d bytes.", mb.Limit))
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, refusal(http.StatusRequestTimeout, CodeBodyTimeout, "Body too slow",
				fmt.Sprintf("The request body was not read within %s.", v.bodyTimeout))
		}
		if err != nil {
			return nil, refusal(http.StatusBadRequest, problem.CodeBadRequest, "Bad request",
				"The request body could not be read.")
		}
		if int64(len(b)) > v.maxBody {
			return nil, tooLarge
		}
		body = b
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return body, nil
}
