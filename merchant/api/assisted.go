package api

// Assisted orders (DESIGN.md §6.7, seed 003): the wire messages of a phone
// consultant's login, session and orders. Their crypto is package assisted.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"time"

	"orderseal/assisted"
	"orderseal/internal/signedhttp/httpsig"
	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/order"
)

// Routes of assisted ordering.
const (
	PathSessions       = "/v1/assisted/sessions"  // POST: login (consultant, with the company's signature) → 201
	PathSession        = "/v1/assisted/sessions/" // GET + id: the session; POST + id + LogoutSuffix: logout
	LogoutSuffix       = "/logout"
	PathAssistedOrders = "/v1/assisted/orders" // POST: an order keyed in a session → 202
)

// Limits of assisted ordering.
const (
	MaxLoginBody    = 4 << 10
	MaxAssistedBody = order.MaxBundleSize + 4<<10
	MinShift        = time.Second
	DefaultMaxShift = 12 * time.Hour
	SecretSize      = assisted.SecretSize // the second identifier
)

// Session states.
const (
	SessionLive       = "live"
	SessionExpired    = "expired"
	SessionLoggedOut  = "logged-out"
	SessionSuperseded = "superseded" // a later login on the same device replaced it
)

// Problem codes of assisted ordering.
const (
	CodeLoginInvalid       = "login-invalid"             // 400: a field is malformed
	CodeLoginStale         = "login-stale"               // 401: the login's date is outside the window
	CodeLoginReplayed      = "login-replayed"            // 409: this login was already used
	CodeCompanyNotAccepted = "company-not-accepted"      // 403: the company does not run this merchant's phone orders
	CodeCompanySignature   = "company-signature-invalid" // 403: missing or wrong company signature
	CodeNotAssisted        = "not-assisted"              // 403: assisted route for a non-consultant, or a consultant on the online route
	CodeSessionUnknown     = "session-unknown"           // 403
	CodeSessionEnded       = "session-ended"             // 403: logged out or superseded
	CodeSessionExpired     = "session-expired"           // 403: the shift is over
	CodeDeviceMismatch     = "device-mismatch"           // 403: used from another device than it was issued to
	CodeDeviceKeyMismatch  = "device-key-mismatch"       // 403: the order is not signed by the device key the session was opened with
	CodeProofInvalid       = "proof-invalid"             // 403: the proof does not open or names another identifier
	CodeSessionMismatch    = "session-mismatch"          // 422: the bundle names another session than the request
)

var deviceRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._:-]{0,63}$`)

// ValidDevice reports whether s is a device identifier: 1–64 of [a-z0-9._:-],
// starting with a letter or digit.
func ValidDevice(s string) bool { return deviceRe.MatchString(s) }

// Sealed is an AEAD ciphertext with its nonce, both base64url.
type Sealed = assisted.Sealed

// LoginRequest opens an assisted session. The consultant signs the HTTP
// request; the company signs the fields with CompanySignature.
type LoginRequest struct {
	Consultant       string `json:"consultant"`
	Company          string `json:"company"`
	Device           string `json:"device"`
	DeviceKey        string `json:"device_key"` // base64url of the terminal's Ed25519 public key
	ShiftSeconds     int64  `json:"shift_seconds"`
	Date             string `json:"date"`  // RFC 3339; within the signing window
	Nonce            string `json:"nonce"` // base64url of 16 random bytes; one login each
	CompanySignature string `json:"company_signature"`
	DeviceSignature  string `json:"device_signature"` // the device key's signature on the same fields
}

// Check validates the request's syntax; the signature is checked apart.
func (r *LoginRequest) Check() error {
	switch {
	case keygen.ValidateIdentity(r.Consultant) != nil || keygen.RoleOf(r.Consultant) != keygen.RoleConsultant:
		return errors.New("consultant must be consultant:<name>")
	case keygen.ValidateIdentity(r.Company) != nil || keygen.RoleOf(r.Company) != keygen.RoleCompany:
		return errors.New("company must be company:<name>")
	case !ValidDevice(r.Device):
		return errors.New("device must be 1–64 of [a-z0-9._:-]")
	case r.ShiftSeconds < int64(MinShift/time.Second) || r.ShiftSeconds > int64(24*time.Hour/time.Second):
		return errors.New("shift_seconds must be between 1 and 86400")
	}
	if _, err := time.Parse(time.RFC3339, r.Date); err != nil || len(r.Date) > 40 {
		return errors.New("date must be RFC 3339")
	}
	if _, err := wire.UnB64Len(r.Nonce, 16); err != nil {
		return errors.New("nonce must be 16 bytes of base64url")
	}
	if _, err := wire.UnB64Len(r.CompanySignature, sha256.Size); err != nil {
		return errors.New("company_signature must be 32 bytes of base64url")
	}
	if _, err := assisted.ParseDevicePublic(r.DeviceKey); err != nil {
		return errors.New("device_key must be 32 bytes of base64url (an Ed25519 public key)")
	}
	if _, err := wire.UnB64Len(r.DeviceSignature, ed25519.SignatureSize); err != nil {
		return errors.New("device_signature must be 64 bytes of base64url")
	}
	return nil
}

// login is the part of the request the company signs.
func (r *LoginRequest) login(merchant string) *assisted.Login {
	return &assisted.Login{Merchant: merchant, Consultant: r.Consultant, Company: r.Company, Device: r.Device, DeviceKey: r.DeviceKey,
		ShiftSeconds: r.ShiftSeconds, Date: r.Date, Nonce: r.Nonce}
}

// NewLogin fills a login request for consultant on the terminal whose
// device key is dev, named device, dated now, and signs it with the
// company's key for merchant and with dev.
func NewLogin(company order.Keyring, dev *assisted.DeviceKey, merchant, consultant, device string, shift time.Duration, now time.Time) (*LoginRequest, error) {
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	r := &LoginRequest{Consultant: consultant, Company: company.Identity(), Device: device, DeviceKey: dev.Public().String(),
		ShiftSeconds: int64(shift / time.Second), Date: now.UTC().Format(time.RFC3339), Nonce: wire.B64(nonce[:])}
	mac, err := assisted.CompanySign(company, r.login(merchant))
	if err != nil {
		return nil, err
	}
	r.CompanySignature = wire.B64(mac)
	r.DeviceSignature = wire.B64(dev.SignLogin(r.login(merchant)))
	if err := r.Check(); err != nil {
		return nil, err
	}
	return r, nil
}

// VerifyCompany checks the company signature with the merchant's key, in
// constant time.
func (r *LoginRequest) VerifyCompany(merchant order.Keyring) bool {
	got, err := wire.UnB64Len(r.CompanySignature, sha256.Size)
	if err != nil {
		return false
	}
	return assisted.VerifyCompany(merchant, r.login(merchant.Identity()), got)
}

// VerifyDevice checks that the terminal holds the device key it registers.
func (r *LoginRequest) VerifyDevice(merchant string) bool {
	sig, err := wire.UnB64Len(r.DeviceSignature, ed25519.SignatureSize)
	return err == nil && assisted.VerifyLogin(r.login(merchant), sig) == nil
}

// Session describes an assisted session. SealedID is set only in the login
// answer: the second identifier, sealed for the consultant.
type Session struct {
	Session    string  `json:"session"`
	Consultant string  `json:"consultant"`
	Company    string  `json:"company"`
	Device     string  `json:"device"`
	DeviceKey  string  `json:"device_key,omitempty"` // base64url of the device public key the session is bound to
	Created    string  `json:"created"`              // RFC 3339
	Expires    string  `json:"expires"`              // RFC 3339: the shift's end
	State      string  `json:"state"`
	Ended      string  `json:"ended,omitempty"`
	SealedID   *Sealed `json:"sealed_id,omitempty"`
}

// AssistedOrder is an order keyed in a session: the bundle, the proof
// that its sender holds the session's second identifier, and the session's
// device key's signature on that proof (assisted.DeviceKey.SignOrder).
type AssistedOrder struct {
	Bundle          json.RawMessage `json:"bundle"`
	Session         string          `json:"session"`
	Device          string          `json:"device"`
	Proof           Sealed          `json:"proof"`
	DeviceSignature string          `json:"device_signature"`
}

// Login opens an assisted session; the client must hold the consultant's keys.
func (c *Client) Login(ctx context.Context, r *LoginRequest) (*Session, error) {
	return call[Session](ctx, c, httpsig.MethodPost, PathSessions, r)
}

// Logout ends a session at once. Logging out of an ended session is not an error.
func (c *Client) Logout(ctx context.Context, session string) (*Session, error) {
	return call[Session](ctx, c, httpsig.MethodPost, PathSession+url.PathEscape(session)+LogoutSuffix, nil)
}

// SessionInfo reads one of the caller's sessions.
func (c *Client) SessionInfo(ctx context.Context, session string) (*Session, error) {
	return call[Session](ctx, c, httpsig.MethodGet, PathSession+url.PathEscape(session), nil)
}

// SubmitAssisted sends an order keyed in a session with its proof.
// Submitting the same bundle again is safe, as with Submit.
func (c *Client) SubmitAssisted(ctx context.Context, b *order.Bundle, session, device string, proof Sealed, deviceSig []byte) (*Accepted, error) {
	raw, err := b.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return call[Accepted](ctx, c, httpsig.MethodPost, PathAssistedOrders,
		AssistedOrder{Bundle: raw, Session: session, Device: device, Proof: proof, DeviceSignature: wire.B64(deviceSig)})
}
