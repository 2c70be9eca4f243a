// Package webtest helps the fuzz targets of every daemon drive a body
// through the path the network would: seed corpora that must load, an
// in-process transport in front of the real handler, and the round-trip
// check of what a decoder accepted. It is imported by tests only.
package webtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/signedhttp"
	"orderseal/internal/signedhttp/httpsig"
	"orderseal/internal/strictjson"
	"orderseal/internal/web"
	"orderseal/keygen"
	"orderseal/keygen/center"
	"orderseal/order"
	"orderseal/suite"
)

var writeCorpus = flag.Bool("webtest.write-corpus", false, "rewrite the seed files the fuzz targets generate under testdata/fuzz/")

// corpusHeader opens every file of the go test fuzz corpus format.
const corpusHeader = "go test fuzz v1\n"

// Corpus returns the inputs of testdata/fuzz/<f.Name()>/ — the files go test
// also runs as seeds — each holding one []byte. It fails f when the
// directory holds none or a file does not parse: a renamed target or
// directory must not leave the fuzzer without seeds and the test green.
func Corpus(f *testing.F) [][]byte {
	f.Helper()
	dir := filepath.Join("testdata", "fuzz", f.Name())
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		f.Fatal(err)
	}
	var out [][]byte
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		v, err := parseCorpusFile(raw)
		if err != nil {
			f.Fatalf("%s: %v", p, err)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		f.Fatalf("no seed corpus under %s", dir)
	}
	return out
}

func parseCorpusFile(raw []byte) ([]byte, error) {
	s, ok := strings.CutPrefix(string(raw), corpusHeader)
	if !ok {
		return nil, errors.New("not a go test fuzz v1 file")
	}
	s = strings.TrimSpace(s)
	q, ok := strings.CutPrefix(s, "[]byte(")
	if !ok || !strings.HasSuffix(q, ")") || strings.Contains(q, "\n") {
		return nil, errors.New("want exactly one []byte value")
	}
	v, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
	if err != nil {
		return nil, fmt.Errorf("[]byte value: %w", err)
	}
	return []byte(v), nil
}

// WriteCorpus writes data as testdata/fuzz/<f.Name()>/<name> when the test
// runs with -webtest.write-corpus; otherwise it does nothing. Targets call
// it for the genuine inputs they build, before Corpus.
func WriteCorpus(f *testing.F, name string, data []byte) {
	f.Helper()
	if !*writeCorpus {
		return
	}
	dir := filepath.Join("testdata", "fuzz", f.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	content := corpusHeader + "[]byte(" + strconv.Quote(string(data)) + ")\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		f.Fatal(err)
	}
}

// Transport serves each request in process with Handler behind the
// default web.Limit, as a daemon's listener would: the request the handler
// sees carries the request-target of the request line.
type Transport struct{ Handler http.Handler }

// RoundTrip implements http.RoundTripper.
func (t Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	sreq := httptest.NewRequestWithContext(req.Context(), req.Method, req.URL.RequestURI(), bytes.NewReader(body))
	sreq.Header = req.Header.Clone()
	sreq.Host = req.URL.Host
	rec := httptest.NewRecorder()
	web.Limit(t.Handler, web.Limits{}).ServeHTTP(rec, sreq)
	return rec.Result(), nil
}

// Client is an HTTP client whose requests Handler serves in process.
func Client(h http.Handler) *http.Client { return &http.Client{Transport: Transport{Handler: h}} }

// CheckAnswer checks a verified answer to a signed request: below 500, and
// when not 2xx an RFC 9457 problem whose status is the answer's.
func CheckAnswer(t testing.TB, resp *httpsig.Response) {
	t.Helper()
	if resp.Status >= 500 {
		t.Fatalf("HTTP %d: %s", resp.Status, resp.Body)
	}
	if resp.Status < 300 {
		return
	}
	if ct := resp.Header.Get("Content-Type"); ct != rfc9457.ContentType {
		t.Fatalf("HTTP %d with Content-Type %q: %s", resp.Status, ct, resp.Body)
	}
	p, err := rfc9457.Decode(resp.Body)
	if err != nil || p.Status != resp.Status {
		t.Fatalf("HTTP %d: not its problem document (%v): %s", resp.Status, err, resp.Body)
	}
}

// RoundTrip checks that v, which a decoder accepted, re-encodes to JSON that
// decodes strictly (within max bytes) and validates again, and that this
// second value encodes to the same bytes: nothing accepted is lost or
// changed by a round trip.
func RoundTrip[T any](t testing.TB, v *T, max int) *T {
	t.Helper()
	first, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("accepted value does not encode: %v", err)
	}
	again := new(T)
	if err := strictjson.Decode(first, again, max); err != nil {
		t.Fatalf("re-encoded value does not decode: %v\n%s", err, first)
	}
	if err := web.Validate(again); err != nil {
		t.Fatalf("re-encoded value does not validate: %v\n%s", err, first)
	}
	second, err := json.Marshal(again)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, second) {
		t.Fatalf("round trip changed the value:\n%s\n%s", first, second)
	}
	return again
}

// NeverSeen is a nonce store that remembers nothing, so a fuzz target can
// send a genuine request again and again without it turning into a replay.
type NeverSeen struct{}

// Record implements signedhttp.NonceStore.
func (NeverSeen) Record(context.Context, string, string, time.Time, time.Time) error { return nil }

// Answerer is the far side of a client's fuzz target: it authenticates each
// request as keys' party would and answers it, signed, with the status and
// body set last (problem+json for 4xx and 5xx, JSON otherwise).
type Answerer struct {
	h      http.Handler
	answer atomic.Pointer[answer]
}

type answer struct {
	status int
	body   []byte
}

// NewAnswerer answers as keys.Identity() on every path and method.
func NewAnswerer(keys *keygen.Cache) *Answerer {
	a := &Answerer{}
	a.Set(http.StatusOK, []byte("{}"))
	e := web.New(slog.New(slog.DiscardHandler))
	e.Use(signedhttp.NewVerifier(keys, signedhttp.WithNonceStore(NeverSeen{})).Middleware())
	e.Any("/*", func(c echo.Context) error {
		ans := a.answer.Load()
		ct := echo.MIMEApplicationJSON
		if ans.status >= 400 {
			ct = rfc9457.ContentType
		}
		return c.Blob(ans.status, ct, ans.body)
	})
	a.h = e
	return a
}

// Set makes every later request answered with status and body.
func (a *Answerer) Set(status int, body []byte) {
	a.answer.Store(&answer{status: status, body: bytes.Clone(body)})
}

// Client is an HTTP client whose requests the Answerer serves in process.
func (a *Answerer) Client() *http.Client { return Client(a.h) }

// MustAccept sends every seed and fails f unless at least one is answered
// 2xx: a corpus that no longer reaches the accepting branch (keys, clock or
// format moved on) proves little.
func MustAccept(f *testing.F, seeds [][]byte, send func(body []byte) int) {
	f.Helper()
	for _, s := range seeds {
		if status := send(s); status >= 200 && status < 300 {
			return
		}
	}
	f.Fatalf("no seed of %d under testdata/fuzz/%s is accepted", len(seeds), f.Name())
}

// BundleRoundTrip checks an accepted bundle re-encodes to one that parses
// to the same bytes and header hash.
func BundleRoundTrip(t testing.TB, raw []byte) *order.Bundle {
	t.Helper()
	b, err := order.ParseBundle(raw)
	if err != nil {
		t.Fatalf("accepted bundle does not parse: %v", err)
	}
	out, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	again, err := order.ParseBundle(out)
	if err != nil {
		t.Fatalf("re-encoded bundle does not parse: %v", err)
	}
	out2, err := again.MarshalJSON()
	if err != nil || !bytes.Equal(out, out2) || again.HeaderHash() != b.HeaderHash() {
		t.Fatalf("bundle changed across a round trip: %v", err)
	}
	return b
}

// AnswerStatuses are the statuses a client's fuzz target answers with,
// picked by the second byte of its input (see SplitAnswer).
var AnswerStatuses = []int{200, 201, 202, 204, 400, 401, 403, 404, 409, 410, 413, 422, 429, 500, 503}

// SplitAnswer reads a client fuzz input: the first byte picks one of calls
// client calls, the second a status from AnswerStatuses, the rest is the
// body the far side answers with. ok is false for inputs too short.
func SplitAnswer(data []byte, calls int) (call, status int, body []byte, ok bool) {
	if len(data) < 2 {
		return 0, 0, nil, false
	}
	return int(data[0]) % calls, AnswerStatuses[int(data[1])%len(AnswerStatuses)], data[2:], true
}

// JoinAnswer builds the input SplitAnswer reads: the seed form of an answer.
func JoinAnswer(call, status int, body []byte) []byte {
	i := 0
	for i < len(AnswerStatuses) && AnswerStatuses[i] != status {
		i++
	}
	if i == len(AnswerStatuses) {
		panic(fmt.Sprintf("webtest: status %d is not in AnswerStatuses", status))
	}
	return append([]byte{byte(call), byte(i)}, body...)
}

// CheckClientError checks what a client call made of an answer with status
// and body: a refusal (not 2xx) is an error, and when the body is a problem
// document the error is that *rfc9457.Problem with the answer's status.
func CheckClientError(t testing.TB, status int, body []byte, err error) {
	t.Helper()
	if status >= 200 && status < 300 {
		return
	}
	if err == nil {
		t.Fatalf("HTTP %d taken as success", status)
	}
	if _, derr := rfc9457.Decode(body); derr == nil {
		var p *rfc9457.Problem
		if !errors.As(err, &p) || p.Status != status {
			t.Fatalf("HTTP %d with a problem document became %v", status, err)
		}
	}
}

// StatusOf is what MustAccept counts for a client call: 200 when it
// succeeded, 400 when it did not.
func StatusOf(err error) int {
	if err != nil {
		return http.StatusBadRequest
	}
	return http.StatusOK
}

// Bundle is a small order sealed by alice (a key of m) for parties, shipped
// to a vault token when parties name a vault and to an address otherwise:
// what a client's call relays.
func Bundle(t testing.TB, m *center.Master, p order.Parties) *order.Bundle {
	t.Helper()
	alice, err := m.Issue("cardholder:alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	o := &order.Order{Currency: "EUR", Items: []order.Item{{SKU: "A-1", Name: "A", Qty: 1, UnitPrice: 100}}, Total: 100,
		Card: order.Card{Number: "4111111111111111", Expiry: "2031-12"}, Plan: order.Plan{Installments: 1},
		Buyer:     order.Buyer{Name: "Alice", Phone: "+4915112345678", Email: "alice@example.org"},
		Recipient: order.Recipient{Name: "Bob", Phone: "+4915112345678"}}
	if p.Vault != "" {
		o.ShipTo.Token = "tok_fuzzfuzzfuzzfuzzfuzzfuzzaa_adr"
	} else {
		o.ShipTo.Address = &order.Address{Name: "Bob", Line1: "Fuzzweg 1", City: "Berlin", PostalCode: "10115", Country: "DE"}
	}
	b, err := order.Seal(o, suite.NewKeys(alice, 4), p, order.SealOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Main runs a package's tests with the fuzzer's minimization of each new
// input bounded to minimizeExecs runs, unless -fuzzminimizetime is given:
// targets whose inputs are sealed bundles of kilobytes would otherwise
// spend the default 60 s minimizing each input that adds coverage — more
// than the whole time 'make fuzz' gives a target. Call it from TestMain.
func Main(m *testing.M, minimizeExecs int) int {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.fuzzminimizetime" })
	if !set {
		if err := flag.Set("test.fuzzminimizetime", fmt.Sprintf("%dx", minimizeExecs)); err != nil {
			panic(err)
		}
	}
	return m.Run()
}
