// Package rfc9457 is the problem document of RFC 9457 as orderseal uses it,
// without any web framework: clients that must stay free of echo (the
// cardholder CLI, see tstest/deptest) decode refusals with it. Servers
// write problems through package problem, whose Problem is this type.
package rfc9457

import (
	"encoding/json"
	"errors"
	"fmt"
)

// ContentType is the media type of a problem document.
const ContentType = "application/problem+json"

// TypeBase prefixes every problem type URI: TypeBase + code.
const TypeBase = "https://orderseal.dev/problems/"

// MaxCodeLen bounds a problem code.
const MaxCodeLen = 64

// ErrMalformed is returned by Decode for a body that is not an orderseal problem.
var ErrMalformed = errors.New("malformed problem document")

// Problem is an RFC 9457 problem. Title and Detail are shown to the caller
// and must never carry secrets or request bytes; the internal cause, if any,
// is kept apart (WithInternal) and only ever logged.
type Problem struct {
	Type     string `json:"type"`             // TypeBase + Code
	Title    string `json:"title"`            // short, user-safe, fixed per code
	Status   int    `json:"status"`           // HTTP status code
	Detail   string `json:"detail,omitempty"` // user-safe explanation of this occurrence
	Code     string `json:"code"`             // stable machine code, e.g. "replayed-nonce"
	Instance string `json:"instance,omitempty"`

	internal error
}

// New returns a problem. A malformed code (not lowercase letters, digits and
// hyphens) is a programming error and panics.
func New(status int, code, title, detail string) *Problem {
	if !ValidCode(code) {
		panic(fmt.Sprintf("rfc9457: malformed problem code %q", code))
	}
	return &Problem{Type: TypeBase + code, Title: title, Status: status, Detail: detail, Code: code}
}

// ValidCode reports whether code is 1–MaxCodeLen of [a-z0-9-].
func ValidCode(code string) bool {
	if code == "" || len(code) > MaxCodeLen {
		return false
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Error is the user-safe text: code, status and detail (or title).
func (p *Problem) Error() string {
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	return fmt.Sprintf("%s (%d): %s", p.Code, p.Status, msg)
}

// WithInternal returns a copy of p carrying err as its internal cause: logged
// by the server, reachable with errors.Is/As, never written to the wire.
func (p *Problem) WithInternal(err error) *Problem {
	q := *p
	q.internal = err
	return &q
}

// Internal is the cause given to WithInternal, or nil.
func (p *Problem) Internal() error { return p.internal }

// Unwrap exposes the internal cause to errors.Is and errors.As.
func (p *Problem) Unwrap() error { return p.internal }

// Decode parses a problem document received from a peer. It requires a
// well-formed code; the HTTP status of the response is authoritative over
// the status member, so callers usually overwrite Status.
func Decode(body []byte) (*Problem, error) {
	var p Problem
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !ValidCode(p.Code) {
		return nil, fmt.Errorf("%w: missing or malformed code", ErrMalformed)
	}
	return &p, nil
}
