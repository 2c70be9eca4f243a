package store

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"

	"orderseal/internal/secfile"
)

// DataKey is the vault data key: 32 random bytes from which the sealing and
// dedupe sub-keys are derived. It lives in its own 0600 file, never inside
// the index or data databases. It cannot be compared with ==; it prints
// redacted.
type DataKey struct {
	_ [0]func() // not comparable
	k [32]byte
}

// String keeps the key out of logs and %v.
func (*DataKey) String() string { return "store.DataKey(redacted)" }

// Equal compares two keys in constant time.
func (k *DataKey) Equal(o *DataKey) bool {
	return k != nil && o != nil && subtle.ConstantTimeCompare(k.k[:], o.k[:]) == 1
}

// Sub-key labels: one label, one purpose (DESIGN.md §2 "Sub-keys").
const (
	labelSeal   = "orderseal-v1-vault-seal"
	labelDedupe = "orderseal-v1-vault-dedupe"
	labelCheck  = "orderseal-v1-vault-keycheck"
)

// CreateDataKey writes a fresh data key to path (0600, O_EXCL: it never
// overwrites) as base64url text and returns it.
func CreateDataKey(path string) (*DataKey, error) {
	k := new(DataKey)
	if _, err := rand.Read(k.k[:]); err != nil {
		return nil, err
	}
	text := base64.RawURLEncoding.EncodeToString(k.k[:]) + "\n"
	if err := secfile.WriteNew(path, []byte(text)); err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	return k, nil
}

// LoadDataKey reads a data key file, refusing it when group or others may
// read it (secfile.ErrPermissions) or when it is not exactly 32 bytes of
// base64url.
func LoadDataKey(path string) (*DataKey, error) {
	b, err := secfile.Read(path, 256)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("data key: %s: %w", path, ErrBadDataKey)
	}
	k := new(DataKey)
	copy(k.k[:], raw)
	clear(raw)
	return k, nil
}

// keys are the sub-keys the store uses, derived once at Open.
type keys struct {
	aead   cipherAEAD
	dedupe []byte
	check  []byte // stored in each data file to refuse a wrong key
}

type cipherAEAD interface {
	NonceSize() int
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
}

func deriveKeys(k *DataKey) (*keys, error) {
	if k == nil {
		return nil, errors.New("store: no data key")
	}
	sub := func(label string) ([]byte, error) {
		return hkdf.Expand(sha256.New, k.k[:], label, 32)
	}
	sealKey, err := sub(labelSeal)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(sealKey)
	clear(sealKey)
	if err != nil {
		return nil, err
	}
	dedupe, err := sub(labelDedupe)
	if err != nil {
		return nil, err
	}
	checkKey, err := sub(labelCheck)
	if err != nil {
		return nil, err
	}
	m := hmac.New(sha256.New, checkKey)
	m.Write([]byte(labelCheck))
	return &keys{aead: aead, dedupe: dedupe, check: m.Sum(nil)}, nil
}

// dedupeHash is HMAC-SHA256(dedupe sub-key, lp(owner) || lp(type) || lp(value)):
// equal for the same owner, type and value, unlinkable without the key.
func (ks *keys) dedupeHash(owner string, t TokenType, value []byte) []byte {
	m := hmac.New(sha256.New, ks.dedupe)
	for _, f := range [][]byte{[]byte(owner), []byte(t), value} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		m.Write(n[:])
		m.Write(f)
	}
	return m.Sum(nil)
}

// seal encrypts value for token: XChaCha20-Poly1305, random 24-byte nonce,
// AAD = token, so a ciphertext moved to another token fails to open.
func (ks *keys) seal(token string, value []byte) (nonce, ct []byte, err error) {
	nonce = make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	return nonce, ks.aead.Seal(nil, nonce, value, []byte(token)), nil
}

func (ks *keys) open(token string, nonce, ct []byte) ([]byte, error) {
	if len(nonce) != chacha20poly1305.NonceSizeX {
		return nil, ErrCorrupt
	}
	pt, err := ks.aead.Open(nil, nonce, ct, []byte(token))
	if err != nil {
		return nil, ErrCorrupt
	}
	return pt, nil
}
