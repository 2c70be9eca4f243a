package keygen

import (
	"crypto"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"

	"github.com/cloudflare/circl/expander"
	fp "github.com/cloudflare/circl/math/fp25519"
)

// identityPointRef is IdentityPoint as it was first written: circl's RFC
// 9380 expander and math/big. The fixed-buffer version must agree with it.
func identityPointRef(system [16]byte, id string) (fp.Elt, error) {
	var x fp.Elt
	if err := ValidateIdentity(id); err != nil {
		return x, err
	}
	dst := []byte("orderseal-v1-id:" + hex.EncodeToString(system[:]))
	u := expander.NewExpanderMD(crypto.SHA256, dst).Expand([]byte(id), 48)
	n := new(big.Int).SetBytes(u)
	n.Mod(n, bigP)
	if n.Sign() == 0 {
		return x, ErrZeroPoint
	}
	return bigToElt(n), nil
}

func TestIdentityPointMatchesReference(t *testing.T) {
	r := testRand("identity point")
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789._@+-"
	roles := []string{"cardholder", "merchant", "issuer", "carrier", "vault", "consultant", "company"}
	ids := []string{"merchant:a", "consultant:" + strings.Repeat("z", MaxNameLen), "cardholder:" + strings.Repeat("-", MaxNameLen)}
	for i := 0; i < 3000; i++ {
		n := 1 + r.IntN(MaxNameLen)
		if i%3 == 0 {
			n = 1 + r.IntN(12)
		}
		var b strings.Builder
		for j := 0; j < n; j++ {
			b.WriteByte(alphabet[r.IntN(len(alphabet))])
		}
		ids = append(ids, roles[r.IntN(len(roles))]+":"+b.String())
	}
	for i, id := range ids {
		var sys [16]byte
		if i%2 == 1 {
			for j := range sys {
				sys[j] = byte(r.Uint32())
			}
		}
		got, err := IdentityPoint(sys, id)
		want, wantErr := identityPointRef(sys, id)
		if got != want || (err == nil) != (wantErr == nil) {
			t.Fatalf("IdentityPoint(%x, %q) = %x, %v; reference %x, %v", sys, id, got, err, want, wantErr)
		}
	}
	for _, bad := range []string{"", "merchant", "merchant:", "nobody:x", "merchant:UPPER", "merchant:" + strings.Repeat("a", MaxNameLen+1)} {
		if _, err := IdentityPoint([16]byte{}, bad); err == nil {
			t.Errorf("IdentityPoint(%q) accepted", bad)
		}
	}
}
