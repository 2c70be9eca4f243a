package cardholder

// Fuzz targets for the files the cardholder CLI reads that no other target
// covers: the card file and the assisted session file (order files and
// bundles are fuzzed in package order, key files in keygen). Seeds live in
// testdata/fuzz/<Target>/ (rewrite them with -webtest.write-corpus).

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"orderseal/keygen"
	merchantapi "orderseal/merchant/api"
	"orderseal/order"
	"orderseal/tstest/webtest"
)

// fileExercise parses each input in memory with parse (the fuzzed part,
// fast enough for tens of thousands of inputs a slot); what parse accepts
// must re-encode to JSON that parse accepts as the same, and read, from a
// 0600 file, must take the same bytes as parse does.
func fileExercise[T any](f *testing.F, parse func(data []byte) (*T, error), read func(path string) (*T, error), check func(t testing.TB, v *T)) func(t testing.TB, data []byte) error {
	path := filepath.Join(f.TempDir(), "input.json")
	return func(t testing.TB, data []byte) error {
		t.Helper()
		v, err := parse(data)
		if err != nil {
			return err
		}
		check(t, v)
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		v2, err := parse(out)
		if err != nil {
			t.Fatalf("re-encoded file refused: %v\n%s", err, out)
		}
		if out2, _ := json.Marshal(v2); string(out2) != string(out) {
			t.Fatalf("round trip changed the file:\n%s\n%s", out, out2)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		v3, err := read(path)
		if err != nil {
			t.Fatalf("the file refused what its bytes parse to: %v", err)
		}
		if out3, _ := json.Marshal(v3); string(out3) != string(out) {
			t.Fatalf("the file reads otherwise than its bytes:\n%s\n%s", out, out3)
		}
		return nil
	}
}

// FuzzCardFile: no card file makes loadCard panic; a card it loads names an
// issuer identity and survives a round trip.
func FuzzCardFile(f *testing.F) {
	for name, s := range map[string]string{
		"card":            `{"number":"4111111111111111","expiry":"2031-12","cvc":"737","issuer":"issuer:bank.example"}`,
		"no-cvc":          `{"number":"4111111111111111","expiry":"2031-12","issuer":"issuer:bank.example"}`,
		"merchant-issuer": `{"number":"4111111111111111","expiry":"2031-12","issuer":"merchant:shop.example"}`,
		"duplicate":       `{"number":"4111111111111111","number":"5555555555554444","expiry":"2031-12","issuer":"issuer:bank.example"}`,
		"unknown-field":   `{"number":"4111111111111111","expiry":"2031-12","issuer":"issuer:bank.example","pin":"1234"}`,
	} {
		webtest.WriteCorpus(f, name, []byte(s))
	}
	parse := func(data []byte) (*CardFile, error) { return parseCard("input.json", data) }
	exercise := fileExercise(f, parse, loadCard, func(t testing.TB, c *CardFile) {
		if keygen.ValidateIdentity(c.Issuer) != nil || keygen.RoleOf(c.Issuer) != keygen.RoleIssuer {
			t.Fatalf("loaded a card of issuer %q", c.Issuer)
		}
	})
	webtest.MustAccept(f, webtest.Corpus(f), func(data []byte) int { return webtest.StatusOf(exercise(f, data)) })
	f.Fuzz(func(t *testing.T, data []byte) { exercise(t, data) })
}

// FuzzSessionFile: no opened session file makes decodeSession panic; a
// session it takes is a version 2 session with a valid id, device, device
// key and sealed identifier, and survives a round trip.
func FuzzSessionFile(f *testing.F) {
	good := SessionFile{V: 2, MerchantURL: "http://127.0.0.1:8080", Merchant: "merchant:shop.example",
		Session: merchantapi.Session{Session: "ses_abcdefghijklmnopqrstuvwxyz", Consultant: "consultant:carol", Company: "company:callcenter.example",
			Device: "desk-7", DeviceKey: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", Created: "2026-01-15T12:00:00Z", Expires: "2026-01-15T20:00:00Z", State: merchantapi.SessionLive,
			SealedID: &merchantapi.Sealed{Nonce: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", CT: "AAAA"}}}
	js := func(v SessionFile) []byte {
		out, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return out
	}
	v1, noID, badDevice, noKey := good, good, good, good
	v1.V = 1
	noID.SealedID = nil
	badDevice.Device = "Desk 7"
	noKey.DeviceKey = ""
	for name, s := range map[string][]byte{"session": js(good), "version-1": js(v1), "no-identifier": js(noID), "bad-device": js(badDevice), "no-device-key": js(noKey)} {
		webtest.WriteCorpus(f, name, s)
	}
	decode := func(path string) (*SessionFile, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return decodeSession(data)
	}
	exercise := fileExercise(f, decodeSession, decode, func(t testing.TB, s *SessionFile) {
		if s.V != 2 || !order.ValidSession(s.Session.Session) || !merchantapi.ValidDevice(s.Device) || s.SealedID == nil {
			t.Fatalf("read a session file %+v", s)
		}
	})
	webtest.MustAccept(f, webtest.Corpus(f), func(data []byte) int { return webtest.StatusOf(exercise(f, data)) })
	f.Fuzz(func(t *testing.T, data []byte) { exercise(t, data) })
}
