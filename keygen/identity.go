package keygen

import (
	"crypto"
	_ "crypto/sha256" // registers SHA-256 for the RFC 9380 expander
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudflare/circl/expander"
	fp "github.com/cloudflare/circl/math/fp25519"

	"slices"

	"orderseal/internal/wire"
)

// SuiteOS1 is the name of suite OS1 (package suite/os1), the suite a key
// center issues for unless told otherwise.
const SuiteOS1 = "OS1-BLOM25519-HKDFSHA256-XCHACHA20POLY1305"

// MaxSuiteLen bounds a suite name.
const MaxSuiteLen = 96

// ValidSuiteName checks a suite name's syntax: words of upper-case letters
// and digits joined by '-' or '+' (as in DESIGN.md §2.1's OS2 name). Which
// names a program accepts is the suite registry's business (package suite).
func ValidSuiteName(s string) bool {
	if s == "" || len(s) > MaxSuiteLen {
		return false
	}
	prevSep := true // a name may not start with a separator
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			prevSep = false
		case (c == '-' || c == '+') && !prevSep:
			prevSep = true
		default:
			return false
		}
	}
	return !prevSep
}

// MaxNameLen bounds the name part of an identity.
const MaxNameLen = 200

// Role is the role part of an identity (DESIGN.md §1): what a party is.
type Role string

// The roles of orderseal's parties.
const (
	RoleCardholder Role = "cardholder"
	RoleMerchant   Role = "merchant"
	RoleIssuer     Role = "issuer"
	RoleCarrier    Role = "carrier"
	RoleVault      Role = "vault"
	RoleConsultant Role = "consultant" // a merchant's phone-order agent (DESIGN.md §6.7)
	RoleCompany    Role = "company"    // the company a consultant works for
)

// IdentityRoles lists every role an identity can have.
var IdentityRoles = []Role{RoleCardholder, RoleMerchant, RoleIssuer, RoleCarrier, RoleVault, RoleConsultant, RoleCompany}

// Of is the identity role:name of this role.
func (r Role) Of(name string) string { return string(r) + ":" + name }

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
	if !slices.Contains(IdentityRoles, Role(role)) {
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
func RoleOf(id string) Role {
	role, _, _ := strings.Cut(id, ":")
	return Role(role)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// twoTo256 is 2^256 mod p = 38.
var twoTo256 = fp.Elt{38}

// IdentityPoint is x(id): RFC 9380 hash_to_field with expand_message_xmd
// (SHA-256), DST "orderseal-v1-id:" || hex(system), L = 48, read big-endian
// and reduced mod p. The 48 bytes are hi·2^256 + lo, reduced with circl's
// field arithmetic as hi·38 + lo.
func IdentityPoint(system [16]byte, id string) (fp.Elt, error) {
	if err := ValidateIdentity(id); err != nil {
		return fp.Elt{}, err
	}
	return hashToField("orderseal-v1-id:"+hex.EncodeToString(system[:]), []byte(id))
}

// IdentityPointIn is x(id) in epoch under an epoch suite (DESIGN.md §2.1):
// as IdentityPoint, with DST "orderseal-v2-id:" || hex(system) and message
// lp16(id) || lp16(epoch), so each epoch has its own points.
func IdentityPointIn(system [16]byte, id, epoch string) (fp.Elt, error) {
	if err := ValidateIdentity(id); err != nil {
		return fp.Elt{}, err
	}
	if epoch == "" {
		return fp.Elt{}, fmt.Errorf("%w: empty", ErrEpoch)
	}
	msg := wire.LP16(wire.LP16(nil, []byte(id)), []byte(epoch))
	return hashToField("orderseal-v2-id:"+hex.EncodeToString(system[:]), msg)
}

// hashToField is RFC 9380 hash_to_field into GF(2^255−19) with
// expand_message_xmd(SHA-256), L = 48; 0 is refused.
func hashToField(dst string, msg []byte) (fp.Elt, error) {
	var x fp.Elt
	u := expander.NewExpanderMD(crypto.SHA256, []byte(dst)).Expand(msg, 48)
	var hi, lo fp.Elt
	for i := range 16 {
		hi[i] = u[15-i]
	}
	for i := range 32 {
		lo[i] = u[47-i]
	}
	fp.Mul(&x, &hi, &twoTo256)
	fp.Add(&x, &x, &lo)
	fp.Modp(&x)
	if x == (fp.Elt{}) {
		return x, ErrZeroPoint
	}
	return x, nil
}
