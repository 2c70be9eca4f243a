package merchant

import (
	"net/http"
	"testing"

	"orderseal/internal/outbox"
	"orderseal/internal/problem/rfc9457"
)

// TestRelayReplayedNonceIsRetryable is issue 16 item 2: a peer's signed 401
// replayed-nonce must not dead-letter the job; the next attempt carries a
// fresh nonce. A 429 is retried too; a forbidden role stays permanent.
func TestRelayReplayedNonceIsRetryable(t *testing.T) {
	for _, tc := range []struct {
		status    int
		code      string
		permanent bool
	}{
		{http.StatusUnauthorized, "replayed-nonce", false},
		{http.StatusTooManyRequests, "nonce-quota", false},
		{http.StatusTooManyRequests, "caller-busy", false},
		{http.StatusForbidden, "forbidden-role", true},
	} {
		err := classify(rfc9457.New(tc.status, tc.code, "t", "d"))
		if outbox.IsPermanent(err) != tc.permanent {
			t.Errorf("%d %s: permanent %v, want %v", tc.status, tc.code, outbox.IsPermanent(err), tc.permanent)
		}
	}
}
