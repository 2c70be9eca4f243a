package store

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"

	"orderseal/internal/datakey"
)

// DataKey is the vault data key: 32 random bytes from which the sealing and
// dedupe sub-keys are derived. It lives in its own 0600 file, never inside
// the index or data databases. It cannot be compared with ==; it prints
// redacted.
type DataKey = datakey.Key

// Sub-key labels: one label, one purpose (DESIGN.md §2 "Sub-keys").
const (
	labelSeal   = "orderseal-v1-vault-seal"
	labelDedupe = "orderseal-v1-vault-dedupe"
	labelCheck  = "orderseal-v1-vault-keycheck"
)

// CreateDataKey writes a fresh data key to path (0600, O_EXCL: it never
// overwrites) as base64url text and returns it.
func CreateDataKey(path string) (*DataKey, error) {
	k, err := datakey.Create(path)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	return k, nil
}

// LoadDataKey reads a data key file, refusing it when group or others may
// read it (secfile.ErrPermissions) or when it is not exactly 32 bytes of
// base64url (ErrBadDataKey).
func LoadDataKey(path string) (*DataKey, error) {
	k, err := datakey.Load(path)
	if errors.Is(err, datakey.ErrMalformed) {
		return nil, fmt.Errorf("data key: %s: %w", path, ErrBadDataKey)
	}
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	return k, nil
}

// keys are the sub-keys the store uses, derived once at Open.
type keys struct {
	aead   cipherAEAD
	dedupe []byte
}

type cipherAEAD interface {
	NonceSize() int
	Seal(dst, nonce, plaintext, additionalData []byte) []byte
	Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error)
}

var errNoDataKey = errors.New("store: no data key")

func deriveKeys(k *DataKey) (*keys, error) {
	if k == nil {
		return nil, errNoDataKey
	}
	sealKey := k.Expand(labelSeal)
	aead, err := chacha20poly1305.NewX(sealKey)
	clear(sealKey)
	if err != nil {
		return nil, err
	}
	return &keys{aead: aead, dedupe: k.Expand(labelDedupe)}, nil
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
