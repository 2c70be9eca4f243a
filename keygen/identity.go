package keygen

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"

	fp "github.com/cloudflare/circl/math/fp25519"
)

// Suite names the algorithms of protocol version 1.
const Suite = "OS1-BLOM25519-HKDFSHA256-XCHACHA20POLY1305"

// MaxNameLen bounds the name part of an identity.
const MaxNameLen = 200

// Identity roles known to orderseal.
var knownRoles = map[string]bool{
	"cardholder": true, "merchant": true, "issuer": true, "carrier": true,
	"vault": true, "consultant": true, "company": true,
}

var (
	// ErrIdentity is wrapped by every identity syntax error.
	ErrIdentity = errors.New("invalid identity")
	// ErrSameIdentity is returned when a party derives a key with itself.
	ErrSameIdentity = errors.New("pairwise key with oneself")
	// ErrZeroPoint is returned for the (negligibly unlikely) identity whose point is 0.
	ErrZeroPoint = errors.New("identity hashes to zero")
)

// ValidateIdentity checks the syntax `role:name` of DESIGN.md §1.
func ValidateIdentity(id string) error {
	role, name, ok := strings.Cut(id, ":")
	if !ok {
		return fmt.Errorf("%w: missing ':' between role and name", ErrIdentity)
	}
	if !knownRoles[role] {
		return fmt.Errorf("%w: unknown role %q", ErrIdentity, truncate(role, 20))
	}
	if len(name) == 0 || len(name) > MaxNameLen {
		return fmt.Errorf("%w: name must be 1–%d characters", ErrIdentity, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == '@', c == '+', c == '-':
		default:
			return fmt.Errorf("%w: name may hold only [a-z0-9._@+-]", ErrIdentity)
		}
	}
	return nil
}

// RoleOf returns the role part of a syntactically valid identity.
func RoleOf(id string) string {
	role, _, _ := strings.Cut(id, ":")
	return role
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

var modulus = func() *big.Int {
	p := new(big.Int).Lsh(big.NewInt(1), 255)
	return p.Sub(p, big.NewInt(19))
}()

// IdentityPoint is x(id): RFC 9380 hash_to_field with expand_message_xmd
// (SHA-256), DST "orderseal-v1-id:" || hex(system), L = 48, read big-endian
// and reduced mod p. Every peer's key derivation starts here, so it is
// written out with fixed buffers (expandXMD48) rather than through a
// general expander and math/big; identities are public, so nothing here
// needs to be constant-time.
func IdentityPoint(system [16]byte, id string) (fp.Elt, error) {
	var x fp.Elt
	if err := ValidateIdentity(id); err != nil {
		return x, err
	}
	u := expandXMD48(&system, id)
	var w wide // the 384-bit big-endian integer, as limbs
	for i := 0; i < 6; i++ {
		w[i] = binary.BigEndian.Uint64(u[40-8*i:])
	}
	r := w.reduce()
	if r == (fe{}) {
		return x, ErrZeroPoint
	}
	return r.elt(), nil
}

// maxIdentityLen bounds a valid identity: the longest role, ':' and a name.
const maxIdentityLen = len("consultant") + 1 + MaxNameLen

// expandXMD48 is expand_message_xmd of RFC 9380 §5.3.1 with SHA-256 for
// msg = id (at most maxIdentityLen bytes), DST = "orderseal-v1-id:" ||
// hex(system) (48 bytes) and len_in_bytes = 48, so ell = 2:
//
//	b_0 = H(Z_pad || msg || I2OSP(48, 2) || I2OSP(0, 1) || DST')
//	b_1 = H(b_0 || I2OSP(1, 1) || DST')
//	b_2 = H((b_0 XOR b_1) || I2OSP(2, 1) || DST')
//
// with DST' = DST || I2OSP(48, 1), and the result b_1 || b_2[:16].
func expandXMD48(system *[16]byte, id string) [48]byte {
	const dstLen = 48
	var dst [dstLen + 1]byte
	copy(dst[:], "orderseal-v1-id:")
	hex.Encode(dst[16:dstLen], system[:])
	dst[dstLen] = dstLen

	var buf [64 + maxIdentityLen + 3 + dstLen + 1]byte // Z_pad is the zeros
	n := 64 + copy(buf[64:], id)
	buf[n], buf[n+1], buf[n+2] = 0, 48, 0
	n += 3
	n += copy(buf[n:], dst[:])
	b0 := sha256.Sum256(buf[:n])

	var blk [32 + 1 + dstLen + 1]byte
	copy(blk[:], b0[:])
	blk[32] = 1
	copy(blk[33:], dst[:])
	b1 := sha256.Sum256(blk[:])
	for i := range b0 {
		blk[i] = b0[i] ^ b1[i]
	}
	blk[32] = 2
	b2 := sha256.Sum256(blk[:])

	var out [48]byte
	copy(out[:], b1[:])
	copy(out[32:], b2[:16])
	return out
}
