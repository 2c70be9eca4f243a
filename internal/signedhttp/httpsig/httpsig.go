// Package httpsig is the framework-free half of orderseal's signed HTTP: the
// v1 message encodings, the two sub-keys, and the Client that signs requests
// and verifies responses. Package signedhttp documents the normative wire
// format and adds the echo middleware; this package never imports echo, so
// the cardholder CLI can use it (tstest/deptest). It is not RFC 9421.
package httpsig

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strconv"
	"time"

	"orderseal/internal/wire"
	"orderseal/keygen"
)

// Header names of DESIGN.md §5.
const (
	HeaderIdentity      = "Orderseal-Identity"
	HeaderTarget        = "Orderseal-Target"
	HeaderDate          = "Orderseal-Date"
	HeaderNonce         = "Orderseal-Nonce"
	HeaderContentSHA256 = "Orderseal-Content-Sha256"
	HeaderKeyID         = "Orderseal-Key-Id"
	HeaderSignature     = "Orderseal-Signature"
)

// Sizes of the binary header values, before base64url.
const (
	NonceSize  = 16
	KeyIDSize  = 8
	DigestSize = sha256.Size
	MACSize    = sha256.Size
)

// DateLayout is Orderseal-Date: RFC 3339, UTC, whole seconds.
const DateLayout = "2006-01-02T15:04:05Z"

// MaxField bounds every length-prefixed field (method, request-target, …).
const MaxField = 0xffff

// Problem codes of the refusals, stable across versions.
const (
	CodeAuthMissing     = "auth-missing"
	CodeUnknownIdentity = "unknown-identity"
	CodeWrongTarget     = "wrong-target"
	CodeForbiddenRole   = "forbidden-role"
	CodeClockSkew       = "clock-skew"
	CodeReplayedNonce   = "replayed-nonce"
	CodeBodyDigest      = "body-digest"
	CodeWrongKey        = "wrong-key"
	CodeBadSignature    = "bad-signature"
	CodeBodyTooLarge    = "body-too-large"
	CodeURITooLong      = "uri-too-long"
	CodeNonceQuota      = "nonce-quota"  // 429: the caller holds its quota of live nonces
	CodeCallerBusy      = "caller-busy"  // 429: the caller has its share of requests in progress
	CodeBodyTimeout     = "body-timeout" // 408: the body was not read in time
)

// Domain-separation prefixes of the two signed messages, and sub-key labels.
const (
	requestPrefix  = "orderseal-v1-request"
	responsePrefix = "orderseal-v1-response"
	labelMAC       = keygen.LabelHTTP
	labelKeyID     = keygen.LabelHTTPKeyID
)

// ErrFieldTooLong is returned when a signed field exceeds MaxField bytes.
var ErrFieldTooLong = errors.New("signed field longer than 65535 bytes")

// RequestFields holds the signed fields of a request, each exactly as sent.
type RequestFields struct {
	Method        string
	RequestTarget string // escaped path, plus "?" and the raw query when present
	Date          string
	Nonce         string
	ContentSHA256 string
	KeyID         string
	Caller        string
	Target        string // the identity the caller meant to reach
}

// Message is "orderseal-v1-request" || lp16 of each field in wire order.
func (r *RequestFields) Message() ([]byte, error) {
	return message(requestPrefix, r.Method, r.RequestTarget, r.Date, r.Nonce,
		r.ContentSHA256, r.KeyID, r.Caller, r.Target)
}

// ResponseFields holds the signed fields of a response.
type ResponseFields struct {
	Nonce      string // the request's Orderseal-Nonce
	Status     int
	BodySHA256 string // Digest of the response body as sent
	Responder  string
	Caller     string
}

// Message is "orderseal-v1-response" || lp16 of each field in wire order.
func (r *ResponseFields) Message() ([]byte, error) {
	return message(responsePrefix, r.Nonce, strconv.Itoa(r.Status), r.BodySHA256, r.Responder, r.Caller)
}

func message(prefix string, fields ...string) ([]byte, error) {
	n := len(prefix)
	for _, f := range fields {
		if len(f) > MaxField {
			return nil, ErrFieldTooLong
		}
		n += 2 + len(f)
	}
	msg := make([]byte, 0, n)
	msg = append(msg, prefix...)
	for _, f := range fields {
		msg = wire.LP16(msg, []byte(f))
	}
	return msg, nil
}

// Keys are the two HTTP sub-keys of one pairwise key K(A,B): the MAC key
// Expand("http") and the key confirmation Expand("http-keyid")[:8].
type Keys struct {
	mac [32]byte
	id  [KeyIDSize]byte
	_   [0]func() // not comparable
}

// DeriveKeys derives the HTTP sub-keys of k.
func DeriveKeys(k *keygen.Pairwise) Keys {
	var ks Keys
	ks.mac = k.Expand(labelMAC)
	id := k.Expand(labelKeyID)
	copy(ks.id[:], id[:KeyIDSize])
	clear(id[:])
	return ks
}

// KeyID is the Orderseal-Key-Id value: one-way, so it reveals nothing of K,
// but it tells a receiver a wrong key from an altered request.
func (k *Keys) KeyID() string { return wire.B64(k.id[:]) }

// CheckKeyID compares a received key id with ours in constant time.
func (k *Keys) CheckKeyID(s string) bool {
	b, err := wire.UnB64Len(s, KeyIDSize)
	return err == nil && hmac.Equal(b, k.id[:])
}

// Sign returns base64url HMAC-SHA256(mac key, msg).
func (k *Keys) Sign(msg []byte) string { return wire.B64(k.sum(msg)) }

// Verify checks a base64url MAC over msg in constant time.
func (k *Keys) Verify(msg []byte, sig string) bool {
	b, err := wire.UnB64Len(sig, MACSize)
	return err == nil && hmac.Equal(b, k.sum(msg))
}

func (k *Keys) sum(msg []byte) []byte {
	m := hmac.New(sha256.New, k.mac[:])
	m.Write(msg)
	return m.Sum(nil)
}

// Destroy zeroes the sub-keys.
func (k *Keys) Destroy() {
	clear(k.mac[:])
	clear(k.id[:])
}

// Digest is base64url SHA-256(body); the empty body hashes the empty string.
func Digest(body []byte) string {
	d := sha256.Sum256(body)
	return wire.B64(d[:])
}

// FormatDate renders t as an Orderseal-Date.
func FormatDate(t time.Time) string { return t.UTC().Format(DateLayout) }

// ParseDate accepts only the canonical form FormatDate writes, so one instant
// has one spelling.
func ParseDate(s string) (time.Time, error) {
	t, err := time.Parse(DateLayout, s)
	if err != nil || t.Format(DateLayout) != s {
		return time.Time{}, errors.New("malformed Orderseal-Date")
	}
	return t, nil
}

// NewNonce returns a fresh Orderseal-Nonce.
func NewNonce() (string, error) {
	var b [NonceSize]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return wire.B64(b[:]), nil
}
