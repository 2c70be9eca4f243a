package httpsig

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"orderseal/keygen"
	"orderseal/suite"
	"orderseal/tstest/keys"
)

type vectorDoc struct {
	KeyCenter struct {
		Seed   string `json:"seed"`
		System string `json:"system"`
		K      int    `json:"k"`
	} `json:"key_center"`
	Caller   string `json:"caller"`
	Target   string `json:"target"`
	KeyID    string `json:"key_id"`
	Requests []struct {
		Method        string `json:"method"`
		RequestTarget string `json:"request_target"`
		Date          string `json:"date"`
		Nonce         string `json:"nonce"`
		Body          string `json:"body"`
		ContentSHA256 string `json:"content_sha256"`
		KeyID         string `json:"key_id"`
		Message       string `json:"message"`
		Signature     string `json:"signature"`
	} `json:"requests"`
	Responses []struct {
		Nonce      string `json:"nonce"`
		Status     int    `json:"status"`
		Body       string `json:"body"`
		BodySHA256 string `json:"body_sha256"`
		Message    string `json:"message"`
		Signature  string `json:"signature"`
	} `json:"responses"`
}

func loadVectors(t *testing.T) (vectorDoc, Keys) {
	t.Helper()
	data, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc vectorDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Requests) == 0 || len(doc.Responses) == 0 {
		t.Fatal("no vectors loaded")
	}
	seed, _ := hex.DecodeString(doc.KeyCenter.Seed)
	system, err := keygen.ParseSystem(doc.KeyCenter.System)
	if err != nil {
		t.Fatal(err)
	}
	pk := keys.Center(t, [32]byte(seed), system, doc.KeyCenter.K).Party(t, doc.Caller)
	pw, err := suite.Pairwise(pk, doc.Target)
	if err != nil {
		t.Fatal(err)
	}
	return doc, DeriveKeys(&pw)
}

func TestVectors(t *testing.T) {
	doc, keys := loadVectors(t)
	if got := keys.KeyID(); got != doc.KeyID {
		t.Fatalf("key id %s, want %s", got, doc.KeyID)
	}
	for i, v := range doc.Requests {
		if got := Digest([]byte(v.Body)); got != v.ContentSHA256 {
			t.Errorf("request %d: digest %s, want %s", i, got, v.ContentSHA256)
		}
		f := RequestFields{Method: v.Method, RequestTarget: v.RequestTarget, Date: v.Date, Nonce: v.Nonce,
			ContentSHA256: v.ContentSHA256, KeyID: v.KeyID, Caller: doc.Caller, Target: doc.Target}
		msg, err := f.Message()
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(msg); got != v.Message {
			t.Errorf("request %d: message\n got %s\nwant %s", i, got, v.Message)
		}
		if got := keys.Sign(msg); got != v.Signature {
			t.Errorf("request %d: signature %s, want %s", i, got, v.Signature)
		}
		if !keys.Verify(msg, v.Signature) {
			t.Errorf("request %d: own signature does not verify", i)
		}
	}
	for i, v := range doc.Responses {
		f := ResponseFields{Nonce: v.Nonce, Status: v.Status, BodySHA256: Digest([]byte(v.Body)),
			Responder: doc.Target, Caller: doc.Caller}
		msg, err := f.Message()
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(msg); got != v.Message {
			t.Errorf("response %d: message\n got %s\nwant %s", i, got, v.Message)
		}
		if got := keys.Sign(msg); got != v.Signature {
			t.Errorf("response %d: signature %s, want %s", i, got, v.Signature)
		}
	}
}

// Flipping any byte of a signed message, or of the signature, fails.
func TestTamper(t *testing.T) {
	doc, keys := loadVectors(t)
	msg, _ := hex.DecodeString(doc.Requests[0].Message)
	sig := doc.Requests[0].Signature
	for i := range msg {
		m := append([]byte(nil), msg...)
		m[i] ^= 0x01
		if keys.Verify(m, sig) {
			t.Fatalf("flipped message byte %d still verifies", i)
		}
	}
	for _, bad := range []string{"", sig[:len(sig)-1], sig + "A", strings.ToUpper(sig), sig + "="} {
		if keys.Verify(msg, bad) {
			t.Errorf("signature %q verifies", bad)
		}
	}
	if keys.CheckKeyID(doc.KeyID+"A") || keys.CheckKeyID("") || !keys.CheckKeyID(doc.KeyID) {
		t.Error("CheckKeyID")
	}
}

func TestMessageBounds(t *testing.T) {
	f := RequestFields{RequestTarget: "/" + strings.Repeat("a", MaxField)}
	if _, err := f.Message(); err != ErrFieldTooLong {
		t.Fatalf("err = %v, want ErrFieldTooLong", err)
	}
	f.RequestTarget = f.RequestTarget[1:]
	if _, err := f.Message(); err != nil {
		t.Fatalf("65535-byte field refused: %v", err)
	}
}

func TestDate(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 999_000_000, time.FixedZone("x", 3600))
	if got := FormatDate(at); got != "2025-01-02T02:04:05Z" {
		t.Fatalf("FormatDate = %s", got)
	}
	for _, s := range []string{
		"2025-01-02T02:04:05Z",
	} {
		if _, err := ParseDate(s); err != nil {
			t.Errorf("ParseDate(%q): %v", s, err)
		}
	}
	for _, s := range []string{
		"", "2025-01-02T02:04:05+00:00", "2025-01-02T02:04:05.1Z", "2025-01-02t02:04:05z",
		"2025-1-02T02:04:05Z", "2025-01-02 02:04:05Z", "2025-02-30T02:04:05Z", " 2025-01-02T02:04:05Z",
	} {
		if _, err := ParseDate(s); err == nil {
			t.Errorf("ParseDate(%q) accepted", s)
		}
	}
}

func TestNonce(t *testing.T) {
	a, err := NewNonce()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewNonce()
	if len(a) != 22 || a == b {
		t.Fatalf("nonces %q %q", a, b)
	}
}

// The cardholder CLI signs its requests with this package, and it may never
// pull in echo (tstest/deptest): neither may this package nor rfc9457.
func TestNoEcho(t *testing.T) {
	for _, pkg := range []string{"orderseal/internal/signedhttp/httpsig", "orderseal/internal/problem/rfc9457"} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 5 {
			t.Fatalf("go list returned %d packages; the check would prove nothing", len(deps))
		}
		for _, d := range deps {
			if strings.HasPrefix(d, "github.com/labstack/") || d == "database/sql" || strings.HasPrefix(d, "modernc.org/sqlite") {
				t.Errorf("%s depends on %s", pkg, d)
			}
		}
	}
}
