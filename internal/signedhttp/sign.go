package signedhttp

import (
	"bytes"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"orderseal/internal/signedhttp/httpsig"
)

// signer buffers a response under echo.Response, then signs and sends it.
type signer struct {
	c         echo.Context
	real      http.ResponseWriter
	buf       bufferWriter
	keys      *httpsig.Keys
	nonce     string
	responder string
	caller    string
	done      bool
}

func startSigning(c echo.Context, keys *httpsig.Keys, nonce, responder, caller string) *signer {
	res := c.Response()
	s := &signer{c: c, real: res.Writer, keys: keys, nonce: nonce, responder: responder, caller: caller}
	s.buf.header = res.Writer.Header()
	res.Writer = &s.buf
	return s
}

// abandon puts the real writer back without sending (a panic is unwinding).
func (s *signer) abandon() {
	if !s.done {
		s.c.Response().Writer = s.real
	}
}

// finish signs what the handler wrote and sends it.
func (s *signer) finish() error {
	s.done = true
	res := s.c.Response()
	res.Writer = s.real
	status := s.buf.status
	if status == 0 {
		status = http.StatusOK // nothing written: net/http would answer 200 too
	}
	body := s.buf.body.Bytes()
	if !bodyAllowed(s.c.Request().Method, status) {
		body = nil
	}
	f := httpsig.ResponseFields{Nonce: s.nonce, Status: status, BodySHA256: httpsig.Digest(body),
		Responder: s.responder, Caller: s.caller}
	msg, err := f.Message()
	if err != nil {
		return err // cannot happen: every field was bounded on the way in
	}
	h := s.real.Header()
	h.Set(httpsig.HeaderIdentity, s.responder)
	h.Set(httpsig.HeaderSignature, s.keys.Sign(msg))
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store") // bound to one nonce: never worth caching
	}
	if bodyAllowed(s.c.Request().Method, status) {
		h.Set(echo.HeaderContentLength, strconv.Itoa(len(body)))
	}
	res.Status = status
	res.Committed = true
	s.real.WriteHeader(status)
	if len(body) > 0 {
		if _, err := s.real.Write(body); err != nil {
			return err
		}
	}
	return nil
}

// bodyAllowed mirrors net/http: HEAD, 1xx, 204 and 304 responses carry no body.
func bodyAllowed(method string, status int) bool {
	return method != http.MethodHead && status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}

// bufferWriter holds the final status and body; headers go straight to the
// real writer's map, which is not sent until finish.
type bufferWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *bufferWriter) Header() http.Header { return w.header }

func (w *bufferWriter) WriteHeader(code int) {
	if code < 200 || w.status != 0 {
		return // informational responses are dropped; the first final status wins
	}
	w.status = code
}

func (w *bufferWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

// Flush is a no-op: nothing leaves before the signature is known.
func (w *bufferWriter) Flush() {}
