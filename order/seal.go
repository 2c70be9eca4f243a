package order

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"orderseal/internal/strictjson"
	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/suite"
)

// Keyring is what sealing and opening need of a party: its identity, its
// key center's parameters (whose suite seals), its key's epoch and its
// pairwise keys, as *keygen.Cache gives them (suite.NewKeys). To open a
// section of a suite with a KEM, the keyring must also be a
// suite.Decapsulator holding the epoch's KEM secret (suite.EpochKeys), or
// a keygen.EpochKeyring (suite/keystore) whose ForEpoch gives one.
type Keyring = keygen.Keyring

// Parties names the recipients of a bundle. Vault is required exactly when
// the order ships to a vault token.
type Parties struct {
	Merchant string
	Issuer   string
	Carrier  string
	Vault    string
}

// VaultGrant is the vault section's authorization: the cardholder lets this
// carrier see this token's address for this order, relayed by this merchant.
type VaultGrant struct {
	Token    string `json:"token"`
	Merchant string `json:"merchant"`
	Carrier  string `json:"carrier"`
	Expires  string `json:"expires"` // RFC 3339; the grant's last moment
	// MaxUses is how many label prints the cardholder allows, 1 to
	// MaxGrantUses; 0 (a bundle sealed before it existed, or no choice made)
	// lets the vault apply its short default (DESIGN.md §7).
	MaxUses int `json:"max_uses,omitempty"`
}

// MaxGrantUses is the most reveals a cardholder may seal into a vault grant.
const MaxGrantUses = 10

// Section is the plaintext of one sealed section.
type Section struct {
	Role    Role   `json:"role"`
	Salt    string `json:"salt"`
	OrderID string `json:"order_id"`
	Content
	Grant *VaultGrant `json:"grant,omitempty"`
	// Session is the assisted-order session reference (DESIGN.md §6.7): set
	// in the merchant and issuer sections exactly when a consultant sealed
	// the bundle, so both can trace the order to the login that keyed it.
	Session string `json:"session,omitempty"`
}

// sessionRe is an assisted session reference: "ses_" and 26 base32 characters.
var sessionRe = regexp.MustCompile(`^ses_[a-z2-7]{26}$`)

// ValidSession reports whether s is a well-formed session reference.
func ValidSession(s string) bool { return sessionRe.MatchString(s) }

// NewSessionID returns a random session reference "ses_" + 26 base32 characters.
func NewSessionID(r io.Reader) (string, error) {
	id, err := NewOrderID(r)
	if err != nil {
		return "", err
	}
	return "ses_" + strings.TrimPrefix(id, "ord_"), nil
}

// carriesSession reports whether role's section names the assisted session.
func carriesSession(r Role) bool { return r == RoleMerchant || r == RoleIssuer }

// assisted reports whether a bundle sealed by id is an assisted order.
func assisted(id string) bool { return keygen.RoleOf(id) == keygen.RoleConsultant }

// SealOptions tune Seal; the zero value is the production choice.
type SealOptions struct {
	Policy   *Policy       // nil: DefaultPolicy
	OrderID  string        // "": a fresh random id
	Now      time.Time     // zero: time.Now
	Lifetime time.Duration // 0: DefaultLifetime
	GrantTTL time.Duration // 0: 30 days, how long the carrier may print the label
	// GrantUses is the label prints the vault section allows (1 to
	// MaxGrantUses); 0 seals none, and the vault applies its default.
	GrantUses int
	Rand      io.Reader // nil: crypto/rand
	Session   string    // assisted session reference; required exactly when a consultant seals
	// Directory holds the key center's entries for the recipients, under a
	// suite with a KEM (OS2): each recipient's, for the sealer's epoch, is
	// verified and its KEM key sealed to. Other entries are ignored.
	Directory []*keygen.DirectoryEntry
}

// NewOrderID returns a random order id "ord_" + 26 base32 characters.
func NewOrderID(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	var b [orderIDSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	return orderID(b), nil
}

// orderIDSize is the number of random bytes in an order id.
const orderIDSize = 16

// lowerBase32 is base32 (RFC 4648) in lower case, without padding.
var lowerBase32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// orderID is "ord_" and b in lower case base32.
func orderID(b [orderIDSize]byte) string {
	var id [4 + 26]byte
	copy(id[:], "ord_")
	lowerBase32.Encode(id[4:], b[:])
	return string(id[:])
}

// Seal splits o into one section per party under the policy and seals each
// with a key derived from K(cardholder, party).
func Seal(o *Order, key Keyring, parties Parties, opt SealOptions) (*Bundle, error) {
	rnd := opt.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC().Truncate(time.Second)
	life := opt.Lifetime
	if life == 0 {
		life = DefaultLifetime
	}
	if life < 0 || life > MaxLifetime {
		return nil, fmt.Errorf("%w: lifetime must be within %s", ErrMalformed, MaxLifetime)
	}
	if opt.GrantUses < 0 || opt.GrantUses > MaxGrantUses {
		return nil, fmt.Errorf("%w: grant uses must be within 1 and %d", ErrMalformed, MaxGrantUses)
	}
	grantTTL := opt.GrantTTL
	if grantTTL <= 0 {
		grantTTL = MaxLifetime
	}
	seen := defaultSeen()
	if opt.Policy != nil {
		if err := opt.Policy.Check(); err != nil {
			return nil, err
		}
		for i, r := range Roles {
			seen[i] = opt.Policy.seen(r)
		}
	}
	if err := checkSealer(key.Identity()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSealer, err)
	}
	switch {
	case assisted(key.Identity()) && !ValidSession(opt.Session):
		return nil, fmt.Errorf("%w: a consultant seals only inside an assisted session (ses_…)", ErrSealer)
	case !assisted(key.Identity()) && opt.Session != "":
		return nil, fmt.Errorf("%w: only a consultant's bundle names an assisted session", ErrSealer)
	}
	if err := o.Validate(now); err != nil {
		return nil, err
	}
	params := key.Params()
	st, err := suite.ByName(params.Suite)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSuite, err)
	}
	if err := checkKeyEpoch(params, key.Epoch(), now); err != nil {
		return nil, err
	}
	nonceSize := st.NonceSize()
	if nonceSize < 12 || nonceSize > maxNonceSize {
		panic(fmt.Sprintf("order: suite %s has a %d-byte nonce", st.Name(), nonceSize)) // a registry bug
	}
	b := &Bundle{Version: Version, Suite: params.Suite, System: params.System, Epoch: key.Epoch(),
		OrderID: opt.OrderID, Cardholder: key.Identity(),
		Created: now.Format(time.RFC3339), Expires: now.Add(life).Format(time.RFC3339),
		Parties:     make(map[Role]string, maxRoles),
		Commitments: make(map[Role][commitmentSize]byte, maxRoles),
		Sections:    make(map[Role]Sealed, maxRoles)}
	b.Parties[RoleMerchant], b.Parties[RoleIssuer], b.Parties[RoleCarrier] = parties.Merchant, parties.Issuer, parties.Carrier
	if opt.Policy != nil && opt.Policy.ID != "" {
		b.Policy = opt.Policy.Ref()
	}
	var rolesBuf [maxRoles]Role
	roles := append(rolesBuf[:0], RoleCarrier, RoleIssuer, RoleMerchant) // in byte order, like Roles
	switch {
	case o.ShipTo.Token != "" && parties.Vault == "":
		return nil, fmt.Errorf("%w: the order ships to a vault token, so a vault identity is required", ErrParties)
	case o.ShipTo.Token == "" && parties.Vault != "":
		return nil, fmt.Errorf("%w: a vault section is only for orders that ship to a token", ErrParties)
	case parties.Vault != "":
		b.Parties[RoleVault] = parties.Vault
		roles = append(roles, RoleVault)
	}

	// One read for the order id (unless given), every salt, then every
	// nonce: the stream is consumed in the order of one read each.
	var random [orderIDSize + maxRoles*(saltSize+maxNonceSize)]byte
	defer clear(random[:]) // the salts
	id := random[:0]
	if b.OrderID == "" {
		id = random[:orderIDSize]
	}
	salts := random[len(id) : len(id)+len(roles)*saltSize]
	nonces := random[len(id)+len(salts) : len(id)+len(salts)+len(roles)*nonceSize]
	if _, err := io.ReadFull(rnd, random[:len(id)+len(salts)+len(nonces)]); err != nil {
		return nil, err
	}
	if b.OrderID == "" {
		b.OrderID = orderID([orderIDSize]byte(id))
	}
	if err := b.checkParties(); err != nil {
		return nil, err
	}

	// Each plaintext is written after the commitment label into its share of
	// a slab; one that outgrows it is cleared with plain, the slab before it
	// goes back to the pool.
	slab := plainSlabs.Get().(*[maxRoles * sectionBufSize]byte)
	defer func() {
		clear(slab[:])
		plainSlabs.Put(slab)
	}()
	var plain [maxRoles][]byte // indexed like roles
	defer func() {
		for _, p := range plain {
			clear(p)
		}
	}()
	size := 0
	for i, r := range roles {
		s := Section{Role: r, Salt: wire.B64(salts[i*saltSize : (i+1)*saltSize]), OrderID: b.OrderID}
		if r == RoleVault {
			s.Grant = &VaultGrant{Token: o.ShipTo.Token, Merchant: parties.Merchant, Carrier: parties.Carrier,
				Expires: now.Add(grantTTL).Format(time.RFC3339), MaxUses: opt.GrantUses}
		} else {
			s.Content = project(o, r, seen[slices.Index(Roles, r)])
		}
		if carriesSession(r) {
			s.Session = opt.Session
		}
		buf := append(slab[i*sectionBufSize:i*sectionBufSize:(i+1)*sectionBufSize], commitLabel...)
		buf = appendSection(buf, &s)
		pt := buf[len(commitLabel):]
		plain[i] = pt
		if len(pt) > MaxSectionSize {
			return nil, fmt.Errorf("%w: %s section is %d bytes", ErrTooLarge, r, len(pt))
		}
		b.Commitments[r] = sha256.Sum256(buf)
		size += len(pt) + st.Overhead()
	}
	var kems, secrets [maxRoles][]byte // indexed like roles
	defer func() {
		for _, ss := range secrets {
			clear(ss)
		}
	}()
	if st.EncapSize() > 0 {
		if err := encapsulate(st, params, b, roles, opt.Directory, now, rnd, kems[:], secrets[:]); err != nil {
			return nil, err
		}
	} else if b.Epoch != "" {
		return nil, fmt.Errorf("%w: suite %s has no epochs", ErrSuite, st.Name())
	}
	hH := b.HeaderHash()
	cts := make([]byte, 0, size)               // one allocation for every ciphertext
	nonceOut := append([]byte(nil), nonces...) // and one for the nonces: random is cleared on return
	for i, r := range roles {
		aead, err := sectionAEAD(st, key, b.Parties[r], b, r, secrets[i])
		if err != nil {
			return nil, err
		}
		sealed := Sealed{Nonce: nonceOut[i*nonceSize : (i+1)*nonceSize : (i+1)*nonceSize], KEM: kems[i]}
		start := len(cts)
		cts = aead.Seal(cts, sealed.Nonce[:], plain[i], aad(hH, r))
		sealed.CT = cts[start:len(cts):len(cts)]
		b.Sections[r] = sealed
	}
	return b, nil
}

// encapsulate draws, for each role, a KEM shared secret to the recipient's
// directory entry of the bundle's epoch, after verifying the entry; the
// ciphertexts go to kems and the header, the secrets to secrets.
func encapsulate(st suite.Suite, params keygen.Params, b *Bundle, roles []Role, dir []*keygen.DirectoryEntry,
	now time.Time, rnd io.Reader, kems, secrets [][]byte) error {
	if b.Epoch == "" {
		return fmt.Errorf("%w: suite %s seals with a key of an epoch", ErrEpoch, st.Name())
	}
	b.KEMs = make(map[Role][32]byte, len(roles))
	for i, r := range roles {
		id := b.Parties[r]
		var entry *keygen.DirectoryEntry
		otherEpoch := false
		for _, e := range dir {
			if e != nil && e.Identity == id {
				if e.Epoch == b.Epoch {
					entry = e
					break
				}
				otherEpoch = true
			}
		}
		switch {
		case entry == nil && otherEpoch:
			return fmt.Errorf("%w: %w: %s has none for epoch %s", ErrDirectory, ErrEntryEpoch, id, b.Epoch)
		case entry == nil:
			return fmt.Errorf("%w: %w: %s", ErrDirectory, ErrEntryMissing, id)
		}
		if err := st.VerifyEntry(params, entry, now); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrDirectory, id, err)
		}
		ct, ss, err := st.Encapsulate(entry.PublicKey, rnd)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrDirectory, id, err)
		}
		kems[i], secrets[i] = ct, ss
		b.KEMs[r] = sha256.Sum256(ct)
	}
	return nil
}

// sectionBufSize is the room Seal sets aside per section plaintext; the
// example order's largest section takes under half of it.
const sectionBufSize = 1024

// plainSlabs hold the section plaintexts of one Seal at a time, and only
// zeros between two.
var plainSlabs = sync.Pool{New: func() any { return new([maxRoles * sectionBufSize]byte) }}

// commitLabel prefixes the plaintext in a section commitment.
const commitLabel = "orderseal-v1-commit"

// commit is SHA-256("orderseal-v1-commit" || plaintext).
func commit(pt []byte) [commitmentSize]byte {
	h := sha256.New()
	h.Write([]byte(commitLabel))
	h.Write(pt)
	return [commitmentSize]byte(h.Sum(nil))
}

func aad(hH [32]byte, r Role) []byte { return append(hH[:], r...) }

// sectionAEAD is the bundle suite's AEAD for role's section under
// K(cardholder, party) and, with a KEM, the section's shared secret ss.
func sectionAEAD(st suite.Suite, key Keyring, peer string, b *Bundle, r Role, ss []byte) (cipher.AEAD, error) {
	k, err := key.Pairwise(peer)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrParties, err)
	}
	return st.SectionAEAD(&k, ss, string(r), b.OrderID)
}

// checkKeyEpoch refuses a key of an epoch suite whose epoch and grace are
// over at now: a daemon that loaded it in time must not go on using it.
func checkKeyEpoch(p keygen.Params, epoch string, now time.Time) error {
	if p.Epochs == nil {
		return nil
	}
	if err := p.Epochs.Usable(epoch, now); err != nil {
		if errors.Is(err, keygen.ErrEpochOver) {
			return fmt.Errorf("%w: %w", ErrKeyExpired, err)
		}
		return fmt.Errorf("%w: %w", ErrEpoch, err)
	}
	return nil
}

// OpenOptions tune Open.
type OpenOptions struct {
	Now time.Time // zero: time.Now
}

// Open decrypts role's section with the recipient's key, checks its
// commitment in constant time and returns it. Success proves the whole
// header, with every other section's commitment, came from the cardholder.
func Open(b *Bundle, key Keyring, role Role, opt OpenOptions) (*Section, error) {
	if err := b.Check(); err != nil {
		return nil, err
	}
	if ek, ok := key.(keygen.EpochKeyring); ok {
		k, err := ek.ForEpoch(b.Epoch)
		switch {
		case errors.Is(err, keygen.ErrNotAccepted):
			return nil, fmt.Errorf("%w: %s: %w", ErrNotAccepted, b.Suite, err)
		case err != nil && key.Params().Suite != b.Suite:
			return nil, ErrSystem
		case err != nil:
			return nil, fmt.Errorf("%w: %w", ErrEpoch, err)
		}
		key = k
	}
	p := key.Params()
	if p.System != b.System || p.Suite != b.Suite {
		return nil, ErrSystem
	}
	st, err := suite.ByName(b.Suite)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSuite, err)
	}
	id, ok := b.Parties[role]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoSection, role)
	}
	sealed, ok := b.Sections[role]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoSection, role)
	}
	if id != key.Identity() {
		return nil, fmt.Errorf("%w: the %s section is for another party", ErrNotRecipient, role)
	}
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	if err := b.CheckTime(now); err != nil {
		return nil, err
	}
	var ss []byte
	if st.EncapSize() > 0 {
		if key.Epoch() != b.Epoch {
			return nil, fmt.Errorf("%w: bundle %.16q, key %q", ErrEpoch, b.Epoch, key.Epoch())
		}
		if err := checkKeyEpoch(p, key.Epoch(), now); err != nil {
			return nil, err
		}
		dec, ok := key.(suite.Decapsulator)
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrNoKEM, b.Epoch)
		}
		if ss, err = dec.Decapsulate(sealed.KEM); err != nil {
			if errors.Is(err, suite.ErrNoKEM) {
				return nil, fmt.Errorf("%w: %s: %w", ErrNoKEM, b.Epoch, err)
			}
			return nil, fmt.Errorf("%w: %w", ErrKEM, err)
		}
		defer clear(ss)
	}
	aead, err := sectionAEAD(st, key, b.Cardholder, b, role, ss)
	if err != nil {
		return nil, err
	}
	hH := b.HeaderHash()
	pt, err := aead.Open(nil, sealed.Nonce[:], sealed.CT, aad(hH, role))
	if err != nil {
		return nil, ErrAuth
	}
	defer clear(pt)
	want := b.Commitments[role]
	got := commit(pt)
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 {
		return nil, ErrCommitment
	}
	var s Section
	if err := strictjson.Decode(pt, &s, MaxSectionSize); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSectionBody, err)
	}
	if s.Role != role || s.OrderID != b.OrderID {
		return nil, fmt.Errorf("%w: names another role or order", ErrSectionBody)
	}
	if _, err := wire.UnB64Len(s.Salt, 32); err != nil {
		return nil, fmt.Errorf("%w: salt must be 32 bytes", ErrSectionBody)
	}
	if (role == RoleVault) != (s.Grant != nil) {
		return nil, fmt.Errorf("%w: grant belongs in the vault section only", ErrSectionBody)
	}
	if s.Grant != nil && (s.Grant.MaxUses < 0 || s.Grant.MaxUses > MaxGrantUses) {
		return nil, fmt.Errorf("%w: grant uses must be within 1 and %d", ErrSectionBody, MaxGrantUses)
	}
	if want := carriesSession(role) && assisted(b.Cardholder); want != (s.Session != "") || (want && !ValidSession(s.Session)) {
		return nil, fmt.Errorf("%w: the merchant and issuer sections name a session exactly when a consultant sealed the bundle", ErrSectionBody)
	}
	return &s, nil
}
