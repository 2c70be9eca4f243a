package api

// Problem codes added to the contract by the issuer daemon (besides those in
// api.go and the shared ones of package problem and signedhttp).
const (
	CodeWrongMerchant = "wrong-merchant"     // 403: the bundle was sealed for another merchant
	CodeUnavailable   = "issuer-unavailable" // 503: the card store cannot answer now; retry with the same bundle
)
