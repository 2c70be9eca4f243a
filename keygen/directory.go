package keygen

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"orderseal/internal/strictjson"
	"orderseal/internal/wire"
)

// DirectoryLabel opens the bytes the key center signs for a directory entry.
const DirectoryLabel = "orderseal-v2-directory"

// Sizes of a directory entry's parts under suite OS2.
const (
	KEMPublicKeySize   = 1216 // an X-Wing public key
	DirectorySignature = 3309 // an ML-DSA-65 signature
)

// ErrDirectory is wrapped by every malformed directory entry.
var ErrDirectory = errors.New("invalid directory entry")

// maxEntry bounds an entry's JSON: the key and signature in base64 and room.
const maxEntry = 8192

// DirectoryEntry is the key center's certificate of a receiving party's KEM
// public key for one epoch (DESIGN.md §2.1 "Directory"): who, which epoch,
// which key, until when, signed with the center's directory key (ML-DSA-65,
// in the params). The suite checks the signature (suite.KEM.VerifyEntry).
type DirectoryEntry struct {
	Identity  string
	Epoch     string
	PublicKey []byte
	NotAfter  time.Time // whole seconds, UTC
	Signature []byte
}

type entryWire struct {
	V         int    `json:"v"`
	Identity  string `json:"identity"`
	Epoch     string `json:"epoch"`
	PublicKey string `json:"public_key"`
	NotAfter  string `json:"not_after"`
	Signature string `json:"signature"`
}

// SignedBytes are what the key center signs: DirectoryLabel || lp16(identity)
// || lp16(epoch) || lp16(public key) || lp16(not_after as RFC 3339, UTC).
func (e *DirectoryEntry) SignedBytes() []byte {
	out := append([]byte(nil), DirectoryLabel...)
	out = wire.LP16(out, []byte(e.Identity))
	out = wire.LP16(out, []byte(e.Epoch))
	out = wire.LP16(out, e.PublicKey)
	return wire.LP16(out, []byte(e.NotAfter.UTC().Format(time.RFC3339)))
}

// MarshalJSON writes the entry's wire form.
func (e *DirectoryEntry) MarshalJSON() ([]byte, error) {
	return json.Marshal(entryWire{V: 1, Identity: e.Identity, Epoch: e.Epoch, PublicKey: wire.B64(e.PublicKey),
		NotAfter: e.NotAfter.UTC().Format(time.RFC3339), Signature: wire.B64(e.Signature)})
}

// UnmarshalJSON reads an entry strictly (syntax and sizes; not the signature).
func (e *DirectoryEntry) UnmarshalJSON(data []byte) error {
	var w entryWire
	if err := strictjson.Decode(data, &w, maxEntry); err != nil {
		return fmt.Errorf("%w: %w", ErrDirectory, err)
	}
	if w.V != 1 {
		return fmt.Errorf("%w: v=%d", ErrDirectory, w.V)
	}
	if err := ValidateIdentity(w.Identity); err != nil {
		return fmt.Errorf("%w: %w", ErrDirectory, err)
	}
	if !ValidEpochName(w.Epoch) {
		return fmt.Errorf("%w: epoch %.16q", ErrDirectory, w.Epoch)
	}
	pk, err := wire.UnB64Len(w.PublicKey, KEMPublicKeySize)
	if err != nil {
		return fmt.Errorf("%w: public_key: %w", ErrDirectory, err)
	}
	sig, err := wire.UnB64Len(w.Signature, DirectorySignature)
	if err != nil {
		return fmt.Errorf("%w: signature: %w", ErrDirectory, err)
	}
	na, err := time.Parse(time.RFC3339, w.NotAfter)
	if err != nil || na.UTC().Format(time.RFC3339) != w.NotAfter {
		return fmt.Errorf("%w: not_after must be RFC 3339 in UTC, whole seconds", ErrDirectory)
	}
	*e = DirectoryEntry{Identity: w.Identity, Epoch: w.Epoch, PublicKey: pk, NotAfter: na, Signature: sig}
	return nil
}

// ValidEpochName checks an epoch name's syntax whatever the period: 1–16
// characters of digits and '-'. Its form for a period is Epochs.Span's check.
func ValidEpochName(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}
