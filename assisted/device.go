package assisted

// The consultant terminal's device key (DESIGN.md §6.7): an Ed25519 key pair
// the terminal draws on first use and never sends. Login registers its
// public half with the session; every order's proof is signed with it; the
// session file is sealed under a key only this terminal and this consultant
// can derive. Ed25519 (crypto/ed25519, RFC 8032) because it is the
// standard library's, its 32-byte public key fits a login, and a device
// signature only has to hold for one shift: a forgery needs the private
// key while the session lives, which no stored ciphertext helps with, so
// the harvest-now threat that makes OS2's KEM post-quantum does not apply.

import (
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"io"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"

	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/order"
)

// deviceKeyPrefix starts a device key's text form, so no other key file
// parses as one.
const deviceKeyPrefix = "orderseal-device-key-ed25519:"

// domainDeviceOrder starts the bytes a device signs for an order.
const domainDeviceOrder = "orderseal-v1-assisted-device-order"

// domainDeviceLogin starts the bytes a device signs for a login.
const domainDeviceLogin = "orderseal-v1-assisted-device-login"

// Errors of device keys.
var (
	ErrDeviceKey  = errors.New("not an orderseal device key")
	ErrDeviceSig  = errors.New("device signature does not verify with the session's device key")
	ErrSessionBox = errors.New("session file does not open with this consultant key on this terminal")
)

// DeviceKey is a terminal's private device key. Compare public halves.
type DeviceKey struct {
	priv ed25519.PrivateKey
}

// DevicePublic is a device key's public half, 32 bytes.
type DevicePublic [ed25519.PublicKeySize]byte

// NewDeviceKey draws a device key from r (nil: crypto/rand).
func NewDeviceKey(r io.Reader) (*DeviceKey, error) {
	if r == nil {
		r = rand.Reader
	}
	var seed [ed25519.SeedSize]byte
	if _, err := io.ReadFull(r, seed[:]); err != nil {
		return nil, err
	}
	defer clear(seed[:])
	return &DeviceKey{priv: ed25519.NewKeyFromSeed(seed[:])}, nil
}

// MarshalText is the key's file form: the prefix, base64url of the seed.
func (k *DeviceKey) MarshalText() ([]byte, error) {
	return []byte(deviceKeyPrefix + wire.B64(k.priv.Seed()) + "\n"), nil
}

// ParseDeviceKey reads MarshalText's form.
func ParseDeviceKey(data []byte) (*DeviceKey, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(string(data)), deviceKeyPrefix)
	if !ok {
		return nil, ErrDeviceKey
	}
	seed, err := wire.UnB64Len(rest, ed25519.SeedSize)
	if err != nil {
		return nil, ErrDeviceKey
	}
	defer clear(seed)
	return &DeviceKey{priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// Destroy clears the private key.
func (k *DeviceKey) Destroy() { clear(k.priv) }

// Public is the key's public half.
func (k *DeviceKey) Public() DevicePublic { return DevicePublic(k.priv[ed25519.SeedSize:]) }

// String is base64url of the public key, as it travels.
func (p DevicePublic) String() string { return wire.B64(p[:]) }

// Equal compares in constant time.
func (p DevicePublic) Equal(q DevicePublic) bool { return subtle.ConstantTimeCompare(p[:], q[:]) == 1 }

// DeviceID names a device by its public key when no asset tag is given:
// "k-" and 16 hex digits of its hash. It is a name, not the binding.
func (p DevicePublic) DeviceID() string {
	h := sha256.Sum256(append([]byte(domainDeviceLogin), p[:]...))
	return "k-" + hex.EncodeToString(h[:8])
}

// ParseDevicePublic reads String's form.
func ParseDevicePublic(s string) (DevicePublic, error) {
	b, err := wire.UnB64Len(s, ed25519.PublicKeySize)
	if err != nil {
		return DevicePublic{}, ErrDeviceKey
	}
	return DevicePublic(b), nil
}

func orderMessage(merchant, consultant, session, device string, hH [32]byte, p Sealed) []byte {
	m := append([]byte(domainDeviceOrder), hH[:]...)
	for _, f := range []string{merchant, consultant, session, device, p.Nonce, p.CT} {
		m = wire.LP16(m, []byte(f))
	}
	return m
}

// SignOrder is the device's signature on an order's proof p: over the
// merchant, consultant, session, device name, the bundle's header hash and
// the proof itself.
func (k *DeviceKey) SignOrder(merchant, consultant, session, device string, hH [32]byte, p Sealed) []byte {
	return ed25519.Sign(k.priv, orderMessage(merchant, consultant, session, device, hH, p))
}

// VerifyOrder checks SignOrder's signature with the session's device key.
func (p DevicePublic) VerifyOrder(merchant, consultant, session, device string, hH [32]byte, proof Sealed, sig []byte) error {
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(p[:], orderMessage(merchant, consultant, session, device, hH, proof), sig) {
		return ErrDeviceSig
	}
	return nil
}

// SignLogin proves the terminal holds the key it registers: a signature on
// the company-signed login bytes, which name the key.
func (k *DeviceKey) SignLogin(l *Login) []byte {
	return ed25519.Sign(k.priv, append([]byte(domainDeviceLogin), l.message()...))
}

// VerifyLogin checks SignLogin's signature with the key l names.
func VerifyLogin(l *Login, sig []byte) error {
	p, err := ParseDevicePublic(l.DeviceKey)
	if err != nil {
		return err
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(p[:], append([]byte(domainDeviceLogin), l.message()...), sig) {
		return ErrDeviceSig
	}
	return nil
}

// sessionFileAEAD keys a session file: Mix(K(consultant, merchant), ikm =
// the device seed), so the file opens only with both the consultant's key
// and this terminal's device key.
func sessionFileAEAD(consultant order.Keyring, merchant string, dev *DeviceKey) (cipher.AEAD, error) {
	pw, err := consultant.Pairwise(merchant)
	if err != nil {
		return nil, err
	}
	pub := dev.Public()
	k := pw.Mix(dev.priv.Seed(), keygen.LabelAssistedSessionFile, consultant.Identity(), pub.String())
	defer clear(k[:])
	return chacha20poly1305.NewX(k[:])
}

func sessionFileAD(consultant, merchant string) []byte {
	ad := wire.LP16([]byte(keygen.LabelAssistedSessionFile), []byte(consultant))
	return wire.LP16(ad, []byte(merchant))
}

// SealSessionFile seals a session file's contents on the consultant's terminal.
func SealSessionFile(consultant order.Keyring, merchant string, dev *DeviceKey, pt []byte) (Sealed, error) {
	aead, err := sessionFileAEAD(consultant, merchant, dev)
	if err != nil {
		return Sealed{}, err
	}
	return seal(aead, pt, sessionFileAD(consultant.Identity(), merchant))
}

// OpenSessionFile is SealSessionFile's inverse; ErrSessionBox when the file
// was sealed by another consultant, for another merchant, on another
// terminal, or altered. The caller clears the result.
func OpenSessionFile(consultant order.Keyring, merchant string, dev *DeviceKey, s Sealed, max int) ([]byte, error) {
	aead, err := sessionFileAEAD(consultant, merchant, dev)
	if err != nil {
		return nil, err
	}
	nonce, err := wire.UnB64Len(s.Nonce, chacha20poly1305.NonceSizeX)
	if err != nil {
		return nil, ErrSessionBox
	}
	ct, err := wire.UnB64(s.CT)
	if err != nil || len(ct) > max+chacha20poly1305.Overhead {
		return nil, ErrSessionBox
	}
	pt, err := aead.Open(nil, nonce, ct, sessionFileAD(consultant.Identity(), merchant))
	if err != nil {
		return nil, ErrSessionBox
	}
	return pt, nil
}
