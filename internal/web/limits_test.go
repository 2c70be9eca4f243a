package web_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/web"
)

// serve runs h behind ServeListenerWith on a loopback listener the test
// opened, and returns its address and a stop function that cancels the
// server and returns what ServeListenerWith returned.
func serve(t *testing.T, h http.Handler, lim web.Limits) (addr string, stop func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- web.ServeListenerWith(ctx, ln, "", h, slog.New(slog.DiscardHandler), lim) }()
	var once sync.Once
	var serr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case serr = <-errc:
			case <-time.After(30 * time.Second):
				serr = errors.New("ServeListenerWith did not return")
			}
		})
		return serr
	}
	t.Cleanup(func() { stop() })
	return ln.Addr().String(), stop
}

// client is an HTTP client that never reuses a connection across tests.
func client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// problemOf checks resp is a problem+json with status and code.
func problemOf(t *testing.T, resp *http.Response, status int, code string) {
	t.Helper()
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != rfc9457.ContentType {
		t.Fatalf("HTTP %d %q: %s; want %d problem+json", resp.StatusCode, resp.Header.Get("Content-Type"), body, status)
	}
	if resp.Request.Method == http.MethodHead {
		return
	}
	p, err := rfc9457.Decode(body)
	if err != nil || p.Code != code || p.Status != status {
		t.Fatalf("problem %+v %v; want %d %q", p, err, status, code)
	}
}

func ok(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.Write([]byte("ok"))
}

// TestLimitRefusals: header fields over the cap, bodies over the ceiling
// (declared or chunked) are refused with problem+json before the handler
// does any work; requests at the limits pass.
func TestLimitRefusals(t *testing.T) {
	e := web.New(slog.New(slog.DiscardHandler))
	e.POST("/bind", func(c echo.Context) error {
		var v struct {
			A string `json:"a"`
		}
		if err := web.Bind(c, &v, 1<<20); err != nil {
			return err
		}
		return c.String(http.StatusOK, "ok")
	})
	e.Any("/", func(c echo.Context) error { ok(c.Response(), c.Request()); return nil })
	addr, _ := serve(t, e, web.Limits{MaxHeaderFields: 8, MaxBody: 64})
	base := "http://" + addr

	headers := func(n int) http.Header {
		h := http.Header{}
		for i := range n {
			h.Set(fmt.Sprintf("X-Field-%d", i), "v")
		}
		return h
	}
	// chunked hides the length: the body is cut while read.
	chunked := func(n int) io.Reader {
		return io.MultiReader(strings.NewReader(`{"a":"`+strings.Repeat("x", n)), strings.NewReader(`"}`))
	}

	tests := []struct {
		name   string
		method string
		path   string
		header http.Header
		body   func() io.Reader
		length int64 // -1: chunked
		status int
		code   string
	}{
		// Go's client adds User-Agent, Accept-Encoding and Connection: 5 + 3 = 8 fields.
		{"fields at the cap", http.MethodGet, "/", headers(5), nil, 0, http.StatusOK, ""},
		{"fields over the cap", http.MethodGet, "/", headers(6), nil, 0, http.StatusRequestHeaderFieldsTooLarge, web.CodeTooManyHeaders},
		{"one field repeated over the cap", http.MethodGet, "/", http.Header{"X-A": strings.Split("abcdefgh", "")}, nil, 0,
			http.StatusRequestHeaderFieldsTooLarge, web.CodeTooManyHeaders},
		// No Accept-Encoding on a HEAD.
		{"HEAD over the cap", http.MethodHead, "/", headers(7), nil, 0, http.StatusRequestHeaderFieldsTooLarge, web.CodeTooManyHeaders},
		{"body at the ceiling", http.MethodPost, "/", nil, func() io.Reader { return bytes.NewReader(make([]byte, 64)) }, 64, http.StatusOK, ""},
		{"declared body over the ceiling", http.MethodPost, "/", nil, func() io.Reader { return bytes.NewReader(make([]byte, 65)) }, 65,
			http.StatusRequestEntityTooLarge, web.CodeBodyTooLarge},
		{"chunked body under the ceiling", http.MethodPost, "/bind", nil, func() io.Reader { return chunked(10) }, -1, http.StatusOK, ""},
		{"chunked body over the ceiling", http.MethodPost, "/bind", nil, func() io.Reader { return chunked(100) }, -1,
			http.StatusRequestEntityTooLarge, web.CodeBodyTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != nil {
				body = tc.body()
			}
			req, err := http.NewRequest(tc.method, base+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			req.ContentLength = tc.length
			resp, err := client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if tc.status == http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(b) != "ok" {
					t.Fatalf("HTTP %d %s", resp.StatusCode, b)
				}
				return
			}
			problemOf(t, resp, tc.status, tc.code)
		})
	}
}

// blocker is a handler that holds each request until released.
type blocker struct {
	entered chan struct{}
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{entered: make(chan struct{}, 64), release: make(chan struct{})}
}

func (b *blocker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/fast" {
		w.Write([]byte("fast"))
		return
	}
	if r.URL.Path == "/panic" {
		panic(http.ErrAbortHandler) // net/http closes the connection quietly
	}
	b.entered <- struct{}{}
	<-b.release
	w.Write([]byte("done"))
}

func (b *blocker) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-b.entered:
		case <-time.After(10 * time.Second):
			t.Fatal("the request never reached the handler")
		}
	}
}

// TestOverloaded: past MaxInFlight requests in progress, the next one is
// refused at once (503 overloaded, Retry-After) rather than queued; slots
// come back when requests end, even by a panic.
func TestOverloaded(t *testing.T) {
	b := newBlocker()
	addr, _ := serve(t, b, web.Limits{MaxInFlight: 2, RetryAfter: 3 * time.Second})
	base := "http://" + addr

	answers := make(chan string, 2)
	for range 2 {
		go func() {
			resp, err := client().Get(base + "/slow")
			if err != nil {
				answers <- err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answers <- string(body)
		}()
	}
	b.wait(t, 2)

	for _, path := range []string{"/fast", "/slow"} {
		start := time.Now()
		resp, err := client().Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		if ra := resp.Header.Get("Retry-After"); ra != "3" {
			t.Fatalf("Retry-After %q, want 3", ra)
		}
		problemOf(t, resp, http.StatusServiceUnavailable, web.CodeOverloaded)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("the refusal took %v: the request was queued", d)
		}
	}

	close(b.release)
	for range 2 {
		if got := <-answers; got != "done" {
			t.Fatalf("in-flight request answered %q", got)
		}
	}
	// Slots are back, also after handlers that panic.
	for range 3 {
		if _, err := client().Get(base + "/panic"); err == nil {
			t.Fatal("a panicking handler answered")
		}
	}
	for range 3 {
		resp, err := client().Get(base + "/fast")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "fast" {
			t.Fatalf("after the load: HTTP %d %s", resp.StatusCode, body)
		}
	}
}

// closedWithin reads from conn until the server closes it and fails the
// test unless that happens within d. Whatever the server sent is returned.
func closedWithin(t *testing.T, conn net.Conn, d time.Duration) []byte {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(d))
	got, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %v", d)
	}
	return got
}

// TestSlowClients: a client trickling its headers byte by byte, or its body,
// is cut off at the read timeouts; many of them do not keep the server from
// answering others, and the in-flight slot a trickled body held comes back.
func TestSlowClients(t *testing.T) {
	const (
		headerTimeout = 300 * time.Millisecond
		readTimeout   = 600 * time.Millisecond
		slack         = 5 * time.Second // a shared, noisy machine
	)
	bodyErr := make(chan error, 8)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fast" {
			w.Write([]byte("fast"))
			return
		}
		_, err := io.ReadAll(r.Body)
		bodyErr <- err
		if err != nil {
			http.Error(w, "slow body", http.StatusBadRequest)
			return
		}
		w.Write([]byte("read"))
	})
	addr, _ := serve(t, h, web.Limits{MaxInFlight: 1, ReadHeaderTimeout: headerTimeout, ReadTimeout: readTimeout})

	// trickle writes s one byte every 20 ms until it is written or the
	// server hangs up.
	trickle := func(conn net.Conn, s string) {
		for i := range len(s) {
			if _, err := conn.Write([]byte{s[i]}); err != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	dial := func(t *testing.T) net.Conn {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}

	t.Run("headers trickled", func(t *testing.T) {
		const slowClients = 8 // more than MaxInFlight: headers take no slot
		head := "GET /fast HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 500) + "\r\n\r\n"
		var wg sync.WaitGroup
		cut := make(chan time.Duration, slowClients)
		for range slowClients {
			conn := dial(t)
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				go trickle(conn, head)
				got := closedWithin(t, conn, headerTimeout+slack)
				if bytes.Contains(got, []byte("fast")) {
					t.Error("a trickled request was answered")
				}
				cut <- time.Since(start)
			}()
		}
		// Meanwhile the server answers others.
		time.Sleep(headerTimeout / 3)
		resp, err := client().Get("http://" + addr + "/fast")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HTTP %d while slow clients trickle", resp.StatusCode)
		}
		wg.Wait()
		close(cut)
		for d := range cut {
			if d < headerTimeout*2/3 {
				t.Fatalf("cut after %v, before the header timeout %v", d, headerTimeout)
			}
		}
	})

	t.Run("body trickled", func(t *testing.T) {
		conn := dial(t)
		start := time.Now()
		if _, err := io.WriteString(conn, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		go trickle(conn, strings.Repeat("b", 1000))
		select {
		case err := <-bodyErr:
			if err == nil {
				t.Fatal("the trickled body was read whole")
			}
		case <-time.After(readTimeout + slack):
			t.Fatal("the handler is still reading the trickled body")
		}
		closedWithin(t, conn, slack)
		if d := time.Since(start); d < readTimeout*2/3 {
			t.Fatalf("cut after %v, before the read timeout %v", d, readTimeout)
		}
		// The only slot is free again.
		resp, err := client().Get("http://" + addr + "/fast")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HTTP %d after the slow body: its slot was not released", resp.StatusCode)
		}
	})
}

// TestIdleKeepAlive: a keep-alive connection serves a second request, then
// is closed once idle for IdleTimeout.
func TestIdleKeepAlive(t *testing.T) {
	const idle = 400 * time.Millisecond
	addr, _ := serve(t, http.HandlerFunc(ok), web.Limits{IdleTimeout: idle})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for i := range 2 {
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on the kept-alive connection: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "ok" || resp.Close {
			t.Fatalf("request %d: HTTP %d %q close=%v", i, resp.StatusCode, body, resp.Close)
		}
	}
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(idle + 5*time.Second))
	n, err := br.Read(make([]byte, 1))
	if n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: read %d, %v; want EOF", n, err)
	}
	if d := time.Since(start); d < idle*2/3 {
		t.Fatalf("closed after %v idle, before the idle timeout %v", d, idle)
	}
}

// TestGracefulShutdown: a request in flight when the server is told to stop
// gets its answer, new connections are refused from then on, and the server
// returns nil once the request is done; past the grace, it returns the
// deadline error and closes what is left.
func TestGracefulShutdown(t *testing.T) {
	tests := []struct {
		name    string
		grace   time.Duration
		release bool // the in-flight request finishes within the grace
		wantErr error
	}{
		{"in-flight request finishes", 10 * time.Second, true, nil},
		{"in-flight request outlives the grace", 300 * time.Millisecond, false, context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBlocker()
			addr, stop := serve(t, b, web.Limits{ShutdownGrace: tc.grace})
			type answer struct {
				status int
				body   string
				err    error
			}
			answers := make(chan answer, 1)
			go func() {
				resp, err := client().Get("http://" + addr + "/slow")
				if err != nil {
					answers <- answer{err: err}
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				answers <- answer{resp.StatusCode, string(body), err}
			}()
			b.wait(t, 1)

			stopped := make(chan error, 1)
			go func() { stopped <- stop() }()
			// New connections are refused once shutdown begins.
			deadline := time.Now().Add(10 * time.Second)
			for {
				conn, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					break
				}
				conn.Close()
				if time.Now().After(deadline) {
					t.Fatal("the server still accepts connections while shutting down")
				}
				time.Sleep(5 * time.Millisecond)
			}
			if tc.release {
				select {
				case err := <-stopped:
					t.Fatalf("the server returned (%v) with a request in flight", err)
				case <-time.After(100 * time.Millisecond):
				}
				close(b.release)
				a := <-answers
				if a.err != nil || a.status != http.StatusOK || a.body != "done" {
					t.Fatalf("in-flight request: HTTP %d %q %v", a.status, a.body, a.err)
				}
			}
			if err := <-stopped; !errors.Is(err, tc.wantErr) {
				t.Fatalf("ServeListenerWith returned %v, want %v", err, tc.wantErr)
			}
			if !tc.release {
				if a := <-answers; a.err == nil {
					t.Fatalf("a request cut at the end of the grace got HTTP %d %q", a.status, a.body)
				}
				close(b.release)
			}
		})
	}
}

// TestLimitDefaults: a zero Limits gets the documented defaults.
func TestLimitDefaults(t *testing.T) {
	h := web.Limit(http.HandlerFunc(ok), web.Limits{})
	tests := []struct {
		name   string
		fields int
		length int64
		status int
	}{
		{"64 header fields", web.DefaultMaxHeaderFields, 0, http.StatusOK},
		{"65 header fields", web.DefaultMaxHeaderFields + 1, 0, http.StatusRequestHeaderFieldsTooLarge},
		{"1 MiB body", 0, web.DefaultMaxBody, http.StatusOK},
		{"1 MiB + 1 body", 0, web.DefaultMaxBody + 1, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, "/", bytes.NewReader(make([]byte, tc.length)))
			if err != nil {
				t.Fatal(err)
			}
			for i := range tc.fields {
				req.Header.Set(fmt.Sprintf("X-F%d", i), "v")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Fatalf("HTTP %d, want %d", rec.Code, tc.status)
			}
		})
	}
}
