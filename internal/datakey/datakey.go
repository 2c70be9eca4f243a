// Package datakey is the 32-byte root key a daemon keeps in its own 0600
// file, outside every database it protects (DESIGN.md §7, §8): the vault's
// data key and the issuer's card key. Purpose keys are derived from it with
// HKDF-Expand under one label per purpose (DESIGN.md §2 "Sub-keys").
package datakey

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"orderseal/internal/secfile"
)

// Size is the length of a key in bytes.
const Size = 32

// ErrMalformed is returned by Load for a file that is not exactly Size bytes
// of unpadded base64url (surrounding white space allowed).
var ErrMalformed = errors.New("key file is not 32 bytes of base64url")

// Key is a root key. It cannot be compared with ==; it prints redacted.
type Key struct {
	_ [0]func() // not comparable
	k [Size]byte
}

// String keeps the key out of logs and %v.
func (*Key) String() string { return "datakey.Key(redacted)" }

// GoString keeps the key out of %#v.
func (*Key) GoString() string { return "datakey.Key(redacted)" }

// Equal compares two keys in constant time.
func (k *Key) Equal(o *Key) bool {
	return k != nil && o != nil && subtle.ConstantTimeCompare(k.k[:], o.k[:]) == 1
}

// Expand returns HKDF-Expand-SHA256(key, label), 32 bytes. Each label must
// name exactly one purpose.
func (k *Key) Expand(label string) []byte {
	out, err := hkdf.Expand(sha256.New, k.k[:], label, Size)
	if err != nil {
		panic("datakey: " + err.Error()) // only for lengths HKDF cannot produce
	}
	return out
}

// Destroy zeroes the key.
func (k *Key) Destroy() { clear(k.k[:]) }

// Create writes a fresh key to path (0600, O_EXCL: it never overwrites) as
// base64url text and returns it.
func Create(path string) (*Key, error) {
	k := new(Key)
	if _, err := rand.Read(k.k[:]); err != nil {
		return nil, err
	}
	text := base64.RawURLEncoding.EncodeToString(k.k[:]) + "\n"
	if err := secfile.WriteNew(path, []byte(text)); err != nil {
		return nil, err
	}
	return k, nil
}

// Load reads a key file, refusing it when group or others may read it
// (secfile.ErrPermissions) or when it is malformed (ErrMalformed).
func Load(path string) (*Key, error) {
	b, err := secfile.Read(path, maxFile)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	return Parse(path, b)
}

// maxFile bounds a key file.
const maxFile = 256

// Parse reads a key from the text of a key file (path names it in errors):
// exactly Size bytes of unpadded base64url, surrounding space allowed.
func Parse(path string, b []byte) (*Key, error) {
	if len(b) > maxFile {
		return nil, fmt.Errorf("%s: %w", path, ErrMalformed)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(raw) != Size {
		clear(raw)
		return nil, fmt.Errorf("%s: %w", path, ErrMalformed)
	}
	k := new(Key)
	copy(k.k[:], raw)
	clear(raw)
	return k, nil
}
