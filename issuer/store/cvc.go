package store

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"orderseal/internal/wire"
)

// Card verification code. As a real issuer does with its card verification
// key (CVK), the issuer derives each card's CVC from the card's number and
// expiry under a sub-key of the card key, so the code is printed on the card
// once ("issuer card add") and never stored anywhere:
//
//	cvk = HKDF-Expand-SHA256(card key, "orderseal-v1-issuer-card-cvk"), 32 bytes
//	mac = HMAC-SHA256(cvk, "orderseal-v1-cvc" || lp16(number) || lp16(expiry))
//	CVC = big-endian uint32 of mac[0:4] mod 1000, as 3 digits with leading zeros
//
// number is digits only, expiry "YYYY-MM". The modulo bias (2^32 mod 1000 =
// 296 of 2^32 values) is below 10^-6. Three digits are guessable in a
// thousand tries: the code only adds to the other checks of an assisted order.
const cvcDomain = "orderseal-v1-cvc"

// deriveCVC computes the CVC of number and expiry under cvk.
func deriveCVC(cvk []byte, number, expiry string) string {
	m := hmac.New(sha256.New, cvk)
	msg := wire.LP16([]byte(cvcDomain), []byte(number))
	msg = wire.LP16(msg, []byte(expiry))
	m.Write(msg)
	sum := m.Sum(nil)
	return fmt.Sprintf("%03d", binary.BigEndian.Uint32(sum[:4])%1000)
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
