package order

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"orderseal/internal/wire"
	"orderseal/keygen"
)

// ErrApproval is returned when an issuer's approval for the vault does not
// verify: it is missing, malformed, or MACed over another order.
var ErrApproval = errors.New("issuer approval for the vault does not verify")

// approvalPrefix versions the approval token's text form.
const approvalPrefix = "va1."

// approvalMAC is HMAC-SHA256 under HKDF-Expand(K(issuer, vault),
// "orderseal-v1-vault-approval" || lp16(order id)) over lp16 of the issuer,
// the merchant, the vault and the order id, then the header hash and the
// decision "approved". Only the issuer and the vault hold K(issuer, vault),
// so the merchant that relays it can neither forge nor re-aim one.
func approvalMAC(k *keygen.Pairwise, issuer, merchant, vault, orderID string, hH [32]byte) []byte {
	sk := k.Expand(keygen.LabelVaultApproval, orderID)
	defer clear(sk[:])
	m := hmac.New(sha256.New, sk[:])
	msg := wire.LP16(nil, []byte(keygen.LabelVaultApproval))
	for _, f := range []string{issuer, merchant, vault, orderID} {
		msg = wire.LP16(msg, []byte(f))
	}
	msg = append(msg, hH[:]...)
	msg = append(msg, "approved"...)
	m.Write(msg)
	return m.Sum(nil)
}

// VaultApproval is the issuer's approval of b for the vault the bundle
// names (DESIGN.md §7): the merchant relays it with the vault section, and
// the vault activates the order's grant only when it verifies. keys is the
// issuer's; b must name it, a merchant and a vault.
func VaultApproval(keys Keyring, b *Bundle) (string, error) {
	issuer, merchant, vault := b.Parties[RoleIssuer], b.Parties[RoleMerchant], b.Parties[RoleVault]
	if issuer != keys.Identity() || merchant == "" || vault == "" {
		return "", fmt.Errorf("%w: the bundle names no vault, or another issuer", ErrApproval)
	}
	k, err := keys.Pairwise(vault)
	if err != nil {
		return "", err
	}
	return approvalPrefix + wire.B64(approvalMAC(&k, issuer, merchant, vault, b.OrderID, b.HeaderHash())), nil
}

// VerifyVaultApproval is the vault's check of an approval token for b,
// relayed by merchant; keys is the vault's. It fails with ErrApproval.
func VerifyVaultApproval(keys Keyring, b *Bundle, merchant, token string) error {
	issuer, vault := b.Parties[RoleIssuer], b.Parties[RoleVault]
	if vault != keys.Identity() || issuer == "" || merchant != b.Parties[RoleMerchant] {
		return fmt.Errorf("%w: the bundle names another vault or merchant", ErrApproval)
	}
	raw, ok := strings.CutPrefix(token, approvalPrefix)
	if !ok {
		return fmt.Errorf("%w: not a version 1 approval", ErrApproval)
	}
	got, err := wire.UnB64Len(raw, sha256.Size)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrApproval, err)
	}
	k, err := keys.Pairwise(issuer)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrApproval, err)
	}
	if !hmac.Equal(got, approvalMAC(&k, issuer, merchant, vault, b.OrderID, b.HeaderHash())) {
		return ErrApproval
	}
	return nil
}
