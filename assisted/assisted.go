// Package assisted is the session crypto of assisted orders (DESIGN.md §6.7,
// seed 003; PROTOCOL.md §13): a merchant's phone consultant logs in with
// the consultant identity and the company identity together, gets a fresh
// random second identifier per login, bound to one device and one shift,
// and proves it on every order keyed in that session. The wire messages
// that carry these values are the merchant's (merchant/api).
//
// Keys, all from pairwise keys the parties already share:
//   - company signature: HMAC-SHA256 under HKDF-Expand(K(company, merchant),
//     "orderseal-v1-company-login") over the login fields;
//   - the second identifier travels to the consultant sealed under
//     HKDF-Expand(K(consultant, merchant), "orderseal-v1-assisted-id" || lp16(session));
//   - an order's proof seals the identifier again, under
//     HKDF-Expand(K(consultant, merchant), "orderseal-v1-assisted-proof" || lp16(session)),
//     with the bundle's header hash and the device as associated data;
//   - the terminal's device key (device.go, Ed25519) is registered at
//     login and signs every order's proof; the session file is sealed
//     under Mix(K(consultant, merchant), device seed,
//     "orderseal-v1-assisted-session-file").
//
// The merchant keeps only SHA-256("orderseal-v1-assisted-id" || identifier),
// so its database alone cannot make a proof.
package assisted

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"

	"golang.org/x/crypto/chacha20poly1305"

	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/order"
)

// SecretSize is the size of a second identifier.
const SecretSize = 32

// Sealed is an AEAD ciphertext with its nonce, both base64url.
type Sealed struct {
	Nonce string `json:"nonce"`
	CT    string `json:"ct"`
}

// Login is what a company signs for its consultant's login at a merchant:
// DeviceKey is the terminal's device public key (DevicePublic.String), so
// the company vouches for the very key the session is bound to.
type Login struct {
	Merchant, Consultant, Company, Device, DeviceKey string
	ShiftSeconds                                     int64
	Date, Nonce                                      string // RFC 3339; base64url of 16 random bytes
}

// message is the company-signed bytes.
func (l *Login) message() []byte {
	m := []byte(keygen.LabelCompanyLogin)
	for _, f := range []string{l.Merchant, l.Consultant, l.Company, l.Device, l.DeviceKey, l.Date, l.Nonce} {
		m = wire.LP16(m, []byte(f))
	}
	return binary.BigEndian.AppendUint64(m, uint64(l.ShiftSeconds))
}

func companyMAC(keys order.Keyring, peer string, l *Login) ([]byte, error) {
	pw, err := keys.Pairwise(peer)
	if err != nil {
		return nil, err
	}
	k := pw.Expand(keygen.LabelCompanyLogin)
	defer clear(k[:])
	h := hmac.New(sha256.New, k[:])
	h.Write(l.message())
	return h.Sum(nil), nil
}

// CompanySign is the company's signature on l, with K(company, merchant).
func CompanySign(company order.Keyring, l *Login) ([]byte, error) {
	if company.Identity() != l.Company {
		return nil, errors.New("assisted: the login names another company than the signing key")
	}
	return companyMAC(company, l.Merchant, l)
}

// VerifyCompany checks a company signature with the merchant's key, in
// constant time.
func VerifyCompany(merchant order.Keyring, l *Login, sig []byte) bool {
	if merchant.Identity() != l.Merchant {
		return false
	}
	want, err := companyMAC(merchant, l.Company, l)
	return err == nil && hmac.Equal(sig, want)
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
// of session, issued to device.
func SealSecret(merchant order.Keyring, consultant, session, device string, secret []byte) (Sealed, error) {
	aead, err := sessionAEAD(merchant, consultant, keygen.LabelAssistedID, session)
	if err != nil {
		return Sealed{}, err
	}
	return seal(aead, secret, idAAD(session, consultant, device))
}

// OpenSecret is the consultant's side of SealSecret. The caller clears the
// result when done with it.
func OpenSecret(consultant order.Keyring, merchant, session, device string, sealed *Sealed) ([]byte, error) {
	if sealed == nil {
		return nil, ErrProof
	}
	aead, err := sessionAEAD(consultant, merchant, keygen.LabelAssistedID, session)
	if err != nil {
		return nil, err
	}
	return open(aead, *sealed, idAAD(session, consultant.Identity(), device))
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
