package store

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"

	"golang.org/x/crypto/chacha20poly1305"
)

// Sub-key labels: one label, one purpose (DESIGN.md §2 "Sub-keys").
const (
	labelSeal   = "orderseal-v1-issuer-card-seal"
	labelLookup = "orderseal-v1-issuer-card-lookup"
	labelCheck  = "orderseal-v1-issuer-card-keycheck"
	labelCVK    = "orderseal-v1-issuer-card-cvk" // derives CVCs (cvc.go)
)

// SubKeys are the sub-keys of a card key, derived once when a store opens.
// Every backend seals, hashes and checks card numbers with them, so none
// holds a number or a key of its own.
type SubKeys struct {
	aead   cipher.AEAD
	lookup []byte
	check  []byte
	cvk    []byte // card verification key: derives each card's CVC (cvc.go)
}

// SealedNumber is a card number as a backend stores it.
type SealedNumber struct {
	Lookup     []byte // HMAC-SHA256(lookup sub-key, number): the unique lookup column
	Nonce      []byte // 24 random bytes
	Ciphertext []byte // XChaCha20-Poly1305(number), AAD = card id
}

// DeriveSubKeys derives the sub-keys of k.
func DeriveSubKeys(k *CardKey) (*SubKeys, error) {
	sealKey := k.Expand(labelSeal)
	defer clear(sealKey)
	aead, err := chacha20poly1305.NewX(sealKey)
	if err != nil {
		return nil, err
	}
	checkKey := k.Expand(labelCheck)
	defer clear(checkKey)
	m := hmac.New(sha256.New, checkKey)
	m.Write([]byte(labelCheck))
	return &SubKeys{aead: aead, lookup: k.Expand(labelLookup), check: m.Sum(nil), cvk: k.Expand(labelCVK)}, nil
}

// KeyCheck is the value a backend stores once, so that a store opened under
// another card key is refused (CheckKey).
func (ks *SubKeys) KeyCheck() []byte { return ks.check }

// CheckKey compares a stored key check with this key's, in constant time:
// ErrWrongKey when the store was written under another card key.
func (ks *SubKeys) CheckKey(stored []byte) error {
	if !hmac.Equal(stored, ks.check) {
		return ErrWrongKey
	}
	return nil
}

// Lookup is HMAC-SHA256(lookup sub-key, number), or nil when number is not
// a card number as ParseNumber returns it (then no card can match it).
func (ks *SubKeys) Lookup(number string) []byte {
	if n, err := ParseNumber(number); err != nil || n != number {
		return nil
	}
	return ks.lookupHash(number)
}

func (ks *SubKeys) lookupHash(number string) []byte {
	m := hmac.New(sha256.New, ks.lookup)
	m.Write([]byte(number))
	return m.Sum(nil)
}

// Seal seals number for the card cardID, with its lookup hash.
func (ks *SubKeys) Seal(cardID, number string) (SealedNumber, error) {
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := rand.Read(nonce); err != nil {
		return SealedNumber{}, err
	}
	return SealedNumber{Lookup: ks.lookupHash(number), Nonce: nonce,
		Ciphertext: ks.aead.Seal(nil, nonce, []byte(number), []byte(cardID))}, nil
}

// Matches opens the sealed number of cardID and compares it with number in
// constant time: a defence against a lookup-hash row pasted onto another
// card. ErrCorrupt when the sealed number does not open.
func (ks *SubKeys) Matches(cardID string, sn SealedNumber, number string) (bool, error) {
	if len(sn.Nonce) != chacha20poly1305.NonceSizeX {
		return false, ErrCorrupt
	}
	pt, err := ks.aead.Open(nil, sn.Nonce, sn.Ciphertext, []byte(cardID))
	if err != nil {
		return false, ErrCorrupt
	}
	defer clear(pt)
	return subtle.ConstantTimeCompare(pt, []byte(number)) == 1, nil
}
