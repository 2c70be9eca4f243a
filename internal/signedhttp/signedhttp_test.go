package signedhttp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"orderseal/internal/problem"
	"orderseal/internal/signedhttp"
	"orderseal/internal/signedhttp/httpsig"
	"orderseal/tstest/keys"
)

func TestHappyPath(t *testing.T) {
	kc := keys.Test(t)
	srv := server(t, kc.Keys(t, keys.Vault))
	for _, caller := range []string{keys.Shop, keys.Alice} {
		t.Run(caller, func(t *testing.T) {
			c := signedhttp.NewClient(kc.Keys(t, caller), srv.Client())
			ctx := context.Background()
			var got echoReply
			in := map[string]int{"total": 1299}
			if err := c.DoJSON(ctx, keys.Vault, http.MethodPost, srv.URL+"/orders/ord-42?note=gift%20wrap&x=1", in, &got); err != nil {
				t.Fatal(err)
			}
			want := echoReply{Caller: caller, CtxCaller: caller, ID: "ord-42", Query: "note=gift%20wrap&x=1", Body: `{"total":1299}`}
			if got != want {
				t.Fatalf("handler saw %+v, want %+v", got, want)
			}

			resp, err := c.Do(ctx, keys.Vault, http.MethodDelete, srv.URL+"/orders/ord-42", nil)
			if err != nil || resp.Status != http.StatusNoContent || len(resp.Body) != 0 {
				t.Fatalf("DELETE: %+v, %v", resp, err)
			}
			if resp.Header.Get(httpsig.HeaderIdentity) != keys.Vault {
				t.Errorf("responder header %q", resp.Header.Get(httpsig.HeaderIdentity))
			}
		})
	}
}

// Errors from handlers, the error handler and routing are signed too.
func TestErrorResponsesAreSigned(t *testing.T) {
	kc := keys.Test(t)
	srv := server(t, kc.Keys(t, keys.Vault))
	c := signedhttp.NewClient(kc.Keys(t, keys.Shop), srv.Client())
	cases := []struct {
		method, path string
		status       int
		code         string
	}{
		{http.MethodGet, "/orders/ord-42/fail", http.StatusConflict, "order-conflict"},
		{http.MethodGet, "/boom", http.StatusInternalServerError, problem.CodeInternal},
		{http.MethodGet, "/panic", http.StatusInternalServerError, problem.CodeInternal},
		{http.MethodGet, "/nowhere", http.StatusNotFound, problem.CodeNotFound},
		{http.MethodPut, "/orders/ord-42", http.StatusMethodNotAllowed, problem.CodeMethodNotAllowed},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			err := c.DoJSON(context.Background(), keys.Vault, tc.method, srv.URL+tc.path, nil, nil)
			var p *problem.Problem
			if !errors.As(err, &p) {
				t.Fatalf("err = %v, want a verified *problem.Problem", err)
			}
			if errors.Is(err, signedhttp.ErrForgedResponse) {
				t.Fatal("signed error response did not verify")
			}
			if p.Status != tc.status || p.Code != tc.code {
				t.Fatalf("got %d %s, want %d %s", p.Status, p.Code, tc.status, tc.code)
			}
			if strings.Contains(p.Detail+p.Title, "hunter2") || strings.Contains(p.Detail, "row 17") {
				t.Fatalf("internal error leaked: %q", p.Detail)
			}
		})
	}
}

// refusalCase is one request the vault must refuse with its own code.
type refusalCase struct {
	name     string
	caller   string // identity of the caller's key, from keys.Test unless keyFrom says otherwise
	keyFrom  *keys.KeyCenter
	target   string
	method   string
	path     string
	body     []byte
	clock    time.Duration // client clock offset
	mutate   func(*http.Request)
	status   int
	code     string
	verified bool // the client can verify the response (signed with the K it holds)
}

func TestRefusals(t *testing.T) {
	kcA := keys.Test(t)
	kcB := keys.Foreign(t) // another system: same identities, other keys
	kcA2 := keys.Rogue(t)  // same system id, another matrix
	srv := server(t, kcA.Keys(t, keys.Vault))
	order := []byte(`{"total":1299}`)
	big := bytes.Repeat([]byte("x"), signedhttp.DefaultMaxBody+1)

	cases := []refusalCase{
		{name: "accepted 4 min fast", clock: 4 * time.Minute, status: 200},
		{name: "accepted 4 min slow", clock: -4 * time.Minute, status: 200},
		{name: "accepted body of exactly 1 MiB", body: big[:signedhttp.DefaultMaxBody], status: 200},
		{name: "wrong key: other system", keyFrom: kcB, status: 401, code: signedhttp.CodeWrongKey},
		{name: "wrong key: other matrix", keyFrom: kcA2, status: 401, code: signedhttp.CodeWrongKey},
		{name: "identity upper case", mutate: setHeader(httpsig.HeaderIdentity, "Merchant:Shop.Example"),
			status: 401, code: signedhttp.CodeUnknownIdentity},
		{name: "identity unknown role", mutate: setHeader(httpsig.HeaderIdentity, "robot:shop.example"),
			status: 401, code: signedhttp.CodeUnknownIdentity},
		{name: "identity without role", mutate: setHeader(httpsig.HeaderIdentity, "shop.example"),
			status: 401, code: signedhttp.CodeUnknownIdentity},
		{name: "caller claims the vault itself", mutate: setHeader(httpsig.HeaderIdentity, keys.Vault),
			status: 401, code: signedhttp.CodeUnknownIdentity},
		{name: "role not allowed", caller: keys.Parcel, status: 403, code: signedhttp.CodeForbiddenRole, verified: true},
		{name: "wrong target", target: "vault:other.example", status: 401, code: signedhttp.CodeWrongTarget},
		{name: "clock 6 min fast", clock: 6 * time.Minute, status: 401, code: signedhttp.CodeClockSkew, verified: true},
		{name: "clock 6 min slow", clock: -6 * time.Minute, status: 401, code: signedhttp.CodeClockSkew, verified: true},
		{name: "altered body", mutate: func(r *http.Request) { setBody(r, []byte(`{"total":9999}`)) },
			status: 400, code: signedhttp.CodeBodyDigest, verified: true},
		{name: "dropped body", mutate: func(r *http.Request) { setBody(r, nil) },
			status: 400, code: signedhttp.CodeBodyDigest, verified: true},
		{name: "altered path", mutate: func(r *http.Request) { r.URL.Path = "/orders/ord-43" },
			status: 401, code: signedhttp.CodeBadSignature, verified: true},
		{name: "altered query", mutate: func(r *http.Request) { r.URL.RawQuery = "note=gift%20wrap&x=2" },
			status: 401, code: signedhttp.CodeBadSignature, verified: true},
		{name: "dropped query", mutate: func(r *http.Request) { r.URL.RawQuery = "" },
			status: 401, code: signedhttp.CodeBadSignature, verified: true},
		{name: "altered escaping", mutate: func(r *http.Request) { r.URL.RawQuery = "note=gift+wrap&x=1" },
			status: 401, code: signedhttp.CodeBadSignature, verified: true},
		{name: "altered method", mutate: func(r *http.Request) { r.Method = http.MethodPatch },
			status: 401, code: signedhttp.CodeBadSignature, verified: true},
		{name: "altered signature", mutate: setHeader(httpsig.HeaderSignature, strings.Repeat("A", 43)),
			status: 401, code: signedhttp.CodeBadSignature, verified: true},
		{name: "nonce swapped after signing", mutate: setHeader(httpsig.HeaderNonce, "AAAAAAAAAAAAAAAAAAAAAA"),
			status: 401, code: signedhttp.CodeBadSignature},
		{name: "oversize body", body: big, status: 413, code: signedhttp.CodeBodyTooLarge, verified: true},
		{name: "oversize chunked body", body: big, mutate: chunked,
			status: 413, code: signedhttp.CodeBodyTooLarge, verified: true},
		{name: "malformed date", mutate: setHeader(httpsig.HeaderDate, "Thu, 02 Jan 2025 03:04:05 GMT"),
			status: 401, code: signedhttp.CodeAuthMissing},
		{name: "padded nonce", mutate: func(r *http.Request) {
			r.Header.Set(httpsig.HeaderNonce, r.Header.Get(httpsig.HeaderNonce)+"==")
		}, status: 401, code: signedhttp.CodeAuthMissing},
		{name: "repeated identity header", mutate: func(r *http.Request) { r.Header.Add(httpsig.HeaderIdentity, keys.Alice) },
			status: 401, code: signedhttp.CodeAuthMissing},
	}
	for _, h := range []string{httpsig.HeaderIdentity, httpsig.HeaderTarget, httpsig.HeaderDate, httpsig.HeaderNonce,
		httpsig.HeaderContentSHA256, httpsig.HeaderKeyID, httpsig.HeaderSignature} {
		cases = append(cases, refusalCase{name: "missing " + h, mutate: func(r *http.Request) { r.Header.Del(h) },
			status: 401, code: signedhttp.CodeAuthMissing})
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.caller == "" {
				tc.caller = keys.Shop
			}
			if tc.target == "" {
				tc.target = keys.Vault
			}
			if tc.method == "" {
				tc.method = http.MethodPost
			}
			if tc.path == "" {
				tc.path = "/orders/ord-42?note=gift%20wrap&x=1"
			}
			if tc.body == nil {
				tc.body = order
			}
			kc := kcA
			if tc.keyFrom != nil {
				kc = tc.keyFrom
			}
			tr := &tamper{request: tc.mutate}
			c := signedhttp.NewClient(kc.Keys(t, tc.caller), &http.Client{Transport: tr},
				signedhttp.WithClientClock(func() time.Time { return time.Now().Add(tc.clock) }))
			resp, err := c.Do(context.Background(), tc.target, tc.method, srv.URL+tc.path, tc.body)
			ex := tr.lastExchange()
			if ex.status != tc.status {
				t.Fatalf("status %d, want %d; body %q", ex.status, tc.status, ex.respBody)
			}
			if tc.status == 200 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			p := decodeProblem(t, ex.respHeader, ex.respBody)
			if p.Code != tc.code || p.Status != tc.status {
				t.Fatalf("problem %s %d, want %s %d", p.Code, p.Status, tc.code, tc.status)
			}
			if tc.status == 401 && ex.respHeader.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if tc.verified {
				if err != nil {
					t.Fatalf("signed refusal did not verify: %v", err)
				}
				if resp.Status != tc.status {
					t.Fatalf("verified status %d", resp.Status)
				}
				return
			}
			if !errors.Is(err, signedhttp.ErrForgedResponse) {
				t.Fatalf("err = %v, want ErrForgedResponse", err)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.code)) {
				t.Errorf("error %q does not name the unverified code", err)
			}
		})
	}
}

func setHeader(name, value string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(name, value) }
}

// chunked sends the body without a Content-Length, so the limit must hold while reading.
func chunked(r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	r.ContentLength = -1
	setBody(r, b)
}

// The exact same raw request, sent twice: the second is a replay.
func TestReplayedNonce(t *testing.T) {
	kc := keys.Test(t)
	srv := server(t, kc.Keys(t, keys.Vault))
	tr := &tamper{}
	c := signedhttp.NewClient(kc.Keys(t, keys.Shop), &http.Client{Transport: tr})
	if _, err := c.Do(context.Background(), keys.Vault, http.MethodPost, srv.URL+"/orders/ord-1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	first := tr.lastExchange()
	if first.status != http.StatusOK {
		t.Fatalf("first request: %d", first.status)
	}
	req, err := http.NewRequest(first.method, first.url, bytes.NewReader(first.reqBody))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = first.reqHeader.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := decodeProblem(t, resp.Header, body)
	if resp.StatusCode != http.StatusUnauthorized || p.Code != signedhttp.CodeReplayedNonce {
		t.Fatalf("replay answered %d %s", resp.StatusCode, p.Code)
	}
	if resp.Header.Get(httpsig.HeaderSignature) == "" {
		t.Error("replay refusal is not signed")
	}
	// The same nonce from another caller is a different request, not a replay.
	c2 := signedhttp.NewClient(kc.Keys(t, keys.Alice), srv.Client())
	if _, err := c2.Do(context.Background(), keys.Vault, http.MethodPost, srv.URL+"/orders/ord-1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
}

// A response the client cannot verify is ErrForgedResponse, whatever it says.
func TestForgedResponses(t *testing.T) {
	kcA := keys.Test(t)
	kcB := keys.Foreign(t)
	genuine := server(t, kcA.Keys(t, keys.Vault))
	impostor := server(t, kcB.Keys(t, keys.Vault)) // a vault of another key center
	carrier := server(t, kcA.Keys(t, keys.Parcel))

	cases := []struct {
		name     string
		url      string
		path     string
		response func(*http.Response, []byte) []byte
	}{
		{name: "body altered", response: func(_ *http.Response, b []byte) []byte {
			return bytes.Replace(b, []byte("ord-42"), []byte("ord-66"), 1)
		}},
		{name: "body emptied", response: func(_ *http.Response, b []byte) []byte { return nil }},
		{name: "signature stripped", response: func(r *http.Response, b []byte) []byte {
			r.Header.Del(httpsig.HeaderSignature)
			return b
		}},
		{name: "signature repeated", response: func(r *http.Response, b []byte) []byte {
			r.Header.Add(httpsig.HeaderSignature, r.Header.Get(httpsig.HeaderSignature))
			return b
		}},
		{name: "status altered", path: "/orders/ord-42/fail", response: func(r *http.Response, b []byte) []byte {
			r.StatusCode = http.StatusOK
			return b
		}},
		{name: "responder renamed", response: func(r *http.Response, b []byte) []byte {
			r.Header.Set(httpsig.HeaderIdentity, keys.Parcel)
			return b
		}},
		{name: "signed with another key", url: impostor.URL},
		{name: "answered by another party", url: carrier.URL},
		{name: "unsigned server", url: plainServer(t).URL},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.url == "" {
				tc.url = genuine.URL
			}
			if tc.path == "" {
				tc.path = "/orders/ord-42"
			}
			method := http.MethodPost
			if strings.HasSuffix(tc.path, "/fail") {
				method = http.MethodGet
			}
			tr := &tamper{response: tc.response}
			c := signedhttp.NewClient(kcA.Keys(t, keys.Shop), &http.Client{Transport: tr})
			resp, err := c.Do(context.Background(), keys.Vault, method, tc.url+tc.path, []byte(`{}`))
			if !errors.Is(err, signedhttp.ErrForgedResponse) {
				t.Fatalf("got %+v, %v; want ErrForgedResponse", resp, err)
			}
			if resp != nil {
				t.Fatal("forged response returned")
			}
			var p *problem.Problem
			if err := c.DoJSON(context.Background(), keys.Vault, method, tc.url+tc.path, map[string]int{}, nil); !errors.Is(err, signedhttp.ErrForgedResponse) || errors.As(err, &p) {
				t.Fatalf("DoJSON: %v", err)
			}
		})
	}
}

// plainServer answers 200 OK with no signature at all.
func plainServer(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(httpsig.HeaderIdentity, keys.Vault)
		fmt.Fprint(w, `{"caller":"merchant:shop.example"}`)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// Responses over the client's limit are refused, not truncated.
func TestResponseLimit(t *testing.T) {
	kc := keys.Test(t)
	srv := server(t, kc.Keys(t, keys.Vault))
	c := signedhttp.NewClient(kc.Keys(t, keys.Shop), srv.Client(), httpsig.WithMaxResponse(64))
	_, err := c.Do(context.Background(), keys.Vault, http.MethodPost, srv.URL+"/orders/ord-42", bytes.Repeat([]byte("y"), 100))
	if !errors.Is(err, httpsig.ErrResponseTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

// Allow without the verifier in front is a server bug: 500, never a pass.
func TestAllowWithoutVerifier(t *testing.T) {
	e := echo.New()
	e.HTTPErrorHandler = problem.ErrorHandler(discard())
	e.POST("/x", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, signedhttp.Allow("merchant"))
	srv := httptest.NewServer(e)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/x", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if p := decodeProblem(t, resp.Header, body); resp.StatusCode != 500 || p.Code != problem.CodeInternal {
		t.Fatalf("%d %s", resp.StatusCode, p.Code)
	}
}

func TestConcurrentClients(t *testing.T) {
	kc := keys.Test(t)
	srv := server(t, kc.Keys(t, keys.Vault))
	clients := []*signedhttp.Client{
		signedhttp.NewClient(kc.Keys(t, keys.Shop), srv.Client()),
		signedhttp.NewClient(kc.Keys(t, keys.Alice), srv.Client()),
	}
	const workers, each = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := clients[w%len(clients)]
			for i := range each {
				id := fmt.Sprintf("ord-%d-%d", w, i)
				var got echoReply
				err := c.DoJSON(context.Background(), keys.Vault, http.MethodPost,
					srv.URL+"/orders/"+url.PathEscape(id), map[string]string{"id": id}, &got)
				if err == nil && got.ID != id {
					err = fmt.Errorf("answer for %s came back for %s", got.ID, id)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
