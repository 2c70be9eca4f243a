package signedhttp_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"orderseal/internal/signedhttp"
	"orderseal/internal/signedhttp/httpsig"
	"orderseal/keygen"
	"orderseal/tstest/keys"
)

// neverSeen keeps the genuine seed valid on every fuzz iteration.
type neverSeen struct{}

func (neverSeen) Record(context.Context, string, string, time.Time, time.Time) error { return nil }

var fuzzHeaders = []string{httpsig.HeaderIdentity, httpsig.HeaderTarget, httpsig.HeaderDate, httpsig.HeaderNonce,
	httpsig.HeaderContentSHA256, httpsig.HeaderKeyID, httpsig.HeaderSignature}

// signedFields signs a request deterministically (fixed nonce), so every
// fuzz worker process derives the same genuine values.
func signedFields(t testing.TB, cache *keygen.Cache, path, date string, body []byte) []string {
	t.Helper()
	pw, err := cache.Pairwise(keys.Vault)
	if err != nil {
		t.Fatal(err)
	}
	k := httpsig.DeriveKeys(&pw)
	f := httpsig.RequestFields{Method: http.MethodPost, RequestTarget: path, Date: date,
		Nonce: "AAECAwQFBgcICQoLDA0ODw", ContentSHA256: httpsig.Digest(body), KeyID: k.KeyID(),
		Caller: cache.Identity(), Target: keys.Vault}
	msg, err := f.Message()
	if err != nil {
		t.Fatal(err)
	}
	return []string{f.Caller, f.Target, f.Date, f.Nonce, f.ContentSHA256, f.KeyID, k.Sign(msg)}
}

// FuzzVerifyHeaders feeds arbitrary header values and bodies to the
// verifier: it never panics, refuses with a problem+json carrying one of its
// codes, and lets a request through only when every header and the body are
// exactly the genuine ones.
func FuzzVerifyHeaders(f *testing.F) {
	kc := keys.Test(f)
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { return at }
	app := newApp(kc.Keys(f, keys.Vault), discard(),
		signedhttp.WithClock(clock), signedhttp.WithNonceStore(neverSeen{}), signedhttp.WithMaxBody(4096))

	const path = "/orders/ord-7?x=1"
	genuineBody := []byte(`{"total":1299}`)
	genuine := signedFields(f, kc.Keys(f, keys.Shop), path, httpsig.FormatDate(at), genuineBody)
	// Prove the genuine seed is what the verifier accepts, or the 200 branch below proves nothing.
	probe := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(genuineBody))
	for i, h := range fuzzHeaders {
		probe.Header.Set(h, genuine[i])
	}
	rec := httptest.NewRecorder()
	app.ServeHTTP(rec, probe)
	if rec.Code != http.StatusOK {
		f.Fatalf("genuine request refused: %d %s", rec.Code, rec.Body)
	}

	seed := func(mod func(v []string) []byte) {
		v := append([]string(nil), genuine...)
		body := mod(v)
		f.Add(v[0], v[1], v[2], v[3], v[4], v[5], v[6], body)
	}
	seed(func([]string) []byte { return genuineBody })
	seed(func([]string) []byte { return []byte(`{"total":9999}`) })
	seed(func([]string) []byte { return bytes.Repeat([]byte{'a'}, 5000) })
	for i := range fuzzHeaders {
		seed(func(v []string) []byte { v[i] = ""; return genuineBody })
		seed(func(v []string) []byte { v[i] += "="; return genuineBody })
		seed(func(v []string) []byte { v[i] = strings.ToUpper(v[i]); return genuineBody })
		seed(func(v []string) []byte { v[i] = "\x00\xff" + v[i]; return genuineBody })
	}
	seed(func(v []string) []byte { v[0] = "merchant:" + strings.Repeat("a", 300); return genuineBody })
	seed(func(v []string) []byte { v[0] = keys.Vault; return genuineBody })
	seed(func(v []string) []byte { v[2] = "2025-01-02T03:10:06Z"; return genuineBody })
	seed(func(v []string) []byte { v[2] = "9999-12-31T23:59:59Z"; return genuineBody })

	codes := map[string]bool{}
	for _, c := range []string{signedhttp.CodeAuthMissing, signedhttp.CodeUnknownIdentity, signedhttp.CodeWrongTarget,
		signedhttp.CodeClockSkew, signedhttp.CodeWrongKey, signedhttp.CodeBodyDigest, signedhttp.CodeBadSignature,
		signedhttp.CodeReplayedNonce, signedhttp.CodeBodyTooLarge} {
		codes[c] = true
	}

	f.Fuzz(func(t *testing.T, identity, target, date, nonce, digest, keyID, sig string, body []byte) {
		vals := []string{identity, target, date, nonce, digest, keyID, sig}
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		for i, h := range fuzzHeaders {
			req.Header[h] = []string{vals[i]}
		}
		rec := httptest.NewRecorder()
		app.ServeHTTP(rec, req)

		if rec.Code == http.StatusOK {
			for i := range vals {
				if vals[i] != genuine[i] {
					t.Fatalf("accepted with %s = %q", fuzzHeaders[i], vals[i])
				}
			}
			if !bytes.Equal(body, genuineBody) {
				t.Fatalf("accepted with body %q", body)
			}
			return
		}
		p := decodeProblem(t, rec.Header(), rec.Body.Bytes())
		if !codes[p.Code] || p.Status != rec.Code {
			t.Fatalf("refusal %d %q", rec.Code, p.Code)
		}
		if strings.Contains(rec.Body.String(), "\x00") || (len(body) > 8 && strings.Contains(rec.Body.String(), string(body))) {
			t.Fatalf("problem quotes request bytes: %q", rec.Body.String())
		}
		if _, err := io.Copy(io.Discard, rec.Body); err != nil {
			t.Fatal(err)
		}
	})
}
