package rfc9457_test

import (
	"encoding/json"
	"testing"

	"orderseal/internal/problem/rfc9457"
	"orderseal/tstest/webtest"
)

// FuzzDecodeProblem: no body makes Decode panic; what it accepts has a valid code
// and re-encodes to a document that decodes to the same problem. Seeds:
// testdata/fuzz/FuzzDecodeProblem.
func FuzzDecodeProblem(f *testing.F) {
	genuine, err := json.Marshal(rfc9457.New(404, "unknown-token", "Unknown token", "No such token for this caller."))
	if err != nil {
		f.Fatal(err)
	}
	for name, s := range map[string][]byte{
		"genuine":       genuine,
		"minimal":       []byte(`{"code":"x"}`),
		"bad-code":      []byte(`{"type":"t","title":"T","status":400,"code":"Bad Code"}`),
		"status-text":   []byte(`{"code":"x","status":"400"}`),
		"extension":     []byte(`{"code":"x","status":409,"balance":30,"accounts":["/a/1"]}`),
		"not-an-object": []byte(`["code"]`),
	} {
		webtest.WriteCorpus(f, name, s)
	}
	accepted := 0
	for _, s := range webtest.Corpus(f) {
		if _, err := rfc9457.Decode(s); err == nil {
			accepted++
		}
	}
	if accepted == 0 {
		f.Fatal("no seed decodes")
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := rfc9457.Decode(body)
		if err != nil {
			return
		}
		if !rfc9457.ValidCode(p.Code) {
			t.Fatalf("accepted code %q", p.Code)
		}
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		again, err := rfc9457.Decode(out)
		if err != nil || *again != *p {
			t.Fatalf("round trip: %+v → %+v (%v)", p, again, err)
		}
	})
}
