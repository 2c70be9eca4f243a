package order

import (
	"orderseal/internal/strictjson"
	"orderseal/keygen"
)

// Role names a party; a bundle carries sections for four of them.
type Role = keygen.Role

// The roles a bundle can carry a section for.
const (
	RoleMerchant = keygen.RoleMerchant
	RoleIssuer   = keygen.RoleIssuer
	RoleCarrier  = keygen.RoleCarrier
	RoleVault    = keygen.RoleVault
)

// Roles lists the roles in ascending byte order: carrier, issuer, merchant, vault.
// It is the order DESIGN.md §4.1 uses in the canonical header.
var Roles = []Role{RoleCarrier, RoleIssuer, RoleMerchant, RoleVault}

// knownRole reports whether r is one of Roles.
func knownRole(r Role) bool {
	switch r {
	case RoleMerchant, RoleIssuer, RoleCarrier, RoleVault:
		return true
	}
	return false
}

// MaxOrderSize is the largest order JSON, in bytes, that ParseOrder accepts.
const MaxOrderSize = 64 << 10

// Order is what a cardholder composes before it is split into sections.
// Amounts are integer minor units of Currency; there are no floats for money.
type Order struct {
	Buyer     Buyer     `json:"buyer"`
	Card      Card      `json:"card"`
	Items     []Item    `json:"items" validate:"required,min=1,max=100,dive"`
	Total     int64     `json:"total" validate:"gt=0"` // integer minor units of Currency
	Currency  string    `json:"currency" validate:"required,iso4217"`
	Plan      Plan      `json:"plan"`
	ShipTo    ShipTo    `json:"ship_to"`
	Recipient Recipient `json:"recipient"`
	GiftNote  string    `json:"gift_note,omitempty" validate:"max=500,note"`
}

// Buyer is the person paying.
type Buyer struct {
	Name  string `json:"name" validate:"required,max=200,text"`
	Phone string `json:"phone" validate:"required,startswith=+,e164"` // E.164, leading "+"
	Email string `json:"email" validate:"required,max=254,email"`
}

// Card is the payment card. CVC is optional and travels only inside the
// issuer's sealed section: it is never persisted, by any party, anywhere.
type Card struct {
	Number string `json:"number,omitempty" validate:"required,min=12,max=19,number,luhn_checksum"` // digits only
	Expiry string `json:"expiry,omitempty" validate:"required"`                                    // "YYYY-MM", checked in Validate
	CVC    string `json:"cvc,omitempty" validate:"omitempty,min=3,max=4,number"`                   // never persisted
}

// Item is one order line.
type Item struct {
	SKU       string `json:"sku" validate:"required,sku"`
	Name      string `json:"name" validate:"required,max=200,text"`
	Qty       int64  `json:"qty" validate:"min=1,max=10000"`
	UnitPrice int64  `json:"unit_price" validate:"min=0,max=1000000000000"` // minor units
}

// Plan is the payment plan.
type Plan struct {
	Installments int `json:"installments" validate:"min=1,max=60"`
}

// ShipTo is the destination: a vault token, or an inline address for an
// unregistered destination. Exactly one of the two is set.
type ShipTo struct {
	Token   string   `json:"token,omitempty" validate:"omitempty,shiptoken"`
	Address *Address `json:"address,omitempty" validate:"omitempty"`
	// Country is the destination country alone, when the cardholder tells
	// it (the section policy decides who sees it); an inline address's own.
	Country string `json:"country,omitempty" validate:"omitempty,iso3166_1_alpha2"`
}

// Address is a postal address. Country is ISO 3166-1 alpha-2, upper case.
type Address struct {
	Name       string `json:"name" validate:"required,max=200,text"`
	Line1      string `json:"line1" validate:"required,max=200,text"`
	Line2      string `json:"line2,omitempty" validate:"omitempty,max=200,text"`
	City       string `json:"city" validate:"required,max=200,text"`
	Region     string `json:"region,omitempty" validate:"omitempty,max=200,text"`
	PostalCode string `json:"postal_code,omitempty" validate:"omitempty,max=20,text"`
	Country    string `json:"country" validate:"required,iso3166_1_alpha2"`
}

// Recipient is the person receiving the parcel.
type Recipient struct {
	Name  string `json:"name,omitempty" validate:"required,max=200,text"`
	Phone string `json:"phone,omitempty" validate:"required,startswith=+,e164"`
	// CustomsCode is the recipient's personal customs clearance code,
	// which some destinations need on imports (KR: P and 12 digits).
	CustomsCode string `json:"customs_code,omitempty" validate:"omitempty,customs"`
}

// Money is an amount in integer minor units of an ISO 4217 currency.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// ParseOrder decodes order JSON strictly: unknown fields, duplicate keys,
// trailing data and input over MaxOrderSize are refused. It does not
// validate; call Validate. Errors wrap strictjson.ErrMalformed and
// ErrInvalidOrder.
func ParseOrder(data []byte) (*Order, error) {
	var o Order
	if err := strictjson.Decode(data, &o, MaxOrderSize); err != nil {
		return nil, &parseError{err}
	}
	return &o, nil
}

// parseError reads as the decoder's own message but also counts as an
// invalid order for callers that check only ErrInvalidOrder.
type parseError struct{ err error }

func (e *parseError) Error() string   { return "order: " + e.err.Error() }
func (e *parseError) Unwrap() []error { return []error{e.err, ErrInvalidOrder} }
