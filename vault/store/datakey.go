package store

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

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
	labelShare  = "orderseal-v1-vault-share"       // the id of a shared value
	labelShareN = "orderseal-v1-vault-share-nonce" // its nonce, derived from the id
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
	share  []byte
	shareN []byte
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
	return &keys{aead: aead, dedupe: k.Expand(labelDedupe), share: k.Expand(labelShare), shareN: k.Expand(labelShareN)}, nil
}

// Shared values (seeds 001/002: one address, many owners). A value is held
// once, in a record keyed by its share id, whoever registered it; each
// owner's token record holds only a reference to that id, sealed under the
// token (random nonce), so neither a token, an index entry nor a token
// record shows which tokens share a value. The share id is
// HMAC-SHA256(share sub-key, lp(type) || lp(value)) and the shared record's
// nonce is derived from the id, so the same value always makes the same
// record, byte for byte: writing it again is a no-op, in any data store or
// the pending table, whoever writes it.
const (
	sharePrefix = "shr_"
	refMagic    = "\x00orderseal-v1-vault-ref\x00" // no normalised value starts with NUL
)

// isShareID reports whether key names a shared value's record, not a token's.
func isShareID(key string) bool { return strings.HasPrefix(key, sharePrefix) }

func (ks *keys) shareID(t TokenType, value []byte) string {
	m := hmac.New(sha256.New, ks.share)
	for _, f := range [][]byte{[]byte(t), value} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(f)))
		m.Write(n[:])
		m.Write(f)
	}
	return sharePrefix + tokenEncoding.EncodeToString(m.Sum(nil))
}

// sealShared is the record of a shared value: deterministic, AAD = its id.
func (ks *keys) sealShared(id string, value []byte, created int64) Record {
	m := hmac.New(sha256.New, ks.shareN)
	m.Write([]byte(id))
	sum := m.Sum(nil)
	nonce := sum[:chacha20poly1305.NonceSizeX]
	return Record{Token: id, Dedupe: sum, Nonce: nonce, Sealed: ks.aead.Seal(nil, nonce, value, []byte(id)), Created: created}
}

// ref returns the shared id a token record's plaintext points to.
func ref(pt []byte) (string, bool) {
	id, ok := strings.CutPrefix(string(pt), refMagic)
	return id, ok && isShareID(id)
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
