package httpsig_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"orderseal/internal/signedhttp/httpsig"
	"orderseal/suite"
	"orderseal/tstest/keys"
	"orderseal/tstest/webtest"
)

// responder answers each request with what a fuzz input says: its
// Orderseal-Identity and Orderseal-Signature values ("|" separates repeated
// values; a signature "genuine" is replaced by the true one over this
// request's nonce), status and body.
type responder struct {
	keys     httpsig.Keys
	identity []string
	sig      []string
	status   int
	body     []byte
	sent     http.Header // what the last answer carried
}

func (r *responder) RoundTrip(req *http.Request) (*http.Response, error) {
	h := http.Header{}
	for _, id := range r.identity {
		h.Add(httpsig.HeaderIdentity, id)
	}
	for _, s := range r.sig {
		if s == "genuine" {
			f := httpsig.ResponseFields{Nonce: req.Header.Get(httpsig.HeaderNonce), Status: r.status, BodySHA256: httpsig.Digest(r.body),
				Responder: req.Header.Get(httpsig.HeaderTarget), Caller: req.Header.Get(httpsig.HeaderIdentity)}
			msg, err := f.Message()
			if err != nil {
				return nil, err
			}
			s = r.keys.Sign(msg)
		}
		h.Add(httpsig.HeaderSignature, s)
	}
	r.sent = h
	return &http.Response{StatusCode: r.status, Header: h, Body: io.NopCloser(bytes.NewReader(r.body)), Request: req}, nil
}

// parse reads "identity\nsignature\nstatus\nbody".
func (r *responder) parse(data []byte) bool {
	parts := bytes.SplitN(data, []byte("\n"), 4)
	if len(parts) != 4 {
		return false
	}
	status, err := strconv.Atoi(string(parts[2]))
	if err != nil || status < 100 || status > 999 {
		return false
	}
	r.identity, r.sig = strings.Split(string(parts[0]), "|"), strings.Split(string(parts[1]), "|")
	r.status, r.body = status, parts[3]
	return true
}

// FuzzVerifyResponse: a client accepts an answer only when it carries
// exactly one Orderseal-Identity, the target's, and exactly one
// Orderseal-Signature, the responder's over this request's nonce, the
// status and the body; whatever else comes back is ErrForgedResponse, and
// nothing panics. Seeds: testdata/fuzz/FuzzVerifyResponse.
func FuzzVerifyResponse(f *testing.F) {
	const target = keys.Vault
	mine := keys.Party(f, keys.Shop)
	pw, err := suite.Pairwise(mine, target)
	if err != nil {
		f.Fatal(err)
	}
	r := &responder{keys: httpsig.DeriveKeys(&pw)}
	c := httpsig.NewClient(suite.NewKeys(mine, 2), &http.Client{Transport: r})
	for name, s := range map[string]string{
		"genuine":         target + "\ngenuine\n200\n{\"ok\":true}",
		"genuine-problem": target + "\ngenuine\n404\n{\"code\":\"unknown-token\"}",
		"genuine-empty":   target + "\ngenuine\n204\n",
		"other-identity":  "vault:other.example\ngenuine\n200\n{}",
		"two-identities":  target + "|" + target + "\ngenuine\n200\n{}",
		"two-signatures":  target + "\ngenuine|genuine\n200\n{}",
		"unsigned":        target + "\n\n503\nbusy",
		"made-up":         target + "\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n200\n{}",
	} {
		webtest.WriteCorpus(f, name, []byte(s))
	}
	exercise := func(t testing.TB, data []byte) error {
		t.Helper()
		if !r.parse(data) {
			return errors.New("not an answer")
		}
		resp, err := c.Do(context.Background(), target, http.MethodPost, "http://vault.fuzz/v1/x", []byte("{}"))
		ids, sigs := r.sent.Values(httpsig.HeaderIdentity), r.sent.Values(httpsig.HeaderSignature)
		genuine := len(ids) == 1 && ids[0] == target && len(sigs) == 1 && len(r.sig) == 1 && r.sig[0] == "genuine"
		switch {
		case err == nil && !genuine:
			t.Fatalf("accepted identities %q, signatures %q", ids, r.sig)
		case err == nil && (resp.Status != r.status || !bytes.Equal(resp.Body, r.body)):
			t.Fatalf("accepted answer differs from what was sent")
		case err != nil && genuine:
			t.Fatalf("a genuine answer was refused: %v", err)
		case err != nil && !errors.Is(err, httpsig.ErrForgedResponse):
			t.Fatalf("refused with %v, want ErrForgedResponse", err)
		}
		return err
	}
	webtest.MustAccept(f, webtest.Corpus(f), func(data []byte) int { return webtest.StatusOf(exercise(f, data)) })
	f.Fuzz(func(t *testing.T, data []byte) { exercise(t, data) })
}
