package order

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"orderseal/internal/strictjson"
)

func TestDefaultPolicyChecks(t *testing.T) {
	p := DefaultPolicy()
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	// Every field is assigned to someone in the default table, but the
	// customs code and the destination country alone: only a published
	// policy that needs them sends them.
	for _, f := range PolicyFields() {
		if len(p.Fields[f]) == 0 && f != FieldCustomsCode && f != FieldShipToCountry {
			t.Errorf("default policy assigns %s to nobody", f)
		}
	}
	// DefaultPolicy hands out copies: changing one changes no other.
	p.Fields[FieldCardNumber] = append(p.Fields[FieldCardNumber], RoleMerchant)
	delete(p.Fields, FieldItems)
	if err := DefaultPolicy().Check(); err != nil {
		t.Fatalf("default policy changed through a copy: %v", err)
	}
}

// TestVisibleMatchesDesign is DESIGN.md §3's table, written out by hand.
func TestVisibleMatchesDesign(t *testing.T) {
	want := map[Role][]string{
		RoleMerchant: {"buyer.email", "buyer.name", "buyer.phone", "items", "plan", "ship_to.token", "total"},
		RoleIssuer:   {"buyer.name", "buyer.phone", "card.cvc", "card.expiry", "card.number", "plan", "total"},
		RoleCarrier:  {"gift_note", "recipient.name", "recipient.phone", "ship_to.address", "ship_to.token"},
		RoleVault:    nil,
	}
	p := DefaultPolicy()
	for _, r := range Roles {
		if got := p.Visible(r); !slices.Equal(got, want[r]) {
			t.Errorf("Visible(%s) = %q, want %q", r, got, want[r])
		}
	}
	if got := p.Visible("florist"); len(got) != 0 {
		t.Errorf("unknown role sees %q", got)
	}
}

// sectionJSON projects o for every role and marshals the result.
func sectionJSON(t *testing.T, p *Policy, o *Order) map[Role][]byte {
	t.Helper()
	out := map[Role][]byte{}
	for _, r := range Roles {
		b, err := json.Marshal(p.Project(o, r))
		if err != nil {
			t.Fatal(err)
		}
		out[r] = b
	}
	return out
}

func TestProjectDefault(t *testing.T) {
	o := exampleOrder(t, "order.json")
	a := o.ShipTo.Address
	// value → the only roles whose section may contain it
	where := []struct {
		value string
		roles []Role
	}{
		{o.Card.Number, []Role{RoleIssuer}},
		{`"cvc":"` + o.Card.CVC + `"`, []Role{RoleIssuer}},
		{`"expiry":"` + o.Card.Expiry + `"`, []Role{RoleIssuer}},
		{a.Line1, []Role{RoleCarrier}},
		{a.Line2, []Role{RoleCarrier}},
		{`"postal_code":"` + a.PostalCode + `"`, []Role{RoleCarrier}},
		{o.Buyer.Email, []Role{RoleMerchant}},
		{o.Buyer.Phone, []Role{RoleMerchant, RoleIssuer}},
		{o.Recipient.Phone, []Role{RoleCarrier}},
		{o.Items[0].SKU, []Role{RoleMerchant}},
		{`"currency":"EUR"`, []Role{RoleMerchant, RoleIssuer}},
		{`"installments":3`, []Role{RoleMerchant, RoleIssuer}},
		{"Happy birthday", []Role{RoleCarrier}},
	}
	sections := sectionJSON(t, DefaultPolicy(), o)
	for _, w := range where {
		for _, r := range Roles {
			has := bytes.Contains(sections[r], []byte(w.value))
			if has != slices.Contains(w.roles, r) {
				t.Errorf("%s section contains %q: %v, want %v\n%s", r, w.value, has, !has, sections[r])
			}
		}
	}
	if string(sections[RoleVault]) != "{}" {
		t.Errorf("vault content = %s, want {}", sections[RoleVault])
	}

	issuer := DefaultPolicy().Project(o, RoleIssuer)
	if issuer.Total == nil || *issuer.Total != (Money{Amount: 3448, Currency: "EUR"}) {
		t.Errorf("issuer total = %+v", issuer.Total)
	}
	if issuer.Card == nil || *issuer.Card != o.Card {
		t.Errorf("issuer card = %+v", issuer.Card)
	}
	carrier := DefaultPolicy().Project(o, RoleCarrier)
	if carrier.ShipTo == nil || *carrier.ShipTo != *a || carrier.ShipTo == a {
		t.Errorf("carrier address is not a copy of the order's: %+v", carrier.ShipTo)
	}
}

func TestProjectToken(t *testing.T) {
	o := exampleOrder(t, "order_token.json")
	sections := sectionJSON(t, DefaultPolicy(), o)
	for _, r := range Roles {
		has := bytes.Contains(sections[r], []byte(o.ShipTo.Token))
		if want := r == RoleMerchant || r == RoleCarrier; has != want {
			t.Errorf("%s section has the token: %v, want %v", r, has, want)
		}
		if bytes.Contains(sections[r], []byte(`"ship_to"`)) {
			t.Errorf("%s section has an address for a token order: %s", r, sections[r])
		}
		if bytes.Contains(sections[r], []byte(`"cvc"`)) {
			t.Errorf("%s section has a cvc the order did not carry: %s", r, sections[r])
		}
	}
}

// TestFieldSetBits: each bit project tests stands for the field of the same
// name, so a policy granting one field yields exactly that field's bit.
func TestFieldSetBits(t *testing.T) {
	cases := []struct {
		field string
		bit   fieldSet
	}{
		{FieldBuyerName, bitBuyerName},
		{FieldBuyerPhone, bitBuyerPhone},
		{FieldBuyerEmail, bitBuyerEmail},
		{FieldItems, bitItems},
		{FieldTotal, bitTotal},
		{FieldPlan, bitPlan},
		{FieldCardNumber, bitCardNumber},
		{FieldCardExpiry, bitCardExpiry},
		{FieldCardCVC, bitCardCVC},
		{FieldShipToToken, bitShipToToken},
		{FieldShipToAddress, bitShipToAddress},
		{FieldRecipientName, bitRecipientName},
		{FieldRecipientPhone, bitRecipientPhone},
		{FieldGiftNote, bitGiftNote},
		{FieldCustomsCode, bitCustomsCode},
		{FieldShipToCountry, bitShipToCountry},
	}
	if len(cases) != len(PolicyFields()) {
		t.Fatalf("%d bits for %d fields", len(cases), len(PolicyFields()))
	}
	for _, c := range cases {
		p := &Policy{Fields: map[string][]Role{c.field: {RoleCarrier}}}
		if got := p.seen(RoleCarrier); got != c.bit {
			t.Errorf("%s: bits %014b, want %014b", c.field, got, c.bit)
		}
		if got := p.seen(RoleMerchant); got != 0 {
			t.Errorf("%s: merchant sees %014b", c.field, got)
		}
	}
}

// TestProjectEnforcesInvariantsUnchecked: even a policy that was never
// checked cannot put the card or the address in the wrong section.
func TestProjectEnforcesInvariantsUnchecked(t *testing.T) {
	o := exampleOrder(t, "order.json")
	all := []Role{RoleMerchant, RoleIssuer, RoleCarrier, RoleVault}
	p := &Policy{Fields: map[string][]Role{}}
	for _, f := range PolicyFields() {
		p.Fields[f] = all
	}
	if err := p.Check(); !errors.Is(err, ErrPolicy) {
		t.Fatalf("policy giving everything to everyone passed Check: %v", err)
	}
	sections := sectionJSON(t, p, o)
	for _, r := range Roles {
		card := bytes.Contains(sections[r], []byte(o.Card.Number))
		addr := bytes.Contains(sections[r], []byte(o.ShipTo.Address.Line1))
		if card != (r == RoleIssuer) || addr != (r == RoleCarrier) {
			t.Errorf("%s: card %v, address %v: %s", r, card, addr, sections[r])
		}
	}
}

func TestPolicyRefuses(t *testing.T) {
	cases := []struct {
		name string
		mut  func(*Policy)
		want string // part of the error message
	}{
		{"card number to merchant", func(p *Policy) { p.Fields[FieldCardNumber] = []Role{RoleIssuer, RoleMerchant} }, "card.number"},
		{"card expiry to carrier", func(p *Policy) { p.Fields[FieldCardExpiry] = []Role{RoleIssuer, RoleCarrier} }, "card.expiry"},
		{"cvc to merchant", func(p *Policy) { p.Fields[FieldCardCVC] = []Role{RoleMerchant} }, "card.cvc"},
		{"address to issuer", func(p *Policy) { p.Fields[FieldShipToAddress] = []Role{RoleCarrier, RoleIssuer} }, "ship_to.address"},
		{"address to merchant", func(p *Policy) { p.Fields[FieldShipToAddress] = []Role{RoleMerchant, RoleCarrier} }, "ship_to.address"},
		{"unknown field", func(p *Policy) { p.Fields["card.pin"] = []Role{RoleIssuer} }, "unknown field"},
		{"unknown role", func(p *Policy) { p.Fields[FieldGiftNote] = []Role{"florist"} }, "unknown role"},
		{"empty role", func(p *Policy) { p.Fields[FieldGiftNote] = []Role{""} }, "unknown role"},
		{"role in upper case", func(p *Policy) { p.Fields[FieldItems] = []Role{"Merchant"} }, "unknown role"},
		{"token to vault", func(p *Policy) { p.Fields[FieldShipToToken] = []Role{RoleMerchant, RoleCarrier, RoleVault} }, "vault"},
		{"name to vault", func(p *Policy) { p.Fields[FieldBuyerName] = []Role{RoleVault} }, "vault"},
		{"duplicate role", func(p *Policy) { p.Fields[FieldPlan] = []Role{RoleMerchant, RoleIssuer, RoleMerchant} }, "twice"},
		{"merchant without items", func(p *Policy) { delete(p.Fields, FieldItems) }, "merchant must receive items"},
		{"merchant without total", func(p *Policy) { p.Fields[FieldTotal] = []Role{RoleIssuer} }, "merchant must receive total"},
		{"issuer without total", func(p *Policy) { p.Fields[FieldTotal] = []Role{RoleMerchant} }, "issuer must receive total"},
		{"issuer without card", func(p *Policy) { p.Fields[FieldCardNumber] = nil }, "issuer must receive card.number"},
		{"carrier without address", func(p *Policy) { delete(p.Fields, FieldShipToAddress) }, "carrier must receive ship_to.address"},
		{"carrier without token", func(p *Policy) { p.Fields[FieldShipToToken] = []Role{RoleMerchant} }, "carrier must receive ship_to.token"},
		{"empty", func(p *Policy) { p.Fields = nil }, "merchant must receive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := DefaultPolicy()
			c.mut(p)
			err := p.Check()
			if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Check() = %v, want ErrPolicy mentioning %q", err, c.want)
			}
			// The same policy fails through ParsePolicy too.
			data, jerr := json.Marshal(p)
			if jerr != nil {
				t.Fatal(jerr)
			}
			if _, err := ParsePolicy(data); !errors.Is(err, ErrPolicy) {
				t.Fatalf("ParsePolicy accepted it: %v", err)
			}
		})
	}
	var nilPolicy *Policy
	if err := nilPolicy.Check(); !errors.Is(err, ErrPolicy) {
		t.Fatalf("nil policy: %v", err)
	}
}

// policyFileErrors is why each testdata/policy_bad_*.json must fail.
var policyFileErrors = map[string]string{
	"policy_bad_address_to_issuer.json":  "ship_to.address may go to the carrier only",
	"policy_bad_card_to_merchant.json":   "card.number may go to the issuer only",
	"policy_bad_carrier_no_address.json": "carrier must receive ship_to.address",
	"policy_bad_cvc_to_carrier.json":     "card.cvc may go to the issuer only",
	"policy_bad_duplicate_key.json":      "duplicate key",
	"policy_bad_duplicate_role.json":     "listed twice",
	"policy_bad_empty.json":              "merchant must receive items",
	"policy_bad_issuer_no_card.json":     "issuer must receive card.number",
	"policy_bad_merchant_no_items.json":  "merchant must receive items",
	"policy_bad_merchant_no_total.json":  "merchant must receive total",
	"policy_bad_unknown_field.json":      `unknown field "card.pin"`,
	"policy_bad_unknown_key.json":        `unknown field "v"`,
	"policy_bad_unknown_role.json":       `unknown role "florist"`,
	"policy_bad_vault.json":              "vault",
}

func TestPolicyFiles(t *testing.T) {
	good, err := filepath.Glob("testdata/policy_ok_*.json")
	if err != nil || len(good) == 0 {
		t.Fatalf("no testdata/policy_ok_*.json: %v", err)
	}
	o := exampleOrder(t, "order.json")
	for _, name := range good {
		t.Run(filepath.Base(name), func(t *testing.T) {
			p, err := ParsePolicy(readTestdata(t, filepath.Base(name)))
			if err != nil {
				t.Fatal(err)
			}
			sections := sectionJSON(t, p, o)
			for _, r := range Roles {
				if bytes.Contains(sections[r], []byte(o.Card.Number)) != (r == RoleIssuer) {
					t.Errorf("%s: card number placement wrong: %s", r, sections[r])
				}
			}
		})
	}
	// A loaded policy does what its file says.
	p, err := ParsePolicy(readTestdata(t, "policy_ok_no_email_no_cvc.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Visible(RoleMerchant); slices.Contains(got, FieldBuyerEmail) || slices.Contains(got, FieldShipToToken) {
		t.Errorf("merchant sees %q", got)
	}
	if c := p.Project(o, RoleIssuer); c.Card == nil || c.Card.CVC != "" || c.Card.Number == "" {
		t.Errorf("issuer card = %+v, want number without cvc", c.Card)
	}
	if c := p.Project(o, RoleCarrier); c.GiftNote != "" {
		t.Errorf("carrier got the gift note the policy drops")
	}

	bad, err := filepath.Glob("testdata/policy_bad_*.json")
	if err != nil || len(bad) != len(policyFileErrors) {
		t.Fatalf("found %d testdata/policy_bad_*.json, policyFileErrors lists %d (%v)", len(bad), len(policyFileErrors), err)
	}
	for _, name := range bad {
		base := filepath.Base(name)
		t.Run(base, func(t *testing.T) {
			want, ok := policyFileErrors[base]
			if !ok {
				t.Fatalf("%s is not listed in policyFileErrors", base)
			}
			_, err := ParsePolicy(readTestdata(t, base))
			if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), want) {
				t.Fatalf("ParsePolicy = %v, want ErrPolicy mentioning %q", err, want)
			}
		})
	}
}

func TestParsePolicyMalformed(t *testing.T) {
	for _, in := range []string{"", "null x", `{"fields":[]}`, `{"fields":{"items":"merchant"}}`, strings.Repeat(" ", MaxPolicySize+1)} {
		_, err := ParsePolicy([]byte(in))
		if !errors.Is(err, ErrPolicy) || !errors.Is(err, strictjson.ErrMalformed) {
			t.Errorf("ParsePolicy(%.20q) = %v, want ErrPolicy and ErrMalformed", in, err)
		}
	}
}

func TestPreview(t *testing.T) {
	o := exampleOrder(t, "order_token.json")
	rows := DefaultPolicy().Preview(o)
	if len(rows) != len(PolicyFields()) {
		t.Fatalf("%d rows, want %d", len(rows), len(PolicyFields()))
	}
	byField := map[string]PreviewRow{}
	for _, r := range rows {
		byField[r.Field] = r
	}
	for field, present := range map[string]bool{
		FieldCardNumber: true, FieldCardCVC: false, FieldShipToToken: true,
		FieldShipToAddress: false, FieldGiftNote: false, FieldItems: true, FieldTotal: true,
	} {
		if byField[field].Present != present {
			t.Errorf("%s present = %v, want %v", field, byField[field].Present, present)
		}
	}
	if got := byField[FieldTotal].Roles; !slices.Equal(got, []Role{RoleIssuer, RoleMerchant}) {
		t.Errorf("total roles = %v", got)
	}

	var b bytes.Buffer
	WritePreview(&b, rows)
	out := b.String()
	want := `field                   merchant  issuer  carrier
buyer.name              ✓         ✓
buyer.phone             ✓         ✓
buyer.email             ✓
items                   ✓
total                   ✓         ✓
plan                    ✓         ✓
card.number                       ✓
card.expiry                       ✓
card.cvc                          ✓                (empty)
ship_to.token           ✓                 ✓
ship_to.address                           ✓        (empty)
recipient.name                            ✓
recipient.phone                           ✓
gift_note                                 ✓        (empty)
recipient.customs_code                             (empty)
ship_to.country                                    (empty)
`
	if out != want {
		t.Errorf("WritePreview:\n%s\nwant:\n%s", out, want)
	}
	// Names only: no value of the order appears.
	for _, v := range []string{o.Card.Number, o.Card.Expiry, o.Buyer.Name, o.Buyer.Phone, o.Buyer.Email,
		o.ShipTo.Token, o.Recipient.Name, o.Recipient.Phone, "EUR", "3448"} {
		if strings.Contains(out, v) {
			t.Errorf("preview contains the value %q", v)
		}
	}
}

func FuzzParsePolicy(f *testing.F) {
	seedFiles(f, "policy_*.json")
	data, err := os.ReadFile("policy_default.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	o, err := ParseOrder(readTestdata(f, "order.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePolicy(data)
		if err != nil {
			if !errors.Is(err, ErrPolicy) {
				t.Fatalf("error does not wrap ErrPolicy: %v", err)
			}
			return
		}
		// Whatever passed: the invariants hold in the projected sections.
		for _, r := range Roles {
			b, err := json.Marshal(p.Project(o, r))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(o.Card.Number)) != (r == RoleIssuer) {
				t.Fatalf("%s: card number placement wrong: %s", r, b)
			}
			if bytes.Contains(b, []byte(o.ShipTo.Address.Line1)) != (r == RoleCarrier) {
				t.Fatalf("%s: address placement wrong: %s", r, b)
			}
			if r == RoleVault && len(p.Visible(r)) != 0 {
				t.Fatalf("vault sees %q", p.Visible(r))
			}
		}
		// And it round-trips.
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := ParsePolicy(again)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		for _, r := range Roles {
			if !slices.Equal(p.Visible(r), p2.Visible(r)) {
				t.Fatalf("%s: %q became %q", r, p.Visible(r), p2.Visible(r))
			}
		}
	})
}
