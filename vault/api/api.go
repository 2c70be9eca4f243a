// Package api is the token vault's wire contract (DESIGN.md §7): request and
// response bodies, and how PII is sealed between a party and the vault with
// their pairwise key. It imports no server code, so the cardholder CLI and
// other daemons use it as the vault's client side.
package api

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"golang.org/x/crypto/chacha20poly1305"

	"orderseal/internal/strictjson"
	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/order"
	"orderseal/order/address"
)

// Routes of the vault.
const (
	PathTokens = "/v1/tokens"        // POST register (cardholder), GET list own
	PathToken  = "/v1/tokens/"       // GET + token: reveal own (storable)
	PathGrants = "/v1/grants"        // POST: merchant presents a vault section
	PathReveal = "/v1/reveal"        // POST: grantee reveal (display only)
	PathRevoke = "/v1/grants/revoke" // POST: merchant revokes an order's grants
)

// Grant states, as GrantResponse names them.
const (
	GrantPending = "pending"
	GrantActive  = "active"
	GrantRevoked = "revoked"
)

// Problem codes of the grant life (DESIGN.md §7), besides the older ones.
const (
	CodeGrantPending    = "grant-pending"       // 403: the issuer's approval has not been presented
	CodeGrantRevoked    = "grant-revoked"       // 403/409: the order was declined, failed or cancelled
	CodeApprovalInvalid = "approval-invalid"    // 403: the issuer's approval does not verify for this bundle
	CodeDepositOrder    = "deposit-order"       // 400: a carrier's deposit names no order
	CodeDepositGrant    = "deposit-needs-grant" // 403: a carrier reveals its deposits only under the order's grant
)

// Limits.
const (
	MaxValueSize = 4 << 10   // bytes of one PII value
	MaxBody      = 300 << 10 // a grant request carries a bundle
	MaxLabel     = 64
)

// Token types, read from the token's suffix.
const (
	TypeAddress    = "adr"
	TypePhone      = "phn"
	TypeNationalID = "nid"
	TypeEmail      = "eml"
)

// ErrSeal is returned when a sealed value does not open.
var ErrSeal = errors.New("sealed value does not authenticate")

// ErrValue is wrapped by PII values that fail validation.
var ErrValue = errors.New("invalid value")

// Sealed is an XChaCha20-Poly1305 box.
type Sealed struct {
	Nonce string `json:"nonce" validate:"required"`
	CT    string `json:"ct" validate:"required"`
}

// RegisterRequest: the owner's PII sealed for the vault.
type RegisterRequest struct {
	Type      string `json:"type" validate:"required,oneof=adr phn nid eml"`
	Label     string `json:"label" validate:"max=64"`
	Shareable bool   `json:"shareable"`
	Value     Sealed `json:"value"`
	// Deposit names the order a carrier's inline address belongs to; it is
	// required of carriers and sealed into the AAD.
	Deposit *Deposit `json:"deposit,omitempty"`
}

// Deposit binds a carrier's deposit to one merchant's order and invoice:
// the carrier reveals it only under that order's grant, revoked with it.
type Deposit struct {
	Merchant string `json:"merchant" validate:"required,max=256"`
	OrderID  string `json:"order_id" validate:"required,max=64"`
	Invoice  string `json:"invoice" validate:"required,max=64"`
}

// RegisterResponse names the token; Created is false when the same value
// was already registered by this owner.
type RegisterResponse struct {
	Token   string `json:"token"`
	Created bool   `json:"created"`
}

// Entry is one token as listed to its owner: no PII.
type Entry struct {
	Token      string `json:"token"`
	Type       string `json:"type"`
	Label      string `json:"label,omitempty"`
	Epoch      int    `json:"epoch"`
	Created    string `json:"created"`
	Expires    string `json:"expires,omitempty"`
	Shareable  bool   `json:"shareable"`
	ReplacedBy string `json:"replaced_by,omitempty"`
}

// ListResponse lists the caller's tokens.
type ListResponse struct {
	Tokens []Entry `json:"tokens"`
}

// RevealResponse carries a value sealed for the one who asked.
type RevealResponse struct {
	Token       string `json:"token"`
	Type        string `json:"type"`
	DisplayOnly bool   `json:"display_only"`
	Value       Sealed `json:"value"`
}

// GrantRequest: the merchant relays the header and vault section of a
// bundle, naming the invoice the carrier will present.
//
// Without Approval the grant is created pending; with the issuer's approval
// (issuer/api.Authorization.VaultApproval) it is activated. Uses and expiry
// come from the cardholder's vault section, never from the merchant.
type GrantRequest struct {
	Bundle   json.RawMessage `json:"bundle" validate:"required"`
	Invoice  string          `json:"invoice" validate:"required,min=1,max=64"`
	Approval string          `json:"approval,omitempty" validate:"max=128"`
	// MaxUses is ignored: the cardholder seals the uses (DESIGN.md §7).
	MaxUses int `json:"max_uses,omitempty" validate:"min=0,max=10"`
}

// GrantResponse confirms a grant. Invoice is the one the grant is bound to:
// the first request's, also when a retry names another.
type GrantResponse struct {
	GrantID string `json:"grant_id"`
	Token   string `json:"token"`
	Carrier string `json:"carrier"`
	OrderID string `json:"order_id"`
	Invoice string `json:"invoice"`
	State   string `json:"state"`
	Expires string `json:"expires"`
	MaxUses int    `json:"max_uses"`
	// AuditCheckpoint is the vault's newest audit checkpoint, which the
	// merchant keeps as an anchor of the vault's audit log outside it.
	AuditCheckpoint *AuditCheckpoint `json:"audit_checkpoint,omitempty"`
}

// AuditCheckpoint anchors the vault's audit chain (DESIGN.md §7): the
// sequence number and hash of its newest entry at a time, MACed under a key
// only the vault holds. 'merchant vault audit verify -checkpoint FILE'
// compares the vault's log with a copy the merchant kept.
type AuditCheckpoint struct {
	Seq  int64     `json:"seq"`
	Head []byte    `json:"head"`
	At   time.Time `json:"at"`
	MAC  []byte    `json:"mac"`
}

// RevokeRequest: the merchant revokes every grant of one of its orders
// (declined, failed, voided or cancelled).
type RevokeRequest struct {
	OrderID string `json:"order_id" validate:"required,max=64"`
	Reason  string `json:"reason" validate:"required,max=64"`
}

// RevokeResponse says how many grants the request revoked (0 on a repeat).
type RevokeResponse struct {
	OrderID         string           `json:"order_id"`
	Revoked         int              `json:"revoked"`
	AuditCheckpoint *AuditCheckpoint `json:"audit_checkpoint,omitempty"` // as GrantResponse's
}

// RevealGrantRequest: a grantee asks for one token for one order and invoice.
type RevealGrantRequest struct {
	Token   string `json:"token" validate:"required,max=128"`
	OrderID string `json:"order_id" validate:"required,max=64"`
	Invoice string `json:"invoice" validate:"required,max=64"`
}

// box opens an AEAD keyed with K(a, b).Expand(label, ctx...).
func box(keys order.Keyring, peer, label string, ctx ...string) (cipher.AEAD, error) {
	k, err := keys.Pairwise(peer)
	if err != nil {
		return nil, err
	}
	sk := k.Expand(label, ctx...)
	defer clear(sk[:])
	return chacha20poly1305.NewX(sk[:])
}

func registerAAD(owner string, r *RegisterRequest) []byte {
	aad := []byte("orderseal-v1-register")
	aad = wire.LP16(aad, []byte(owner))
	aad = wire.LP16(aad, []byte(r.Type))
	aad = wire.LP16(aad, []byte(r.Label))
	if r.Shareable {
		aad = append(aad, 1)
	} else {
		aad = append(aad, 0)
	}
	if d := r.Deposit; d != nil {
		aad = append(aad, 'd')
		for _, f := range []string{d.Merchant, d.OrderID, d.Invoice} {
			aad = wire.LP16(aad, []byte(f))
		}
	}
	return aad
}

// SealRegister seals value for the vault: key HKDF-Expand(K(owner, vault),
// "orderseal-v1-register"), AAD binding owner, type, label and shareable.
func SealRegister(keys order.Keyring, vault string, r *RegisterRequest, value []byte) error {
	aead, err := box(keys, vault, keygen.LabelRegister)
	if err != nil {
		return err
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return err
	}
	r.Value = Sealed{Nonce: wire.B64(nonce), CT: wire.B64(aead.Seal(nil, nonce, value, registerAAD(keys.Identity(), r)))}
	return nil
}

// OpenRegister is the vault's side of SealRegister.
func OpenRegister(keys order.Keyring, owner string, r *RegisterRequest) ([]byte, error) {
	aead, err := box(keys, owner, keygen.LabelRegister)
	if err != nil {
		return nil, err
	}
	return openSealed(aead, r.Value, registerAAD(owner, r))
}

// RegisterOpener opens many of one owner's sealed values with one key
// derivation: the vault's side of a batch of SealRegister.
type RegisterOpener struct {
	aead  cipher.AEAD
	owner string
}

// NewRegisterOpener derives the register key of K(owner, vault) once.
func NewRegisterOpener(keys order.Keyring, owner string) (*RegisterOpener, error) {
	aead, err := box(keys, owner, keygen.LabelRegister)
	if err != nil {
		return nil, err
	}
	return &RegisterOpener{aead: aead, owner: owner}, nil
}

// Open is OpenRegister for the opener's owner; safe for concurrent use.
func (o *RegisterOpener) Open(r *RegisterRequest) ([]byte, error) {
	return openSealed(o.aead, r.Value, registerAAD(o.owner, r))
}

func openSealed(aead cipher.AEAD, s Sealed, aad []byte) ([]byte, error) {
	nonce, err := wire.UnB64Len(s.Nonce, chacha20poly1305.NonceSizeX)
	if err != nil {
		return nil, fmt.Errorf("%w: nonce: %w", ErrSeal, err)
	}
	ct, err := wire.UnB64(s.CT)
	if err != nil || len(ct) > MaxValueSize+chacha20poly1305.Overhead {
		return nil, fmt.Errorf("%w: ciphertext", ErrSeal)
	}
	pt, err := aead.Open(nil, nonce, ct, aad)
	if err != nil {
		return nil, ErrSeal
	}
	return pt, nil
}

func revealAAD(token, reader, orderID string) []byte {
	aad := wire.LP16([]byte("orderseal-v1-reveal"), []byte(token))
	aad = wire.LP16(aad, []byte(reader))
	return wire.LP16(aad, []byte(orderID))
}

// SealReveal seals a value for reader (the owner, with orderID "", or a
// grantee for one order): key HKDF-Expand(K(vault, reader),
// "orderseal-v1-reveal" || lp16(token) || lp16(orderID)).
func SealReveal(keys order.Keyring, reader, token, orderID string, value []byte) (Sealed, error) {
	aead, err := box(keys, reader, keygen.LabelReveal, token, orderID)
	if err != nil {
		return Sealed{}, err
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return Sealed{}, err
	}
	return Sealed{Nonce: wire.B64(nonce), CT: wire.B64(aead.Seal(nil, nonce, value, revealAAD(token, reader, orderID)))}, nil
}

// OpenReveal is the reader's side of SealReveal.
func OpenReveal(keys order.Keyring, vault, token, orderID string, s Sealed) ([]byte, error) {
	aead, err := box(keys, vault, keygen.LabelReveal, token, orderID)
	if err != nil {
		return nil, err
	}
	return openSealed(aead, s, revealAAD(token, keys.Identity(), orderID))
}

// NormalizeAddress validates an address against its country's rules
// (order/address) and returns its canonical JSON: NFC, white space folded,
// postcode and region in the country's canonical form. The error wraps
// ErrValue and the *address.Error that names the refusal's code.
func NormalizeAddress(a order.Address) ([]byte, error) {
	n, err := address.Normalize(a)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrValue, err)
	}
	return json.Marshal(n)
}

// Normalize validates a value of type t and returns its canonical bytes. A
// phone must be given in international form ("+82 10-1234-5678"); the
// cardholder's CLI reads national forms with the country it is told.
func Normalize(t string, raw []byte) ([]byte, error) {
	switch t {
	case TypeAddress:
		var a order.Address
		if err := strictjson.Decode(raw, &a, MaxValueSize); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrValue, err)
		}
		return NormalizeAddress(a)
	case TypePhone:
		p, err := address.Phone(string(raw), "")
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrValue, err)
		}
		return []byte(p), nil
	case TypeEmail:
		e := strings.ToLower(strings.TrimSpace(string(raw)))
		local, domain, ok := strings.Cut(e, "@")
		if !ok || local == "" || !strings.Contains(domain, ".") || len(e) > 254 || strings.ContainsFunc(e, unicode.IsSpace) {
			return nil, fmt.Errorf("%w: not an email address", ErrValue)
		}
		return []byte(e), nil
	case TypeNationalID:
		id := strings.ToUpper(strings.Join(strings.Fields(string(raw)), ""))
		if len(id) < 4 || len(id) > 32 || strings.IndexFunc(id, func(r rune) bool { return !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') }) >= 0 {
			return nil, fmt.Errorf("%w: national id must be 4–32 of [A-Z0-9-]", ErrValue)
		}
		return []byte(id), nil
	}
	return nil, fmt.Errorf("%w: unknown type %.8q", ErrValue, t)
}

// Fold is the form of a normalised value of type t in which two values are
// the same for dedupe: an address's address.FoldKey (NFC, width and case
// folded), any other value as it is (Normalize already folds those).
func Fold(t string, norm []byte) []byte {
	if t == TypeAddress {
		var a order.Address
		if json.Unmarshal(norm, &a) == nil {
			return address.FoldKey(a)
		}
	}
	return norm
}

// ValueCode is the stable problem code of a Normalize refusal: the
// address or phone rule's own (postcode-invalid, region-required,
// phone-invalid, …), else "invalid-value".
func ValueCode(err error) string {
	if c := address.CodeOf(err); c != "" {
		return c
	}
	return "invalid-value"
}
