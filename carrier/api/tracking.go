package api

// This file adds to the fixed wire contract in api.go: the tracking number
// format both sides can check, and the problem codes of refusals api.go
// does not name.

import (
	"errors"
	"fmt"
)

// More problem codes the carrier refuses a booking with.
const (
	CodeWrongMerchant  = "wrong-merchant"  // 403: the bundle names another merchant than the caller
	CodeAddressInvalid = "address-invalid" // 422: the inline address is not a postal address
	CodeEventsURL      = "events-url"      // 422: events_url is not an absolute http(s) URL

	// CodeEventsURLMismatch: 422, the request names an events URL other
	// than the one configured for the merchant (tracking events go only there).
	CodeEventsURLMismatch = "events-url-mismatch"
	// CodeMerchantNotConfigured: 403, the carrier has no events URL for
	// the calling merchant, so it books nothing for it.
	CodeMerchantNotConfigured = "merchant-not-configured"
	// CodePolicyMismatch: 422, the header names a policy this carrier
	// knows by its id, with another hash.
	CodePolicyMismatch = "policy-mismatch"
	// CodePolicyRequirement: 422, the carrier section lacks a field the
	// header's policy requires (a KR recipient's phone).
	CodePolicyRequirement = "policy-requirement"
	// CodeParcelInvalid: 422, the parcel declaration's sender is no postal address.
	CodeParcelInvalid = "parcel-invalid"
)

// Tracking numbers are UPU S10 identifiers (UPU standard S10): a two-letter
// service indicator, an eight-digit serial, a check digit over the serial
// and the ISO 3166-1 alpha-2 country of the issuing carrier.
const (
	TrackingService = "OS" // the service indicator of every orderseal shipment
	TrackingLen     = 13
)

// ErrTracking is returned for a string that is not an S10 tracking number.
var ErrTracking = errors.New("not an S10 tracking number")

var s10Weights = [8]int{8, 6, 4, 2, 3, 5, 9, 7}

// S10CheckDigit is the check digit of an eight-digit serial: 11 minus the
// weighted sum (weights 8 6 4 2 3 5 9 7) mod 11, where 10 becomes 0 and 11
// becomes 5.
func S10CheckDigit(serial string) (byte, error) {
	if len(serial) != 8 {
		return 0, fmt.Errorf("%w: serial must be 8 digits", ErrTracking)
	}
	sum := 0
	for i := range 8 {
		c := serial[i]
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: serial must be 8 digits", ErrTracking)
		}
		sum += int(c-'0') * s10Weights[i]
	}
	switch d := 11 - sum%11; d {
	case 10:
		return '0', nil
	case 11:
		return '5', nil
	default:
		return byte('0' + d), nil
	}
}

// FormatTracking builds the tracking number of serial (8 digits) for the
// service indicator and country (two upper-case letters each).
func FormatTracking(service, serial, country string) (string, error) {
	if !upper2(service) || !upper2(country) {
		return "", fmt.Errorf("%w: service and country must be two upper-case letters", ErrTracking)
	}
	d, err := S10CheckDigit(serial)
	if err != nil {
		return "", err
	}
	return service + serial + string(d) + country, nil
}

// ValidateTracking checks the S10 form and the check digit of s.
func ValidateTracking(s string) error {
	if len(s) != TrackingLen {
		return fmt.Errorf("%w: want %d characters", ErrTracking, TrackingLen)
	}
	if !upper2(s[:2]) || !upper2(s[11:]) {
		return fmt.Errorf("%w: want two letters, nine digits, two letters", ErrTracking)
	}
	d, err := S10CheckDigit(s[2:10])
	if err != nil {
		return err
	}
	if s[10] != d {
		return fmt.Errorf("%w: check digit does not match", ErrTracking)
	}
	return nil
}

func upper2(s string) bool {
	return len(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z'
}
