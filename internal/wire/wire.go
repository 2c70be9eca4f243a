// Package wire holds the length-prefixed encodings of DESIGN.md §4.1 and the
// strict base64url used for every binary value on the wire.
package wire

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
)

// ErrBase64 is returned for base64url that is padded, has stray bits or bad characters.
var ErrBase64 = errors.New("non-canonical base64url")

var b64 = base64.RawURLEncoding.Strict()

// LP16 appends the 2-byte big-endian length of b, then b.
// It panics when b is longer than 65535 bytes: callers bound their inputs.
func LP16(dst, b []byte) []byte {
	if len(b) > 0xffff {
		panic("wire: LP16 value longer than 65535 bytes")
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(b)))
	return append(dst, b...)
}

// LP32 appends the 4-byte big-endian length of b, then b.
func LP32(dst, b []byte) []byte {
	if uint64(len(b)) > 0xffffffff {
		panic("wire: LP32 value too long")
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

// B64 encodes b as unpadded base64url.
func B64(b []byte) string { return b64.EncodeToString(b) }

// UnB64 decodes unpadded base64url, refusing padding, non-zero trailing bits
// and characters outside the URL alphabet — line breaks included, which
// encoding/base64 would otherwise skip, so one byte string has one text form.
func UnB64(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, ErrBase64
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, ErrBase64
	}
	return b, nil
}

// UnB64Len decodes s and requires exactly n bytes.
func UnB64Len(s string, n int) ([]byte, error) {
	if len(s) != base64.RawURLEncoding.EncodedLen(n) {
		return nil, ErrBase64
	}
	b, err := UnB64(s)
	if err != nil || len(b) != n {
		return nil, ErrBase64
	}
	return b, nil
}
