package store

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
)

// TokenType says what kind of value a token stands for; it is the token's
// suffix, so a party can tell an address token from a phone token without
// asking the vault.
type TokenType string

// Token types.
const (
	TypeAddress    TokenType = "adr"
	TypePhone      TokenType = "phn"
	TypeNationalID TokenType = "nid"
	TypeEmail      TokenType = "eml"
)

// Valid reports whether t is one of the known token types.
func (t TokenType) Valid() bool {
	switch t {
	case TypeAddress, TypePhone, TypeNationalID, TypeEmail:
		return true
	}
	return false
}

const (
	tokenPrefix  = "tok_"
	tokenRandLen = 16 // bytes of randomness
	tokenBodyLen = 26 // base32 characters for 16 bytes, unpadded
	// TokenLen is the length of every token.
	TokenLen = len(tokenPrefix) + tokenBodyLen + 1 + 3
)

// tokenEncoding is lowercase base32 without padding.
var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewToken returns a fresh token of type t: "tok_" + 26 base32 characters of
// 16 random bytes + "_" + t. Tokens are random, never derived from the value
// they stand for, and never reused.
func NewToken(t TokenType) (string, error) {
	if !t.Valid() {
		return "", fmt.Errorf("%w: %q", ErrTokenType, t)
	}
	var b [tokenRandLen]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return tokenPrefix + tokenEncoding.EncodeToString(b[:]) + "_" + string(t), nil
}

// ParseTokenType checks tok's syntax and returns the type named by its suffix.
func ParseTokenType(tok string) (TokenType, error) {
	if len(tok) != TokenLen || !strings.HasPrefix(tok, tokenPrefix) || tok[len(tokenPrefix)+tokenBodyLen] != '_' {
		return "", fmt.Errorf("%w: malformed", ErrBadToken)
	}
	body := tok[len(tokenPrefix) : len(tokenPrefix)+tokenBodyLen]
	// Re-encoding rejects a non-canonical last character: one token, one spelling.
	if b, err := tokenEncoding.DecodeString(body); err != nil || len(b) != tokenRandLen || tokenEncoding.EncodeToString(b) != body {
		return "", fmt.Errorf("%w: malformed", ErrBadToken)
	}
	t := TokenType(tok[len(tok)-3:])
	if !t.Valid() {
		return "", fmt.Errorf("%w: unknown type %q", ErrBadToken, string(t))
	}
	return t, nil
}
