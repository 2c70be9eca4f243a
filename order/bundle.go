package order

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"orderseal/internal/strictjson"
	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/suite"
)

// Version is the bundle format version this package writes and reads.
const Version = 1

// Limits on what a bundle may hold.
const (
	MaxBundleSize   = 256 << 10
	MaxSectionSize  = 64 << 10 // plaintext bytes of one section
	MaxLifetime     = 30 * 24 * time.Hour
	DefaultLifetime = 24 * time.Hour
	// ClockSkew is how far in the future a bundle's created time may be.
	ClockSkew = 5 * time.Minute
)

const (
	maxNonceSize   = 32 // the largest section nonce a suite may use
	saltSize       = 32
	maxRoles       = 4 // carrier, issuer, merchant, vault
	commitmentSize = 32
)

// Sealed is one encrypted section.
type Sealed struct {
	Nonce []byte // the suite's NonceSize bytes
	KEM   []byte // the suite's EncapSize bytes of KEM ciphertext; nil without a KEM
	CT    []byte
}

// Bundle is a sealed order (DESIGN.md §4). Created and Expires keep the exact
// strings the cardholder sent, because the header hash covers those bytes.
type Bundle struct {
	Version     int
	Suite       string
	System      [16]byte
	Epoch       string // the cardholder's key epoch, under a suite with epochs; "" otherwise
	OrderID     string
	Cardholder  string
	Created     string
	Expires     string
	Parties     map[Role]string
	Commitments map[Role][commitmentSize]byte
	// KEMs holds SHA-256 of each section's KEM ciphertext, under a suite
	// with a KEM: the header binds every section's encapsulation.
	KEMs map[Role][32]byte
	// Policy names the section policy the cardholder applied (PROTOCOL.md
	// §9.9), by id and hash; nil for a bundle sealed without a published
	// policy (the built-in default).
	Policy   *PolicyRef
	Sections map[Role]Sealed
}

// PolicyRef names a section policy in a bundle header: its id and
// Policy.Hash. The header hash covers both, so every recipient knows which
// policy decided what it was sent, and none can be swapped.
type PolicyRef struct {
	ID   string
	Hash [32]byte
}

type policyRefWire struct {
	ID   string `json:"id"`
	Hash string `json:"hash"`
}

type sealedWire struct {
	Nonce string `json:"nonce"`
	KEM   string `json:"kem,omitempty"`
	CT    string `json:"ct"`
}

type bundleWire struct {
	V           int                 `json:"v"`
	Suite       string              `json:"suite"`
	System      string              `json:"system"`
	Epoch       string              `json:"epoch,omitempty"`
	OrderID     string              `json:"order_id"`
	Cardholder  string              `json:"cardholder"`
	Created     string              `json:"created"`
	Expires     string              `json:"expires"`
	Parties     map[Role]string     `json:"parties"`
	Commitments map[Role]string     `json:"commitments"`
	KEMs        map[Role]string     `json:"kems,omitempty"`
	Policy      *policyRefWire      `json:"policy,omitempty"`
	Sections    map[Role]sealedWire `json:"sections"`
}

// MarshalJSON writes the wire form of DESIGN.md §4.
func (b *Bundle) MarshalJSON() ([]byte, error) {
	w := bundleWire{V: b.Version, Suite: b.Suite, System: fmt.Sprintf("%x", b.System[:]), Epoch: b.Epoch,
		OrderID: b.OrderID, Cardholder: b.Cardholder, Created: b.Created, Expires: b.Expires,
		Parties: b.Parties, Commitments: map[Role]string{}, Sections: map[Role]sealedWire{}}
	for r, c := range b.Commitments {
		w.Commitments[r] = wire.B64(c[:])
	}
	if len(b.KEMs) > 0 {
		w.KEMs = make(map[Role]string, len(b.KEMs))
		for r, h := range b.KEMs {
			w.KEMs[r] = wire.B64(h[:])
		}
	}
	if p := b.Policy; p != nil {
		w.Policy = &policyRefWire{ID: p.ID, Hash: wire.B64(p.Hash[:])}
	}
	for r, s := range b.Sections {
		sw := sealedWire{Nonce: wire.B64(s.Nonce[:]), CT: wire.B64(s.CT)}
		if s.KEM != nil {
			sw.KEM = wire.B64(s.KEM)
		}
		w.Sections[r] = sw
	}
	return json.Marshal(w)
}

// ParseBundle decodes a bundle strictly: size limit, no unknown fields or
// duplicate keys, canonical base64url, and a consistent structure.
func ParseBundle(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxBundleSize)
	}
	var w bundleWire
	if err := strictjson.Decode(data, &w, MaxBundleSize); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	b := &Bundle{Version: w.V, Suite: w.Suite, Epoch: w.Epoch, OrderID: w.OrderID, Cardholder: w.Cardholder,
		Created: w.Created, Expires: w.Expires, Parties: w.Parties,
		Commitments: map[Role][commitmentSize]byte{}, Sections: map[Role]Sealed{}}
	if w.V != Version {
		return nil, fmt.Errorf("%w: v=%d", ErrVersion, w.V)
	}
	st, err := suite.ByName(w.Suite)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSuite, err)
	}
	sys, err := keygen.ParseSystem(w.System)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	b.System = sys
	for r, s := range w.Commitments {
		c, err := wire.UnB64Len(s, commitmentSize)
		if err != nil {
			return nil, fmt.Errorf("%w: commitment %.16q: %w", ErrMalformed, r, err)
		}
		b.Commitments[r] = [commitmentSize]byte(c)
	}
	if w.KEMs != nil {
		b.KEMs = make(map[Role][32]byte, len(w.KEMs))
	}
	for r, s := range w.KEMs {
		h, err := wire.UnB64Len(s, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: kem hash %.16q: %w", ErrMalformed, r, err)
		}
		b.KEMs[r] = [32]byte(h)
	}
	if p := w.Policy; p != nil {
		h, err := wire.UnB64Len(p.Hash, 32)
		if err != nil {
			return nil, fmt.Errorf("%w: policy hash: %w", ErrMalformed, err)
		}
		b.Policy = &PolicyRef{ID: p.ID, Hash: [32]byte(h)}
	}
	for r, s := range w.Sections {
		n, err := wire.UnB64Len(s.Nonce, st.NonceSize())
		if err != nil {
			return nil, fmt.Errorf("%w: section %.16q nonce: %w", ErrMalformed, r, err)
		}
		var kem []byte
		if s.KEM != "" || st.EncapSize() > 0 {
			if kem, err = wire.UnB64Len(s.KEM, st.EncapSize()); err != nil {
				return nil, fmt.Errorf("%w: section %.16q kem: %w", ErrKEM, r, err)
			}
		}
		ct, err := wire.UnB64(s.CT)
		if err != nil {
			return nil, fmt.Errorf("%w: section %.16q ciphertext: %w", ErrMalformed, r, err)
		}
		b.Sections[r] = Sealed{Nonce: n, KEM: kem, CT: ct}
	}
	if err := b.Check(); err != nil {
		return nil, err
	}
	return b, nil
}

// Check validates the structure: version, suite, identities, the role sets,
// the time window and section sizes. It does not need any key.
func (b *Bundle) Check() error {
	if b.Version != Version {
		return fmt.Errorf("%w: v=%d", ErrVersion, b.Version)
	}
	st, err := suite.ByName(b.Suite)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSuite, err)
	}
	if err := b.checkParties(); err != nil {
		return err
	}
	for r := range b.Parties {
		if _, ok := b.Commitments[r]; !ok {
			return fmt.Errorf("%w: no commitment for %s", ErrMalformed, r)
		}
	}
	if len(b.Commitments) != len(b.Parties) {
		return fmt.Errorf("%w: a commitment names no party", ErrMalformed)
	}
	if len(b.Sections) == 0 {
		return fmt.Errorf("%w: no sections", ErrMalformed)
	}
	if err := b.checkKEMs(st); err != nil {
		return err
	}
	if p := b.Policy; p != nil && !ValidPolicyID(p.ID) {
		return fmt.Errorf("%w: policy id must be 1–64 characters of [a-z0-9._-]", ErrMalformed)
	}
	for r, s := range b.Sections {
		if _, ok := b.Parties[r]; !ok {
			return fmt.Errorf("%w: a section names no party", ErrMalformed)
		}
		if len(s.Nonce) != st.NonceSize() {
			return fmt.Errorf("%w: %s section has a %d-byte nonce, the suite's is %d", ErrMalformed, r, len(s.Nonce), st.NonceSize())
		}
		if len(s.CT) < st.Overhead() || len(s.CT) > MaxSectionSize+st.Overhead() {
			return fmt.Errorf("%w: %s section has %d bytes of ciphertext", ErrMalformed, r, len(s.CT))
		}
	}
	return nil
}

// checkKEMs checks the epoch and the KEM ciphertexts: under a suite with a
// KEM, an epoch name, a hash for every party and, in every section present,
// a ciphertext of the suite's size whose SHA-256 is the header's; without
// one, none of them.
func (b *Bundle) checkKEMs(st suite.Suite) error {
	if st.EncapSize() == 0 {
		if b.Epoch != "" || len(b.KEMs) > 0 {
			return fmt.Errorf("%w: suite %s has no epochs and no KEM", ErrMalformed, b.Suite)
		}
		for r, s := range b.Sections {
			if s.KEM != nil {
				return fmt.Errorf("%w: %s section carries a KEM ciphertext", ErrKEM, r)
			}
		}
		return nil
	}
	if !keygen.ValidEpochName(b.Epoch) {
		return fmt.Errorf("%w: epoch %.16q", ErrEpoch, b.Epoch)
	}
	if len(b.KEMs) != len(b.Parties) {
		return fmt.Errorf("%w: a KEM hash for every party and no other", ErrKEM)
	}
	for r := range b.Parties {
		if _, ok := b.KEMs[r]; !ok {
			return fmt.Errorf("%w: no KEM hash for %s", ErrKEM, r)
		}
	}
	for r, s := range b.Sections {
		if len(s.KEM) != st.EncapSize() {
			return fmt.Errorf("%w: %s section has %d bytes of KEM ciphertext, the suite's is %d", ErrKEM, r, len(s.KEM), st.EncapSize())
		}
		want, got := b.KEMs[r], sha256.Sum256(s.KEM)
		if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
			return fmt.Errorf("%w: %s section's KEM ciphertext is not the header's", ErrKEM, r)
		}
	}
	return nil
}

// checkParties is the part of Check that Seal needs before any section
// exists: order id, identities, the role set and the time window.
func (b *Bundle) checkParties() error {
	if !isCode(b.OrderID, 64) {
		return fmt.Errorf("%w: order_id must be 1–64 characters of [A-Za-z0-9._-]", ErrMalformed)
	}
	if err := checkSealer(b.Cardholder); err != nil {
		return err
	}
	if _, _, err := b.window(); err != nil {
		return err
	}
	for _, r := range []Role{RoleMerchant, RoleIssuer, RoleCarrier} {
		if _, ok := b.Parties[r]; !ok {
			return fmt.Errorf("%w: no %s", ErrParties, r)
		}
	}
	for r, id := range b.Parties {
		if !knownRole(r) {
			return fmt.Errorf("%w: unknown role %.16q", ErrParties, r)
		}
		if err := keygen.ValidateIdentity(id); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrParties, r, err)
		}
		if keygen.RoleOf(id) != r {
			return fmt.Errorf("%w: %s identity has role %q", ErrParties, r, keygen.RoleOf(id))
		}
	}
	return nil
}

func checkSealer(id string) error {
	if err := keygen.ValidateIdentity(id); err != nil {
		return fmt.Errorf("%w: cardholder: %w", ErrParties, err)
	}
	if role := keygen.RoleOf(id); role != keygen.RoleCardholder && role != keygen.RoleConsultant {
		return fmt.Errorf("%w: cardholder identity has role %q", ErrParties, role)
	}
	return nil
}

// window parses created and expires and checks their order and span.
func (b *Bundle) window() (created, expires time.Time, err error) {
	created, err = time.Parse(time.RFC3339, b.Created)
	if err != nil || len(b.Created) > 64 {
		return created, expires, fmt.Errorf("%w: created is not RFC 3339", ErrMalformed)
	}
	expires, err = time.Parse(time.RFC3339, b.Expires)
	if err != nil || len(b.Expires) > 64 {
		return created, expires, fmt.Errorf("%w: expires is not RFC 3339", ErrMalformed)
	}
	if !expires.After(created) || expires.Sub(created) > MaxLifetime {
		return created, expires, fmt.Errorf("%w: expires must be after created and within %s", ErrMalformed, MaxLifetime)
	}
	return created, expires, nil
}

// CheckTime refuses a bundle outside its validity window at now.
func (b *Bundle) CheckTime(now time.Time) error {
	created, expires, err := b.window()
	if err != nil {
		return err
	}
	if now.After(expires) {
		return ErrExpired
	}
	if created.After(now.Add(ClockSkew)) {
		return ErrNotYetValid
	}
	return nil
}

// ExpiresAt is the parsed expiry.
func (b *Bundle) ExpiresAt() time.Time {
	_, e, _ := b.window()
	return e
}

// presentRoles lists the bundle's roles in ascending byte order.
func (b *Bundle) presentRoles() []Role {
	rs := make([]Role, 0, len(b.Parties))
	for r := range b.Parties {
		rs = append(rs, r)
	}
	slices.Sort(rs)
	return rs
}

// CanonicalHeader is the byte encoding of DESIGN.md §4.1 that the header
// hash covers: each item length-prefixed with lp32, roles in byte order.
func (b *Bundle) CanonicalHeader() []byte { return b.appendCanonicalHeader(nil) }

func (b *Bundle) appendCanonicalHeader(out []byte) []byte {
	out = wire.LP32(out, []byte{byte(b.Version)})
	out = wire.LP32(out, []byte(b.Suite))
	out = wire.LP32(out, b.System[:])
	if b.Epoch != "" { // a suite with epochs and a KEM (OS2)
		out = wire.LP32(out, []byte(b.Epoch))
	}
	out = wire.LP32(out, []byte(b.OrderID))
	out = wire.LP32(out, []byte(b.Cardholder))
	out = wire.LP32(out, []byte(b.Created))
	out = wire.LP32(out, []byte(b.Expires))
	for _, r := range b.presentRoles() {
		c := b.Commitments[r]
		out = wire.LP32(out, []byte(r))
		out = wire.LP32(out, []byte(b.Parties[r]))
		out = wire.LP32(out, c[:])
		if b.Epoch != "" {
			h := b.KEMs[r]
			out = wire.LP32(out, h[:])
		}
	}
	if p := b.Policy; p != nil { // absent: the canonical header of before policies were named
		out = wire.LP32(out, []byte("policy"))
		out = wire.LP32(out, []byte(p.ID))
		out = wire.LP32(out, p.Hash[:])
	}
	return out
}

// headerLabel prefixes the canonical header in the header hash.
const headerLabel = "orderseal-v1-header"

// HeaderHash is hH = SHA-256("orderseal-v1-header" || canonical(header)).
func (b *Bundle) HeaderHash() [32]byte {
	var buf [1024]byte // a typical header is about 500 bytes; longer ones spill to the heap
	return sha256.Sum256(b.appendCanonicalHeader(append(buf[:0], headerLabel...)))
}

// ForRole returns a copy carrying the full header but only role's section:
// what the merchant relays to that party.
func (b *Bundle) ForRole(role Role) (*Bundle, error) {
	s, ok := b.Sections[role]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoSection, role)
	}
	c := *b
	c.Parties = maps.Clone(b.Parties)
	c.Commitments = maps.Clone(b.Commitments)
	c.KEMs = maps.Clone(b.KEMs)
	if b.Policy != nil {
		p := *b.Policy
		c.Policy = &p
	}
	c.Sections = map[Role]Sealed{role: {Nonce: slices.Clone(s.Nonce), KEM: slices.Clone(s.KEM), CT: slices.Clone(s.CT)}}
	return &c, nil
}

// RelayJSON is ForRole(role) as JSON: what a merchant relays to role.
func (b *Bundle) RelayJSON(role Role) ([]byte, error) {
	relay, err := b.ForRole(role)
	if err != nil {
		return nil, err
	}
	return relay.MarshalJSON()
}
