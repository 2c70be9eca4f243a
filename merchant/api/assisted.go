package api

// Assisted orders (DESIGN.md §6.7, seed 003): a merchant's phone consultant
// logs in with the consultant identity and the company identity together,
// gets a fresh random second identifier per login, bound to one device and
// one shift, and proves it on every order keyed in that session.
//
// Keys, all from pairwise keys the parties already share:
//   - company signature: HMAC-SHA256 under HKDF-Expand(K(company, merchant),
//     "orderseal-v1-company-login") over the login fields;
//   - the second identifier travels to the consultant sealed under
//     HKDF-Expand(K(consultant, merchant), "orderseal-v1-assisted-id" || lp16(session));
//   - an order's proof seals the identifier again, under
//     HKDF-Expand(K(consultant, merchant), "orderseal-v1-assisted-proof" || lp16(session)),
//     with the bundle's header hash and the device as associated data.
//
// The merchant keeps only SHA-256("orderseal-v1-assisted-id" || identifier),
// so its database alone cannot make a proof.

import (
	"context"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

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
	SecretSize      = 32 // the second identifier
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
	CodeProofInvalid       = "proof-invalid"             // 403: the proof does not open or names another identifier
	CodeSessionMismatch    = "session-mismatch"          // 422: the bundle names another session than the request
)

var deviceRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._:-]{0,63}$`)

// ValidDevice reports whether s is a device identifier: 1–64 of [a-z0-9._:-],
// starting with a letter or digit.
func ValidDevice(s string) bool { return deviceRe.MatchString(s) }

// Sealed is an AEAD ciphertext with its nonce, both base64url.
type Sealed struct {
	Nonce string `json:"nonce"`
	CT    string `json:"ct"`
}

// LoginRequest opens an assisted session. The consultant signs the HTTP
// request; the company signs the fields with CompanySignature.
type LoginRequest struct {
	Consultant       string `json:"consultant"`
	Company          string `json:"company"`
	Device           string `json:"device"`
	ShiftSeconds     int64  `json:"shift_seconds"`
	Date             string `json:"date"`  // RFC 3339; within the signing window
	Nonce            string `json:"nonce"` // base64url of 16 random bytes; one login each
	CompanySignature string `json:"company_signature"`
}

// Check validates the request's syntax; the signature is checked apart.
func (r *LoginRequest) Check() error {
	switch {
	case keygen.ValidateIdentity(r.Consultant) != nil || keygen.RoleOf(r.Consultant) != "consultant":
		return errors.New("consultant must be consultant:<name>")
	case keygen.ValidateIdentity(r.Company) != nil || keygen.RoleOf(r.Company) != "company":
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
	return nil
}

// loginMessage is what the company signs.
func (r *LoginRequest) loginMessage(merchant string) []byte {
	m := []byte("orderseal-v1-company-login")
	for _, f := range []string{merchant, r.Consultant, r.Company, r.Device, r.Date, r.Nonce} {
		m = wire.LP16(m, []byte(f))
	}
	return binary.BigEndian.AppendUint64(m, uint64(r.ShiftSeconds))
}

func companyMAC(company order.Keyring, peer string, r *LoginRequest, merchant string) ([]byte, error) {
	pw, err := company.Pairwise(peer)
	if err != nil {
		return nil, err
	}
	k := pw.Expand(keygen.LabelCompanyLogin)
	defer clear(k[:])
	h := hmac.New(sha256.New, k[:])
	h.Write(r.loginMessage(merchant))
	return h.Sum(nil), nil
}

// NewLogin fills a login request for consultant on device, dated now, and
// signs it with the company's key for merchant.
func NewLogin(company order.Keyring, merchant, consultant, device string, shift time.Duration, now time.Time) (*LoginRequest, error) {
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, err
	}
	r := &LoginRequest{Consultant: consultant, Company: company.Identity(), Device: device,
		ShiftSeconds: int64(shift / time.Second), Date: now.UTC().Format(time.RFC3339), Nonce: wire.B64(nonce[:])}
	mac, err := companyMAC(company, merchant, r, merchant)
	if err != nil {
		return nil, err
	}
	r.CompanySignature = wire.B64(mac)
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
	want, err := companyMAC(merchant, r.Company, r, merchant.Identity())
	return err == nil && hmac.Equal(got, want)
}

// Session describes an assisted session. SealedID is set only in the login
// answer: the second identifier, sealed for the consultant.
type Session struct {
	Session    string  `json:"session"`
	Consultant string  `json:"consultant"`
	Company    string  `json:"company"`
	Device     string  `json:"device"`
	Created    string  `json:"created"` // RFC 3339
	Expires    string  `json:"expires"` // RFC 3339: the shift's end
	State      string  `json:"state"`
	Ended      string  `json:"ended,omitempty"`
	SealedID   *Sealed `json:"sealed_id,omitempty"`
}

// AssistedOrder is an order keyed in a session: the bundle, and the proof
// that its sender holds the session's second identifier on that device.
type AssistedOrder struct {
	Bundle  json.RawMessage `json:"bundle"`
	Session string          `json:"session"`
	Device  string          `json:"device"`
	Proof   Sealed          `json:"proof"`
}

// Errors of the session crypto.
var (
	ErrProof = errors.New("assisted proof does not open")
)

// SecretHash is what the merchant stores of a second identifier.
func SecretHash(secret []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte("orderseal-v1-assisted-id"))
	h.Write(secret)
	return [32]byte(h.Sum(nil))
}

// NewSecret draws a fresh second identifier.
func NewSecret() ([]byte, error) {
	s := make([]byte, SecretSize)
	if _, err := rand.Read(s); err != nil {
		return nil, err
	}
	return s, nil
}

func sessionAEAD(keys order.Keyring, peer, label, session string) (cipher.AEAD, error) {
	pw, err := keys.Pairwise(peer)
	if err != nil {
		return nil, err
	}
	k := pw.Expand(label, session)
	defer clear(k[:])
	return chacha20poly1305.NewX(k[:])
}

func idAAD(session, consultant, device string) []byte {
	ad := []byte("orderseal-v1-assisted-id")
	for _, f := range []string{session, consultant, device} {
		ad = wire.LP16(ad, []byte(f))
	}
	return ad
}

func proofAAD(hH [32]byte, session, device string) []byte {
	ad := append([]byte("orderseal-v1-assisted-proof"), hH[:]...)
	ad = wire.LP16(ad, []byte(session))
	return wire.LP16(ad, []byte(device))
}

func seal(aead cipher.AEAD, pt, ad []byte) (Sealed, error) {
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, err
	}
	return Sealed{Nonce: wire.B64(nonce), CT: wire.B64(aead.Seal(nil, nonce, pt, ad))}, nil
}

func open(aead cipher.AEAD, s Sealed, ad []byte) ([]byte, error) {
	nonce, err := wire.UnB64Len(s.Nonce, chacha20poly1305.NonceSizeX)
	if err != nil {
		return nil, ErrProof
	}
	ct, err := wire.UnB64Len(s.CT, SecretSize+chacha20poly1305.Overhead)
	if err != nil {
		return nil, ErrProof
	}
	pt, err := aead.Open(nil, nonce, ct, ad)
	if err != nil {
		return nil, ErrProof
	}
	return pt, nil
}

// SealSecret seals a second identifier from the merchant to the consultant
// of session s.
func SealSecret(merchant order.Keyring, s *Session, secret []byte) (Sealed, error) {
	aead, err := sessionAEAD(merchant, s.Consultant, keygen.LabelAssistedID, s.Session)
	if err != nil {
		return Sealed{}, err
	}
	return seal(aead, secret, idAAD(s.Session, s.Consultant, s.Device))
}

// OpenSecret is the consultant's side of SealSecret. The caller clears the
// result when done with it.
func OpenSecret(consultant order.Keyring, merchant string, s *Session) ([]byte, error) {
	if s.SealedID == nil {
		return nil, ErrProof
	}
	aead, err := sessionAEAD(consultant, merchant, keygen.LabelAssistedID, s.Session)
	if err != nil {
		return nil, err
	}
	return open(aead, *s.SealedID, idAAD(s.Session, consultant.Identity(), s.Device))
}

// Prove makes an order's proof: the second identifier sealed to the merchant
// under the session's proof key, bound to the bundle's header hash and the
// device the order is sent from.
func Prove(consultant order.Keyring, merchant, session, device string, secret []byte, hH [32]byte) (Sealed, error) {
	aead, err := sessionAEAD(consultant, merchant, keygen.LabelAssistedProof, session)
	if err != nil {
		return Sealed{}, err
	}
	return seal(aead, secret, proofAAD(hH, session, device))
}

// OpenProof is the merchant's side of Prove: it returns the second
// identifier the proof carries, for the caller to hash and compare with the
// session's stored hash. The caller clears the result.
func OpenProof(merchant order.Keyring, consultant, session, device string, hH [32]byte, p Sealed) ([]byte, error) {
	aead, err := sessionAEAD(merchant, consultant, keygen.LabelAssistedProof, session)
	if err != nil {
		return nil, err
	}
	return open(aead, p, proofAAD(hH, session, device))
}

// Login opens an assisted session; the client must hold the consultant's keys.
func (c *Client) Login(ctx context.Context, r *LoginRequest) (*Session, error) {
	return call[Session](ctx, c, http.MethodPost, PathSessions, r)
}

// Logout ends a session at once. Logging out of an ended session is not an error.
func (c *Client) Logout(ctx context.Context, session string) (*Session, error) {
	return call[Session](ctx, c, http.MethodPost, PathSession+url.PathEscape(session)+LogoutSuffix, nil)
}

// SessionInfo reads one of the caller's sessions.
func (c *Client) SessionInfo(ctx context.Context, session string) (*Session, error) {
	return call[Session](ctx, c, http.MethodGet, PathSession+url.PathEscape(session), nil)
}

// SubmitAssisted sends an order keyed in a session with its proof.
// Submitting the same bundle again is safe, as with Submit.
func (c *Client) SubmitAssisted(ctx context.Context, b *order.Bundle, session, device string, proof Sealed) (*Accepted, error) {
	raw, err := b.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return call[Accepted](ctx, c, http.MethodPost, PathAssistedOrders, AssistedOrder{Bundle: raw, Session: session, Device: device, Proof: proof})
}
