package carrier

import (
	"fmt"
	"net/url"
	"strings"

	"orderseal/carrier/api"
	"orderseal/internal/signedhttp/httpsig"
	"orderseal/keygen"
)

// Merchants is the carrier's configuration of whom it sends tracking events
// to: each merchant identity's base URL (DESIGN.md §5 Hardening). A booking
// request never chooses where events go: a callback URL taken from a
// request would let any merchant point the carrier at its own loopback.
type Merchants map[string]string

// ParseMerchant reads one -merchant ID=URL setting.
func ParseMerchant(s string) (id, base string, err error) {
	id, base, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", fmt.Errorf("%q: want merchant:NAME=URL", s)
	}
	if base, err = httpsig.Peer(keygen.RoleMerchant, id, base); err != nil {
		return "", "", err
	}
	if u, _ := url.Parse(base); u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("merchant URL %q: no credentials, query or fragment", base)
	}
	return id, base, nil
}

// EventsURL is where events of merchant's order go, if merchant is configured.
func (m Merchants) EventsURL(merchant, orderID string) (string, bool) {
	base, ok := m[merchant]
	if !ok {
		return "", false
	}
	return base + api.EventsPath(orderID), true
}
