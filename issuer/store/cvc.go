package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"orderseal/internal/wire"
	"orderseal/order/cards"
)

// Card verification code. As a real issuer does with its card verification
// key (CVK), the issuer derives each card's CVC from the card's number and
// expiry under a sub-key of the card key, so the code is printed on the card
// once ("issuer card add") and never stored anywhere:
//
//	cvk = HKDF-Expand-SHA256(card key, "orderseal-v1-issuer-card-cvk"), 32 bytes
//	mac = HMAC-SHA256(cvk, domain || lp16(number) || lp16(expiry))
//	CVC = big-endian uint32 of mac[0:4] mod 10^n, as n digits with leading zeros
//
// n is the code length of the card's brand (package order/cards): 3, with
// domain "orderseal-v1-cvc"; 4 for American Express (its CID), with domain
// "orderseal-v1-cvc4", so a 4-digit code is never the 3-digit one with a
// digit added. A number of no known brand (enrolled before the brand table)
// gets 3 digits. number is digits only, expiry "YYYY-MM". The modulo bias
// (2^32 mod 10^n of 2^32 values) is below 2·10^-6. Three digits are guessed
// in a thousand tries: the code adds to the other checks, and assisted
// orders lock a card after MaxCVCFailures.
const (
	cvcDomain  = "orderseal-v1-cvc"
	cvc4Domain = "orderseal-v1-cvc4"
)

// cvcLen is the length of the code printed on a card with this number.
func cvcLen(number string) int {
	if b, err := cards.Lookup(number); err == nil {
		return b.CVCLen
	}
	return 3
}

// deriveCVC computes the CVC of number and expiry under cvk.
func deriveCVC(cvk []byte, number, expiry string) string {
	domain, mod, format := cvcDomain, uint32(1000), "%03d"
	if cvcLen(number) == 4 {
		domain, mod, format = cvc4Domain, 10000, "%04d"
	}
	m := hmac.New(sha256.New, cvk)
	msg := wire.LP16([]byte(domain), []byte(number))
	msg = wire.LP16(msg, []byte(expiry))
	m.Write(msg)
	sum := m.Sum(nil)
	return fmt.Sprintf(format, binary.BigEndian.Uint32(sum[:4])%mod)
}

// CVC returns the verification code of the card with this number (digits
// only, as ParseNumber returns it) and expiry (YYYY-MM), for printing on the
// card. ks nil (a store opened without the card key) is ErrNoCardKey; no
// store keeps a copy. Backends' CVC methods answer with it.
func CVC(ks *SubKeys, number, expiry string) (string, error) {
	if ks == nil {
		return "", ErrNoCardKey
	}
	if n, err := ParseNumber(number); err != nil || n != number {
		return "", fmt.Errorf("%w: card number must be 12 to 19 digits passing the Luhn check", ErrInvalid)
	}
	if _, _, err := ParseExpiry(expiry); err != nil {
		return "", err
	}
	return deriveCVC(ks.cvk, number, expiry), nil
}
