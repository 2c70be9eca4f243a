package api

// Problem codes added to the contract by the issuer daemon (besides those in
// api.go and the shared ones of package problem and signedhttp).
const (
	CodeWrongMerchant = "wrong-merchant"     // 403: the bundle was sealed for another merchant
	CodeUnavailable   = "issuer-unavailable" // 503: the card store cannot answer now; retry with the same bundle

	// The lifecycle after approval (DESIGN.md §6.8): each refusal changes nothing.
	CodeCaptureAfterVoid       = "capture-after-void"            // 409: the authorization was voided
	CodeCaptureExceeds         = "capture-exceeds-authorization" // 422: more than the hold's uncaptured rest
	CodeAuthorizationExpired   = "authorization-expired"         // 409: the hold period passed; the hold was released
	CodeAuthorizationCompleted = "authorization-completed"       // 409: the remainder was released (the order completed)
	CodeRefundExceedsCaptured  = "refund-exceeds-captured"       // 422: more than captured and not yet refunded
	CodeVoidAfterCapture       = "void-after-capture"            // 409: part was captured: refund it instead
	CodeNotApproved            = "authorization-declined"        // 409: a decline holds nothing to capture or release
	CodeIdempotencyKeyReused   = "idempotency-key-reused"        // 409: the key names another operation
	CodeCurrencyMismatch       = "currency-mismatch"             // 422: the operation's currency is not the authorization's
	CodeInvalidOperation       = "invalid-operation"             // 422: malformed key or amount
)
