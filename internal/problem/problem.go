// Package problem writes RFC 9457 problem+json errors for every orderseal
// daemon (DESIGN.md §8): stable machine codes, user-safe titles and details,
// and the internal error kept apart and logged, never sent (in the spirit of
// smallstep/certificates' errs package).
//
// Problem is rfc9457.Problem; clients that must not import echo decode
// problems with package rfc9457 directly.
package problem

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/labstack/echo/v4"

	"orderseal/internal/problem/rfc9457"
)

// Problem is an RFC 9457 problem document; it implements error.
type Problem = rfc9457.Problem

// ContentType is the media type of every problem response.
const ContentType = rfc9457.ContentType

// Codes for the refusals every daemon shares.
const (
	CodeBadRequest       = "bad-request"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not-found"
	CodeMethodNotAllowed = "method-not-allowed"
	CodeBodyTooLarge     = "body-too-large"
	CodeUnsupportedMedia = "unsupported-media-type"
	CodeTooManyRequests  = "too-many-requests"
	CodeUnavailable      = "unavailable"
	CodeRefused          = "request-refused" // any other 4xx from the framework
	CodeInternal         = "internal"
)

// New returns a problem; it panics on a malformed code (a programming error).
func New(status int, code, title, detail string) *Problem {
	return rfc9457.New(status, code, title, detail)
}

// Write sends p as application/problem+json with Cache-Control: no-store.
// Only the public members are written; the internal cause never is.
func Write(c echo.Context, p *Problem) error {
	if p == nil {
		p = internalProblem()
	}
	q := *p
	if q.Status < 400 || q.Status > 599 {
		q.Status = http.StatusInternalServerError
	}
	if q.Type == "" {
		q.Type = rfc9457.TypeBase + q.Code
	}
	body, err := json.Marshal(&q)
	if err != nil {
		return err // cannot happen: only strings and an int
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, ContentType)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del(echo.HeaderContentLength)
	if c.Request().Method == http.MethodHead {
		return c.NoContent(q.Status)
	}
	return c.Blob(q.Status, ContentType, body)
}

// frameworkCodes maps the statuses echo and its middleware return to codes,
// titles and fixed details: echo's own messages can quote request bytes.
var frameworkCodes = map[int][3]string{
	http.StatusBadRequest:            {CodeBadRequest, "Bad request", "The request could not be parsed."},
	http.StatusUnauthorized:          {CodeUnauthorized, "Unauthorized", "The request is not authenticated."},
	http.StatusForbidden:             {CodeForbidden, "Forbidden", "The request is not allowed."},
	http.StatusNotFound:              {CodeNotFound, "Not found", "No such resource."},
	http.StatusMethodNotAllowed:      {CodeMethodNotAllowed, "Method not allowed", "The resource does not support this method."},
	http.StatusRequestEntityTooLarge: {CodeBodyTooLarge, "Body too large", "The request body exceeds the size limit."},
	http.StatusUnsupportedMediaType:  {CodeUnsupportedMedia, "Unsupported media type", "The request body has an unsupported content type."},
	http.StatusTooManyRequests:       {CodeTooManyRequests, "Too many requests", "Slow down and retry later."},
	http.StatusServiceUnavailable:    {CodeUnavailable, "Service unavailable", "The service is temporarily unavailable; retry later."},
}

func internalProblem() *Problem {
	return New(http.StatusInternalServerError, CodeInternal, "Internal error",
		"An internal error occurred; it has been logged.")
}

// From maps any error to the problem that may be shown to the caller:
// a *Problem as is; an echo.HTTPError to its status's code with a fixed,
// user-safe detail; anything else to a 500 "internal" carrying err as its
// internal cause.
func From(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) && p != nil {
		return p
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		if m, ok := frameworkCodes[he.Code]; ok {
			return New(he.Code, m[0], m[1], m[2]).WithInternal(err)
		}
		if he.Code >= 400 && he.Code < 500 {
			return New(he.Code, CodeRefused, "Request refused", http.StatusText(he.Code)+".").WithInternal(err)
		}
	}
	return internalProblem().WithInternal(err)
}

// Recover is middleware that turns a handler's panic into an error (a 500
// "internal" whose cause, the panic value, is logged and never sent), so a
// handler bug answers a problem rather than dropping the connection.
// http.ErrAbortHandler still aborts.
func Recover(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				err = fmt.Errorf("handler panic on %s %s: %v", c.Request().Method, c.Path(), r)
			}
		}()
		return next(c)
	}
}

// ErrorHandler is the echo error handler of every orderseal daemon. It writes
// From(err) and logs: 5xx at error level with the internal cause, other
// refusals at debug level. Logs carry method, path (never the query) and
// codes, never bodies.
func ErrorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(err error, c echo.Context) {
		ctx := c.Request().Context()
		if c.Response().Committed {
			logger.WarnContext(ctx, "error after the response was committed", attrs(c, nil, err)...)
			return
		}
		p := From(err)
		level := slog.LevelDebug
		if p.Status >= 500 {
			level = slog.LevelError
		}
		logger.Log(ctx, level, "request refused", attrs(c, p, p.Internal())...)
		if werr := Write(c, p); werr != nil {
			logger.WarnContext(context.WithoutCancel(ctx), "writing problem response", "err", werr)
		}
	}
}

func attrs(c echo.Context, p *Problem, cause error) []any {
	r := c.Request()
	a := []any{"method", r.Method, "path", r.URL.Path}
	if p != nil {
		a = append(a, "status", p.Status, "code", p.Code)
	}
	if cause != nil {
		a = append(a, "err", cause.Error())
	}
	return a
}
