package order

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"crypto/sha256"

	"orderseal/internal/strictjson"
	"orderseal/internal/wire"
)

// Field names: the unit a Policy assigns to roles.
const (
	FieldBuyerName      = "buyer.name"
	FieldBuyerPhone     = "buyer.phone"
	FieldBuyerEmail     = "buyer.email"
	FieldItems          = "items"
	FieldTotal          = "total" // amount and currency together
	FieldPlan           = "plan"
	FieldCardNumber     = "card.number"
	FieldCardExpiry     = "card.expiry"
	FieldCardCVC        = "card.cvc"
	FieldShipToToken    = "ship_to.token"
	FieldShipToAddress  = "ship_to.address"
	FieldRecipientName  = "recipient.name"
	FieldRecipientPhone = "recipient.phone"
	FieldGiftNote       = "gift_note"
	// FieldShipToCountry is the destination country alone (ISO 3166-1):
	// what a merchant needs to declare a parcel abroad, without the address.
	FieldShipToCountry = "ship_to.country"
	// FieldCustomsCode is the recipient's personal customs clearance code
	// (KR: 개인통관고유부호), which some destinations need on imports.
	FieldCustomsCode = "recipient.customs_code"
)

// fieldOrder is every field name in the order the model declares them;
// Preview prints rows in this order.
var fieldOrder = []string{
	FieldBuyerName, FieldBuyerPhone, FieldBuyerEmail,
	FieldItems, FieldTotal, FieldPlan,
	FieldCardNumber, FieldCardExpiry, FieldCardCVC,
	FieldShipToToken, FieldShipToAddress,
	FieldRecipientName, FieldRecipientPhone, FieldGiftNote, FieldCustomsCode, FieldShipToCountry,
}

// fieldSet is a set of policy fields: bit i stands for fieldOrder[i].
type fieldSet uint16

// The bits of a fieldSet, declared in the order of fieldOrder.
const (
	bitBuyerName fieldSet = 1 << iota
	bitBuyerPhone
	bitBuyerEmail
	bitItems
	bitTotal
	bitPlan
	bitCardNumber
	bitCardExpiry
	bitCardCVC
	bitShipToToken
	bitShipToAddress
	bitRecipientName
	bitRecipientPhone
	bitGiftNote
	bitCustomsCode
	bitShipToCountry
)

// PolicyFields returns every field name a Policy may assign, in model order.
func PolicyFields() []string { return slices.Clone(fieldOrder) }

// MaxPolicySize is the largest policy JSON, in bytes, that ParsePolicy accepts.
const MaxPolicySize = 16 << 10

// ErrPolicy is wrapped by every error ParsePolicy and Check return.
var ErrPolicy = errors.New("invalid section policy")

// Policy says which role sees which field (DESIGN.md §3). A field that no
// role lists goes to nobody. The vault is not a policy role: its section is
// fixed by the bundle code.
//
// A published policy (one of a merchant's PolicySet) has an ID and the
// destination Countries it applies to, and may Require fields: "always",
// or "import" when the parcel crosses a border into the destination. Its
// ID and Hash go into the header of every bundle sealed under it.
type Policy struct {
	ID        string            `json:"id,omitempty"`
	Countries []string          `json:"countries,omitempty"` // ISO 3166-1 alpha-2, or "*" for any other
	Fields    map[string][]Role `json:"fields"`
	Require   map[string]string `json:"require,omitempty"` // field → RequireAlways or RequireImport
}

// What a policy may require of a field.
const (
	RequireAlways = "always"
	RequireImport = "import" // when the origin country is not the destination's
)

// ValidPolicyID reports whether id is 1–64 characters of [a-z0-9._-].
func ValidPolicyID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := range len(id) {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// policyLabel prefixes the canonical policy in Hash.
const policyLabel = "orderseal-v1-policy"

// Hash is SHA-256("orderseal-v1-policy" || canonical(p)), where canonical
// is, each item lp32: the id; the countries sorted and joined by ","; for
// every field of PolicyFields() in that order that some role sees, the
// field and its roles sorted and joined by ","; the word "require"; for
// every field in that order with a requirement, the field and the
// requirement (PROTOCOL.md §9.9). JSON key order and spacing do not count.
func (p *Policy) Hash() [32]byte {
	var out []byte
	out = wire.LP32(out, []byte(p.ID))
	cs := slices.Clone(p.Countries)
	slices.Sort(cs)
	out = wire.LP32(out, []byte(strings.Join(cs, ",")))
	for _, f := range fieldOrder {
		rs := p.Fields[f]
		if len(rs) == 0 {
			continue
		}
		names := make([]string, len(rs))
		for i, r := range rs {
			names[i] = string(r)
		}
		slices.Sort(names)
		out = wire.LP32(out, []byte(f))
		out = wire.LP32(out, []byte(strings.Join(names, ",")))
	}
	out = wire.LP32(out, []byte("require"))
	for _, f := range fieldOrder {
		if r, ok := p.Require[f]; ok {
			out = wire.LP32(out, []byte(f))
			out = wire.LP32(out, []byte(r))
		}
	}
	return sha256.Sum256(append([]byte(policyLabel), out...))
}

// Ref is the header's name for p: its ID and Hash.
func (p *Policy) Ref() *PolicyRef { return &PolicyRef{ID: p.ID, Hash: p.Hash()} }

// CheckOrder refuses o when it lacks a field p requires for a parcel from
// origin to dest (ISO 3166-1 codes; RequireImport applies when they
// differ or origin is unknown). The error is a *FieldError naming the field.
func (p *Policy) CheckOrder(o *Order, origin, dest string) error {
	for _, f := range fieldOrder {
		req, ok := p.Require[f]
		if !ok || present(o, f) || req == RequireImport && origin != "" && origin == dest {
			continue
		}
		why := "is required by policy " + p.ID
		if req == RequireImport {
			why += " on imports"
		}
		return &FieldError{Field: f, Reason: why}
	}
	return nil
}

//go:embed policy_default.json
var defaultPolicyJSON []byte

// defaultPolicy is the parsed, checked default; it is never handed out or
// changed, so Seal reads it without a copy and without checking it again.
var defaultPolicy = sync.OnceValue(func() *Policy {
	p, err := ParsePolicy(defaultPolicyJSON)
	if err != nil {
		panic("order: embedded default policy: " + err.Error())
	}
	return p
})

// defaultSeen is what each role sees under defaultPolicy, indexed like Roles.
var defaultSeen = sync.OnceValue(func() (seen [maxRoles]fieldSet) {
	for i, r := range Roles {
		seen[i] = defaultPolicy().seen(r)
	}
	return seen
})

// DefaultPolicy returns a fresh copy of the DESIGN.md §3 table, parsed from
// the embedded policy_default.json.
func DefaultPolicy() *Policy { return defaultPolicy().clone() }

func (p *Policy) clone() *Policy {
	c := &Policy{ID: p.ID, Countries: slices.Clone(p.Countries), Fields: make(map[string][]Role, len(p.Fields)),
		Require: maps.Clone(p.Require)}
	for f, rs := range p.Fields {
		c.Fields[f] = slices.Clone(rs)
	}
	return c
}

// isCountry reports whether s is two upper-case ASCII letters.
func isCountry(s string) bool {
	return len(s) == 2 && 'A' <= s[0] && s[0] <= 'Z' && 'A' <= s[1] && s[1] <= 'Z'
}

// ParsePolicy decodes policy JSON strictly and then runs Check. Errors wrap
// ErrPolicy (and strictjson.ErrMalformed when the JSON itself is bad).
func ParsePolicy(data []byte) (*Policy, error) {
	var p Policy
	if err := strictjson.Decode(data, &p, MaxPolicySize); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	if err := p.Check(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Check refuses unknown field names, unknown or repeated roles, and any
// policy that breaks the invariants every bundle relies on:
//   - card.number, card.expiry and card.cvc go to the issuer only;
//   - ship_to.address goes to the carrier only;
//   - nothing goes to the vault, whose section is separate;
//   - the merchant receives items and total (it checks them against its catalog);
//   - the issuer receives card.number, card.expiry and total (it authorizes
//     and binds the captured amount to its own section);
//   - the carrier receives ship_to.token and ship_to.address (it must be able
//     to deliver whichever form the order uses).
func (p *Policy) Check() error {
	if p == nil {
		return fmt.Errorf("%w: no policy", ErrPolicy)
	}
	for _, f := range slices.Sorted(maps.Keys(p.Fields)) {
		if !slices.Contains(fieldOrder, f) {
			return fmt.Errorf("%w: unknown field %q", ErrPolicy, f)
		}
		seen := map[Role]bool{}
		for _, r := range p.Fields[f] {
			switch {
			case !knownRole(r):
				return fmt.Errorf("%w: %s: unknown role %q", ErrPolicy, f, r)
			case seen[r]:
				return fmt.Errorf("%w: %s: role %s listed twice", ErrPolicy, f, r)
			case r == RoleVault:
				return fmt.Errorf("%w: %s: nothing may be assigned to the vault", ErrPolicy, f)
			}
			seen[r] = true
		}
	}
	if p.ID != "" && !ValidPolicyID(p.ID) {
		return fmt.Errorf("%w: id must be 1–64 characters of [a-z0-9._-]", ErrPolicy)
	}
	for _, c := range p.Countries {
		if c != "*" && !isCountry(c) {
			return fmt.Errorf("%w: country %.8q is neither ISO 3166-1 alpha-2 in upper case nor *", ErrPolicy, c)
		}
	}
	for _, f := range slices.Sorted(maps.Keys(p.Require)) {
		switch r := p.Require[f]; {
		case !slices.Contains(fieldOrder, f):
			return fmt.Errorf("%w: require: unknown field %q", ErrPolicy, f)
		case r != RequireAlways && r != RequireImport:
			return fmt.Errorf("%w: require %s: want %q or %q", ErrPolicy, f, RequireAlways, RequireImport)
		case len(p.Fields[f]) == 0:
			return fmt.Errorf("%w: require %s: the field goes to nobody", ErrPolicy, f)
		}
	}
	only := map[string]Role{
		FieldCardNumber:    RoleIssuer,
		FieldCardExpiry:    RoleIssuer,
		FieldCardCVC:       RoleIssuer,
		FieldShipToAddress: RoleCarrier,
		FieldCustomsCode:   RoleCarrier,
	}
	for _, f := range slices.Sorted(maps.Keys(only)) {
		for _, r := range p.Fields[f] {
			if r != only[f] {
				return fmt.Errorf("%w: %s may go to the %s only, not the %s", ErrPolicy, f, only[f], r)
			}
		}
	}
	need := []struct {
		role   Role
		fields []string
	}{
		{RoleMerchant, []string{FieldItems, FieldTotal}},
		{RoleIssuer, []string{FieldCardNumber, FieldCardExpiry, FieldTotal}},
		{RoleCarrier, []string{FieldShipToToken, FieldShipToAddress}},
	}
	for _, n := range need {
		for _, f := range n.fields {
			if !p.sees(n.role, f) {
				return fmt.Errorf("%w: the %s must receive %s", ErrPolicy, n.role, f)
			}
		}
	}
	return nil
}

func (p *Policy) sees(role Role, field string) bool {
	return slices.Contains(p.Fields[field], role)
}

// seen is the set of fields role sees under p.
func (p *Policy) seen(role Role) fieldSet {
	var s fieldSet
	for i, f := range fieldOrder {
		if p.sees(role, f) {
			s |= 1 << i
		}
	}
	return s
}

// Visible returns the field names role sees, sorted.
func (p *Policy) Visible(role Role) []string {
	var out []string
	for f, rs := range p.Fields {
		if slices.Contains(rs, role) && slices.Contains(fieldOrder, f) {
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return out
}

// Content is the field payload of one section. The bundle code embeds it in
// the section plaintext next to "role", "salt" and "order_id".
type Content struct {
	BuyerName   string     `json:"buyer_name,omitempty"`
	BuyerPhone  string     `json:"buyer_phone,omitempty"`
	BuyerEmail  string     `json:"buyer_email,omitempty"`
	Items       []Item     `json:"items,omitempty"`
	Total       *Money     `json:"total,omitempty"`
	Plan        *Plan      `json:"plan,omitempty"`
	Card        *Card      `json:"card,omitempty"` // only the sub-fields the role sees
	ShipToken   string     `json:"ship_to_token,omitempty"`
	ShipCountry string     `json:"ship_to_country,omitempty"`
	ShipTo      *Address   `json:"ship_to,omitempty"`
	Recipient   *Recipient `json:"recipient,omitempty"`
	GiftNote    string     `json:"gift_note,omitempty"`
}

// Project copies out of o only the fields role sees under p. The card
// fields reach the issuer only and the inline address the carrier only,
// whatever p says, so even a policy that skipped Check cannot leak them.
func (p *Policy) Project(o *Order, role Role) Content {
	return project(o, role, p.seen(role))
}

// project is Project with the role's fields already looked up.
func project(o *Order, role Role, seen fieldSet) Content {
	var c Content
	if o == nil || role == RoleVault || !knownRole(role) {
		return c
	}
	sees := func(f fieldSet) bool { return seen&f != 0 }
	if sees(bitBuyerName) {
		c.BuyerName = o.Buyer.Name
	}
	if sees(bitBuyerPhone) {
		c.BuyerPhone = o.Buyer.Phone
	}
	if sees(bitBuyerEmail) {
		c.BuyerEmail = o.Buyer.Email
	}
	if sees(bitItems) && len(o.Items) > 0 {
		c.Items = slices.Clone(o.Items)
	}
	if sees(bitTotal) {
		c.Total = &Money{Amount: o.Total, Currency: o.Currency}
	}
	if sees(bitPlan) {
		plan := o.Plan
		c.Plan = &plan
	}
	if role == RoleIssuer {
		var card Card
		if sees(bitCardNumber) {
			card.Number = o.Card.Number
		}
		if sees(bitCardExpiry) {
			card.Expiry = o.Card.Expiry
		}
		if sees(bitCardCVC) {
			card.CVC = o.Card.CVC
		}
		if card != (Card{}) {
			c.Card = &card
		}
	}
	if sees(bitShipToToken) {
		c.ShipToken = o.ShipTo.Token
	}
	if sees(bitShipToCountry) {
		c.ShipCountry = o.ShipTo.Country
	}
	if role == RoleCarrier && sees(bitShipToAddress) && o.ShipTo.Address != nil {
		addr := *o.ShipTo.Address
		c.ShipTo = &addr
	}
	var rcpt Recipient
	if sees(bitRecipientName) {
		rcpt.Name = o.Recipient.Name
	}
	if sees(bitRecipientPhone) {
		rcpt.Phone = o.Recipient.Phone
	}
	if role == RoleCarrier && sees(bitCustomsCode) {
		rcpt.CustomsCode = o.Recipient.CustomsCode
	}
	if rcpt != (Recipient{}) {
		c.Recipient = &rcpt
	}
	if sees(bitGiftNote) {
		c.GiftNote = o.GiftNote
	}
	return c
}

// PreviewRow is one line of a policy preview: a field, the roles that see
// it, and whether the order has a value there. It never holds the value.
type PreviewRow struct {
	Field   string
	Roles   []Role
	Present bool
}

// Preview lists, for every field in model order, who would see it in o.
func (p *Policy) Preview(o *Order) []PreviewRow {
	rows := make([]PreviewRow, 0, len(fieldOrder))
	for _, f := range fieldOrder {
		row := PreviewRow{Field: f, Present: o != nil && present(o, f)}
		for _, r := range Roles {
			if p.sees(r, f) {
				row.Roles = append(row.Roles, r)
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func present(o *Order, field string) bool {
	switch field {
	case FieldBuyerName:
		return o.Buyer.Name != ""
	case FieldBuyerPhone:
		return o.Buyer.Phone != ""
	case FieldBuyerEmail:
		return o.Buyer.Email != ""
	case FieldItems:
		return len(o.Items) > 0
	case FieldTotal:
		return o.Total != 0 || o.Currency != ""
	case FieldPlan:
		return o.Plan != Plan{}
	case FieldCardNumber:
		return o.Card.Number != ""
	case FieldCardExpiry:
		return o.Card.Expiry != ""
	case FieldCardCVC:
		return o.Card.CVC != ""
	case FieldShipToToken:
		return o.ShipTo.Token != ""
	case FieldShipToAddress:
		return o.ShipTo.Address != nil
	case FieldRecipientName:
		return o.Recipient.Name != ""
	case FieldRecipientPhone:
		return o.Recipient.Phone != ""
	case FieldGiftNote:
		return o.GiftNote != ""
	case FieldCustomsCode:
		return o.Recipient.CustomsCode != ""
	case FieldShipToCountry:
		return o.ShipTo.Country != ""
	}
	return false
}

// previewRoles are the columns of WritePreview; the vault is never a policy role.
var previewRoles = []Role{RoleMerchant, RoleIssuer, RoleCarrier}

// WritePreview prints rows as an aligned table of field names and ✓ marks,
// with "(empty)" after fields the order leaves unset. It prints no values.
// Write errors are the caller's to notice on w.
func WritePreview(w io.Writer, rows []PreviewRow) {
	width := len("field")
	for _, row := range rows {
		width = max(width, utf8.RuneCountInString(row.Field))
	}
	line := func(cells ...string) {
		var b strings.Builder
		for i, c := range cells {
			b.WriteString(c)
			if i < len(cells)-1 {
				pad := len(previewRoles[max(i-1, 0)])
				if i == 0 {
					pad = width
				}
				b.WriteString(strings.Repeat(" ", max(pad-utf8.RuneCountInString(c), 0)+2))
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
	header := []string{"field"}
	for _, r := range previewRoles {
		header = append(header, string(r))
	}
	line(header...)
	for _, row := range rows {
		cells := []string{row.Field}
		for _, r := range previewRoles {
			mark := ""
			if slices.Contains(row.Roles, r) {
				mark = "✓"
			}
			cells = append(cells, mark)
		}
		if !row.Present {
			cells = append(cells, "(empty)")
		}
		line(cells...)
	}
}
