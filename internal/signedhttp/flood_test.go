package signedhttp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/signedhttp"
	"orderseal/internal/web"
	"orderseal/keygen"
	"orderseal/tstest/keys"
)

// issuerApp is an issuer-like app: one route, merchants only.
func issuerApp(cache *keygen.Cache, opts ...signedhttp.Option) *httptest.Server {
	e := web.New(discard())
	e.Use(signedhttp.NewVerifier(cache, opts...).Middleware())
	e.POST("/authorizations/:id", func(c echo.Context) error {
		io.Copy(io.Discard, c.Request().Body)
		return c.JSON(http.StatusOK, map[string]string{"ok": c.Param("id")})
	}, signedhttp.Allow(keygen.RoleMerchant))
	return httptest.NewServer(e)
}

// TestFloodOfForbiddenRoleRecordsNoNonce is issue 16 item 2: a cardholder,
// whom the issuer does not admit, floods it with signed requests; its nonces
// must not be recorded, so a merchant's request afterwards is served.
func TestFloodOfForbiddenRoleRecordsNoNonce(t *testing.T) {
	kc := keys.Test(t)
	srv := issuerApp(kc.Keys(t, keys.Bank), signedhttp.WithNonceStore(signedhttp.NewMemoryNonces(100)))
	t.Cleanup(srv.Close)
	flood := signedhttp.NewClient(kc.Keys(t, keys.Alice), srv.Client())
	for i := range 150 {
		err := flood.DoJSON(context.Background(), keys.Bank, http.MethodPost, srv.URL+"/authorizations/o"+strconv.Itoa(i), map[string]int{"i": i}, nil)
		var p *rfc9457.Problem
		if !errors.As(err, &p) || p.Status != http.StatusForbidden || p.Code != signedhttp.CodeForbiddenRole {
			t.Fatalf("flood request %d: %v, want a signed 403 forbidden-role", i, err)
		}
	}
	shop := signedhttp.NewClient(kc.Keys(t, keys.Shop), srv.Client())
	if err := shop.DoJSON(context.Background(), keys.Bank, http.MethodPost, srv.URL+"/authorizations/genuine", map[string]int{}, nil); err != nil {
		t.Fatalf("the merchant's request after a cardholder flood: %v", err)
	}
}

// TestNonceFloodCannotTouchAnotherCaller: a caller the route admits floods
// it; past its quota it gets a signed 429 with Retry-After, and another
// caller of the same role is still served.
func TestNonceFloodCannotTouchAnotherCaller(t *testing.T) {
	kc := keys.Test(t)
	srv := issuerApp(kc.Keys(t, keys.Bank), signedhttp.WithNonceStore(signedhttp.NewMemoryNonces(100)))
	t.Cleanup(srv.Close)
	tr := &tamper{base: srv.Client().Transport}
	flood := signedhttp.NewClient(kc.Keys(t, keys.OtherShop), &http.Client{Transport: tr})
	refused := 0
	for i := range 150 {
		err := flood.DoJSON(context.Background(), keys.Bank, http.MethodPost, srv.URL+"/authorizations/o"+strconv.Itoa(i), map[string]int{"i": i}, nil)
		if err == nil {
			continue
		}
		var p *rfc9457.Problem
		if !errors.As(err, &p) || p.Status != http.StatusTooManyRequests || p.Code != signedhttp.CodeNonceQuota {
			t.Fatalf("flood request %d: %v, want a signed 429 nonce-quota", i, err)
		}
		if ra := tr.lastExchange().respHeader.Get("Retry-After"); ra == "" {
			t.Fatalf("429 without Retry-After")
		}
		refused++
	}
	if refused == 0 {
		t.Fatal("150 requests within the window and no quota refusal")
	}
	shop := signedhttp.NewClient(kc.Keys(t, keys.Shop), srv.Client())
	for i := range 20 {
		if err := shop.DoJSON(context.Background(), keys.Bank, http.MethodPost, srv.URL+"/authorizations/g"+strconv.Itoa(i), map[string]int{}, nil); err != nil {
			t.Fatalf("genuine request %d after another merchant's flood: %v", i, err)
		}
	}
}

// raceTransport replays the first request it carries before sending it: an
// attacker on the wire who got the captured request in first.
type raceTransport struct {
	base http.RoundTripper
	once sync.Once
	sent int
}

func (rt *raceTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rt.sent++
	var err error
	rt.once.Do(func() {
		var body []byte
		if r.Body != nil {
			body, _ = io.ReadAll(r.Body)
			r.Body.Close()
		}
		cp := r.Clone(r.Context())
		cp.Body = io.NopCloser(bytes.NewReader(body))
		var resp *http.Response
		if resp, err = rt.base.RoundTrip(cp); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	})
	if err != nil {
		return nil, err
	}
	return rt.base.RoundTrip(r)
}

// TestClientRetriesReplayedNonce: when the receiver answers a signed 401
// replayed-nonce, the client sends the request once more with a fresh nonce.
func TestClientRetriesReplayedNonce(t *testing.T) {
	kc := keys.Test(t)
	srv := issuerApp(kc.Keys(t, keys.Bank))
	t.Cleanup(srv.Close)
	rt := &raceTransport{base: srv.Client().Transport}
	c := signedhttp.NewClient(kc.Keys(t, keys.Shop), &http.Client{Transport: rt})
	if err := c.DoJSON(context.Background(), keys.Bank, http.MethodPost, srv.URL+"/authorizations/o1", map[string]int{}, nil); err != nil {
		t.Fatalf("after a replayed nonce: %v (%d requests sent)", err, rt.sent)
	}
	if rt.sent != 2 {
		t.Fatalf("%d requests sent, want the original and one retry", rt.sent)
	}
}

// slowBody sends its first byte, then nothing until release closes.
type slowBody struct {
	release <-chan struct{}
	sent    bool
}

func (b *slowBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		p[0] = '{'
		return 1, nil
	}
	<-b.release
	return 0, io.EOF
}

// slowTransport sends the signed request with a body that trickles: "{",
// then nothing until release, then "}".
type slowTransport struct {
	base    http.RoundTripper
	release <-chan struct{}
}

func (st *slowTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Body = io.NopCloser(io.MultiReader(&slowBody{release: st.release}, bytes.NewReader([]byte("}"))))
	r.ContentLength = -1
	r.GetBody = nil
	return st.base.RoundTrip(r)
}

// TestSlowBodiesOfOneCallerLeaveOthersServed is issue 16 item 6: one key
// holder opens more slow authenticated bodies than the server has request
// slots; another caller is still served, and the slow caller's excess is
// refused with a signed 429 and Retry-After, not a 503 for everyone.
func TestSlowBodiesOfOneCallerLeaveOthersServed(t *testing.T) {
	kc := keys.Test(t)
	e := web.New(discard())
	e.Use(signedhttp.NewVerifier(kc.Keys(t, keys.Bank)).Middleware())
	e.POST("/authorizations/:id", func(c echo.Context) error {
		io.Copy(io.Discard, c.Request().Body)
		return c.NoContent(http.StatusNoContent)
	}, signedhttp.Allow(keygen.RoleMerchant))
	srv := httptest.NewUnstartedServer(web.Limit(e, web.Limits{MaxInFlight: 32}))
	srv.Start()
	t.Cleanup(srv.Close)
	release := make(chan struct{})
	defer close(release)

	const slow = signedhttp.DefaultPerParty + 16 // more than the caller's slots, and than the server's
	statuses := make(chan int, slow)
	for i := range slow {
		go func() {
			// The signature covers the digest of "{}"; the body trickles.
			tr := &slowTransport{base: srv.Client().Transport, release: release}
			c := signedhttp.NewClient(kc.Keys(t, keys.OtherShop), &http.Client{Transport: tr})
			resp, err := c.Do(context.Background(), keys.Bank, http.MethodPost, srv.URL+"/authorizations/s"+strconv.Itoa(i), []byte("{}"))
			switch {
			case err == nil:
				statuses <- resp.Status
			case errors.Is(err, signedhttp.ErrForgedResponse): // unsigned: the 503 of web.Limit
				statuses <- http.StatusServiceUnavailable
			default:
				statuses <- 0
			}
		}()
	}
	time.Sleep(500 * time.Millisecond) // the slow bodies are in
	shop := signedhttp.NewClient(kc.Keys(t, keys.Shop), srv.Client())
	for i := range 5 {
		resp, err := shop.Do(context.Background(), keys.Bank, http.MethodPost, srv.URL+"/authorizations/g"+strconv.Itoa(i), []byte("{}"))
		if err != nil || resp.Status != http.StatusNoContent {
			status := 0
			if resp != nil {
				status = resp.Status
			}
			t.Fatalf("genuine request %d during the slow-body attack: HTTP %d, %v", i, status, err)
		}
	}
	limited := 0
	deadline := time.After(5 * time.Second)
	for limited == 0 {
		select {
		case s := <-statuses:
			if s == http.StatusTooManyRequests {
				limited++
			}
		case <-deadline:
			t.Fatal("no slow request of the flooding caller was refused with 429")
		}
	}
}

// closeCounter counts the answers that close their connection.
type closeCounter struct {
	base   http.RoundTripper
	closed atomic.Int64
}

func (cc *closeCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := cc.base.RoundTrip(r)
	if err == nil && resp.Close {
		cc.closed.Add(1)
	}
	return resp, err
}

// TestRefusalsOfOneCallerArePaced is issue 16 item 2's flood at its cost:
// a caller refused again and again is answered at its refusal budget's
// pace, and what exceeds the refusals allowed to wait is answered at once
// with the connection closed (dropping whatever it pipelined), while an
// admitted caller is served meanwhile. Without pacing every refusal is
// answered at full speed on a kept connection.
func TestRefusalsOfOneCallerArePaced(t *testing.T) {
	const flood = 40
	for _, tc := range []struct {
		name       string
		pace       signedhttp.Option
		wantClosed func(n int64) bool
		want       string
	}{
		{"paced", signedhttp.WithRefusalPace(5, 1000), func(n int64) bool { return n >= flood-10-8-5 }, "at least 17 closed"},
		{"not paced", signedhttp.WithRefusalPace(0, 0), func(n int64) bool { return n == 0 }, "none closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kc := keys.Test(t)
			srv := issuerApp(kc.Keys(t, keys.Bank), signedhttp.WithNonceStore(signedhttp.NewMemoryNonces(1000)), tc.pace)
			t.Cleanup(srv.Close)
			cc := &closeCounter{base: srv.Client().Transport}
			attacker := signedhttp.NewClient(kc.Keys(t, keys.Alice), &http.Client{Transport: cc})
			var wg sync.WaitGroup
			errs := make(chan error, flood)
			for i := range flood {
				wg.Go(func() {
					err := attacker.DoJSON(context.Background(), keys.Bank, http.MethodPost, srv.URL+"/authorizations/f"+strconv.Itoa(i), map[string]int{}, nil)
					var p *rfc9457.Problem
					if !errors.As(err, &p) || p.Status != http.StatusForbidden || p.Code != signedhttp.CodeForbiddenRole {
						errs <- fmt.Errorf("flood request %d: %v, want a signed 403 forbidden-role", i, err)
					}
				})
			}
			shop := signedhttp.NewClient(kc.Keys(t, keys.Shop), srv.Client())
			if err := shop.DoJSON(context.Background(), keys.Bank, http.MethodPost, srv.URL+"/authorizations/genuine", map[string]int{}, nil); err != nil {
				t.Errorf("the merchant's request during the flood: %v", err)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			n := cc.closed.Load()
			t.Logf("%d of %d refusals closed their connection", n, flood)
			if !tc.wantClosed(n) {
				t.Errorf("%d of %d refusals closed their connection, want %s", n, flood, tc.want)
			}
		})
	}
}
