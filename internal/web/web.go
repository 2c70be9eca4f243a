// Package web is what every orderseal daemon shares around echo: strict
// request binding, secure defaults and serving on a listener with limits
// (requests in flight, header fields, body bytes, timeouts; DESIGN.md §8
// "bad input never crashes") and graceful shutdown.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/go-playground/validator/v10"
	"github.com/labstack/echo/v4"

	"orderseal/internal/problem"
	"orderseal/internal/strictjson"
)

var validate = validator.New(validator.WithRequiredStructEnabled())

// Bind reads the request body (at most max bytes) strictly into v and
// validates it; failures are problem+json 400s with stable codes.
func Bind(c echo.Context, v any, max int) error {
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, int64(max)+1))
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &mb): // the server's ceiling (Limit) is below this route's
		return problem.New(http.StatusRequestEntityTooLarge, "body-too-large", "Body too large", fmt.Sprintf("The body exceeds %d bytes.", mb.Limit))
	case err != nil:
		return problem.New(http.StatusBadRequest, "bad-request", "Bad request", "The request body could not be read.")
	case len(body) > max:
		return problem.New(http.StatusRequestEntityTooLarge, "body-too-large", "Body too large", fmt.Sprintf("The body exceeds %d bytes.", max))
	}
	if err := strictjson.Decode(body, v, max); err != nil {
		return problem.New(http.StatusBadRequest, "malformed-json", "Malformed JSON", err.Error())
	}
	if err := Validate(v); err != nil {
		return problem.New(http.StatusUnprocessableEntity, "invalid-request", "Invalid request", err.Error())
	}
	return nil
}

// Validate checks v's validate tags; the error names the first failing field
// and rule, never its value.
func Validate(v any) error {
	if err := validate.Struct(v); err != nil {
		var ve validator.ValidationErrors
		if errors.As(err, &ve) && len(ve) > 0 {
			return fmt.Errorf("field %s fails %s", ve[0].Namespace(), ve[0].Tag())
		}
		return errors.New("the request is invalid")
	}
	return nil
}

// New returns an echo instance with problem+json errors and secure headers.
func New(logger *slog.Logger) *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = problem.ErrorHandler(logger)
	// Signed routes recover inside the verifier too, so their 500 is signed.
	e.Use(problem.Recover)
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("Content-Security-Policy", "default-src 'none'")
			SetRoute(c.Request(), c.Path()) // the template, for the access log and the metrics
			return next(c)
		}
	})
	return e
}

// Defaults of Limits: every server gets them unless the daemon sets others.
const (
	ReadHeaderTimeout      = 5 * time.Second
	ReadTimeout            = 30 * time.Second
	WriteTimeout           = 30 * time.Second
	IdleTimeout            = 120 * time.Second
	MaxHeaderBytes         = 32 << 10
	ShutdownGrace          = 20 * time.Second
	DefaultMaxInFlight     = 256
	DefaultMaxHeaderFields = 64
	DefaultMaxBody         = 1 << 20 // a ceiling for every route; each route sets its own, lower one
	DefaultRetryAfter      = time.Second
)

// Problem codes of the refusals Limit answers itself, before any handler
// (and so before the signed-request verifier: these answers are unsigned).
const (
	CodeOverloaded     = "overloaded"       // 503: MaxInFlight requests already in progress
	CodeTooManyHeaders = "too-many-headers" // 431: more than MaxHeaderFields header fields
	CodeBodyTooLarge   = problem.CodeBodyTooLarge
)

// signedCallerHeader is httpsig.HeaderIdentity: the caller of a signed request.
const signedCallerHeader = "Orderseal-Identity"

// Limits bound what clients can make one server hold: request slots, header
// fields, body bytes and time, so that slow or hostile clients cannot pin it.
// A zero field takes its default; tests shorten the timeouts.
type Limits struct {
	MaxInFlight       int   // requests handled at once; more are refused at once, never queued
	MaxHeaderFields   int   // header field lines in one request
	MaxHeaderBytes    int   // request line and header bytes (net/http answers 431 itself)
	MaxBody           int64 // any request body
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration // the whole request, body included
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration // a keep-alive connection waiting for its next request
	ShutdownGrace     time.Duration // how long in-flight requests may take to finish on shutdown
	RetryAfter        time.Duration // the Retry-After of an overloaded answer
}

// withDefaults fills the zero fields.
func (l Limits) withDefaults() Limits {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if l.MaxInFlight <= 0 {
		l.MaxInFlight = DefaultMaxInFlight
	}
	if l.MaxHeaderFields <= 0 {
		l.MaxHeaderFields = DefaultMaxHeaderFields
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = MaxHeaderBytes
	}
	if l.MaxBody <= 0 {
		l.MaxBody = DefaultMaxBody
	}
	def(&l.ReadHeaderTimeout, ReadHeaderTimeout)
	def(&l.ReadTimeout, ReadTimeout)
	def(&l.WriteTimeout, WriteTimeout)
	def(&l.IdleTimeout, IdleTimeout)
	def(&l.ShutdownGrace, ShutdownGrace)
	def(&l.RetryAfter, DefaultRetryAfter)
	return l
}

// Limit wraps h with the per-request limits of l: too many header fields
// (431 too-many-headers), a declared body over MaxBody (413 body-too-large;
// a chunked body is cut at MaxBody while read), and more than MaxInFlight
// requests at once (503 overloaded with Retry-After). Each refusal is
// problem+json and costs no more than counting: it comes before any key
// derivation or handler.
func Limit(h http.Handler, l Limits) http.Handler {
	l = l.withDefaults()
	slots := make(chan struct{}, l.MaxInFlight)
	retryAfter := strconv.Itoa(max(1, int(l.RetryAfter.Round(time.Second)/time.Second)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := 0
		for _, v := range r.Header {
			n += len(v)
		}
		if n > l.MaxHeaderFields {
			writeProblem(w, r, problem.New(http.StatusRequestHeaderFieldsTooLarge, CodeTooManyHeaders, "Too many header fields",
				fmt.Sprintf("A request carries at most %d header fields.", l.MaxHeaderFields)))
			return
		}
		// A signed request says who calls: its verifier refuses an
		// oversized body itself, signed, without reading it, so the caller
		// can tell the refusal from a forgery (issue 22 item 7). Any other
		// is refused here, unsigned.
		if r.ContentLength > l.MaxBody && r.Header.Get(signedCallerHeader) == "" {
			writeProblem(w, r, problem.New(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "Body too large",
				fmt.Sprintf("The request body exceeds %d bytes.", l.MaxBody)))
			return
		}
		select {
		case slots <- struct{}{}:
		default:
			w.Header().Set("Retry-After", retryAfter)
			writeProblem(w, r, problem.New(http.StatusServiceUnavailable, CodeOverloaded, "Overloaded",
				"The server is handling as many requests as it takes; retry later."))
			return
		}
		sl := &slot{release: func() { <-slots }}
		defer sl.done()
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, l.MaxBody)
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), slotKey{}, sl)))
	})
}

// slot is one of Limit's MaxInFlight request slots, given back once.
type slot struct {
	once    sync.Once
	release func()
}

func (s *slot) done() { s.once.Do(s.release) }

type slotKey struct{}

// Authenticated gives r's slot among the MaxInFlight back to Limit: the
// caller is authenticated, and from here on its request counts against that
// caller's own budget (the signed-request verifier's per-caller limit), so
// one key holder's slow requests cannot exhaust the slots everyone else —
// unauthenticated requests included — needs.
func Authenticated(r *http.Request) {
	if s, ok := r.Context().Value(slotKey{}).(*slot); ok {
		s.done()
	}
}

// writeProblem writes p as problem+json without echo (Limit runs outside it).
func writeProblem(w http.ResponseWriter, r *http.Request, p *problem.Problem) {
	body, err := json.Marshal(p)
	if err != nil {
		panic(err) // only strings and an int
	}
	h := w.Header()
	h.Set("Content-Type", problem.ContentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(p.Status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// IsBodyTooLarge reports whether err is a read cut short by Limit's MaxBody.
func IsBodyTooLarge(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

// Serve listens on addr, writes the bound address to addrFile when set (so a
// caller that asked for port 0 learns the port), serves h until ctx ends,
// then lets in-flight requests finish.
func Serve(ctx context.Context, addr, addrFile string, h http.Handler, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ServeListener(ctx, ln, addrFile, h, logger)
}

// ServeListener is Serve on a listener the caller opened, with the default
// Limits.
func ServeListener(ctx context.Context, ln net.Listener, addrFile string, h http.Handler, logger *slog.Logger) error {
	return ServeListenerWith(ctx, ln, addrFile, h, logger, Limits{})
}

// ServeListenerWith serves h on ln behind Limit(h, lim) and lim's timeouts.
// When ctx ends it stops accepting connections, lets requests in flight
// finish within lim.ShutdownGrace and returns nil; past the grace the
// remaining connections are closed and the deadline error returned.
func ServeListenerWith(ctx context.Context, ln net.Listener, addrFile string, h http.Handler, logger *slog.Logger, lim Limits) error {
	return serveListener(ctx, ln, addrFile, Limit(h, lim), logger, lim)
}

// serveListener is ServeListenerWith with h already behind its limits.
func serveListener(ctx context.Context, ln net.Listener, addrFile string, h http.Handler, logger *slog.Logger, lim Limits) error {
	lim = lim.withDefaults()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: lim.ReadHeaderTimeout, ReadTimeout: lim.ReadTimeout,
		WriteTimeout: lim.WriteTimeout, IdleTimeout: lim.IdleTimeout, MaxHeaderBytes: lim.MaxHeaderBytes,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	if addrFile != "" {
		if err := writeAtomic(addrFile, []byte(ln.Addr().String()+"\n")); err != nil {
			ln.Close()
			return err
		}
	}
	logger.Info("listening", "addr", ln.Addr().String(), "max_in_flight", lim.MaxInFlight)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), lim.ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		<-errc
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}

func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".addr-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Logger is the JSON logger daemons write to stderr, at Info.
func Logger(w io.Writer, daemon string) *slog.Logger { return LoggerAt(w, daemon, slog.LevelInfo) }

// LoggerAt is Logger logging from level on (-log-level).
func LoggerAt(w io.Writer, daemon string, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})).With("daemon", daemon)
}
