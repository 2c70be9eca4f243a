package wire_test

import (
	"bytes"
	"testing"

	"orderseal/internal/wire"
	"orderseal/tstest/webtest"
)

// FuzzUnB64: every signed header, sealed value and key id goes through
// UnB64; it never panics and accepts only the canonical encoding, so one
// byte string has exactly one text form (B64 of what it decodes is the
// input). Seeds: testdata/fuzz/FuzzUnB64.
func FuzzUnB64(f *testing.F) {
	for name, s := range map[string]string{
		"nonce":         wire.B64([]byte("0123456789abcdef")),
		"empty":         "",
		"padded":        "AA==",
		"trailing-bits": "AB",
		"std-alphabet":  "+/8",
		"url-alphabet":  "-_8",
		"whitespace":    "AAAA AAAA",
		"one-char":      "A",
		"line-break":    "AAAA\nAAAA",
		"short-by-cr":   "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\r",
	} {
		webtest.WriteCorpus(f, name, []byte(s))
	}
	exercise := func(t testing.TB, data []byte) error {
		t.Helper()
		b, err := wire.UnB64(string(data))
		if err != nil {
			return err
		}
		if bytes.ContainsAny(data, "\r\n") {
			t.Fatalf("%q with a line break decodes", data)
		}
		if wire.B64(b) != string(data) {
			t.Fatalf("%q decodes but encodes back as %q", data, wire.B64(b))
		}
		if _, err := wire.UnB64Len(string(data), len(b)); err != nil {
			t.Fatalf("%q decodes to %d bytes but UnB64Len(%d) refuses it", data, len(b), len(b))
		}
		return nil
	}
	webtest.MustAccept(f, webtest.Corpus(f), func(data []byte) int { return webtest.StatusOf(exercise(f, data)) })
	f.Fuzz(func(t *testing.T, data []byte) { exercise(t, data) })
}
