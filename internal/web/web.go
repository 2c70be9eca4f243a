// Package web is what every orderseal daemon shares around echo: strict
// request binding, secure defaults and serving on a listener with timeouts
// and graceful shutdown.
package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
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
	if err != nil {
		return problem.New(http.StatusBadRequest, "bad-request", "Bad request", "The request body could not be read.")
	}
	if len(body) > max {
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
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("Content-Security-Policy", "default-src 'none'")
			return next(c)
		}
	})
	return e
}

// Timeouts every server gets, so slow clients cannot pin it.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 120 * time.Second
	MaxHeaderBytes    = 32 << 10
	ShutdownGrace     = 20 * time.Second
)

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

// ServeListener is Serve on a listener the caller opened.
func ServeListener(ctx context.Context, ln net.Listener, addrFile string, h http.Handler, logger *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: ReadHeaderTimeout, ReadTimeout: ReadTimeout,
		WriteTimeout: WriteTimeout, IdleTimeout: IdleTimeout, MaxHeaderBytes: MaxHeaderBytes,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	if addrFile != "" {
		if err := writeAtomic(addrFile, []byte(ln.Addr().String()+"\n")); err != nil {
			ln.Close()
			return err
		}
	}
	logger.Info("listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
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

// Logger is the JSON logger daemons write to stderr.
func Logger(w io.Writer, daemon string) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})).With("daemon", daemon)
}
