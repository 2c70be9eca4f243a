// Package compose holds what a cardholder does with a merchant's signed
// order form before sealing to it (DESIGN.md §5 Hardening, §6.3): check the
// parties it names and choose the section policy for the destination. The
// cardholder CLI and the browser checkout (merchant/checkout) share it.
package compose

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"orderseal/keygen"
	merchantapi "orderseal/merchant/api"
	"orderseal/order"
	"orderseal/order/address"
	"orderseal/suite"
)

// Errors of the checks a cardholder runs on a signed form before sealing
// to it; the CLI and the browser checkout share them.
var (
	// ErrFormParty: the form names a party that is no identity of its role.
	ErrFormParty = errors.New("the order form names a party wrongly")
	// ErrUnvouched: under a suite with a directory, a party of the form has
	// no entry signed by the cardholder's key center.
	ErrUnvouched = errors.New("no directory entry signed by your key center")
	// ErrCustomsCode: a customs code the destination's policy sends to nobody.
	ErrCustomsCode = errors.New("leave the customs code out")
)

// PartyError is a party of the form that the cardholder must not seal to.
type PartyError struct {
	Merchant string
	Party    FormParty
	Err      error // ErrFormParty or ErrUnvouched
}

func (e *PartyError) Error() string {
	if e.Err == ErrUnvouched {
		return fmt.Sprintf("the order form's %s %s has %v", e.Party.Role, e.Party.ID, e.Err)
	}
	return fmt.Sprintf("the order form of %s names %q as its %s", e.Merchant, e.Party.ID, e.Party.Role)
}

func (e *PartyError) Unwrap() error { return e.Err }

// FormParty is one party an order form names, in the role it names it.
type FormParty struct {
	Role keygen.Role
	ID   string
}

// Parties lists every party the form names: the merchant, its issuers,
// carrier and vault.
func Parties(f *merchantapi.OrderForm) []FormParty {
	ps := []FormParty{{keygen.RoleMerchant, f.Merchant}}
	for _, id := range f.Issuers {
		ps = append(ps, FormParty{keygen.RoleIssuer, id})
	}
	ps = append(ps, FormParty{keygen.RoleCarrier, f.Carrier})
	if f.Vault != "" {
		ps = append(ps, FormParty{keygen.RoleVault, f.Vault})
	}
	return ps
}

// CheckParties checks that each party of the form is a valid identity of
// the role the form gives it and, under a suite with a directory (OS2,
// the suite of params), that each has an entry in the form that verifies
// under params at now (DESIGN.md §5 Hardening). It reports whether the
// suite has a directory: without one (OS1) the caller vouches for the
// parties some other way.
func CheckParties(f *merchantapi.OrderForm, params keygen.Params, now time.Time) (directory bool, err error) {
	for _, p := range Parties(f) {
		if keygen.ValidateIdentity(p.ID) != nil || keygen.RoleOf(p.ID) != p.Role {
			return false, &PartyError{f.Merchant, p, ErrFormParty}
		}
	}
	st, err := suite.ByName(params.Suite)
	if err != nil {
		return false, err
	}
	if st.EncapSize() == 0 {
		return false, nil
	}
	for _, p := range Parties(f) {
		if !signedEntry(st, params, f.Directory, p.ID, now) {
			return true, &PartyError{f.Merchant, p, ErrUnvouched}
		}
	}
	return true, nil
}

// signedEntry reports whether dir holds an entry for id that verifies.
func signedEntry(st suite.Suite, params keygen.Params, dir []*keygen.DirectoryEntry, id string, now time.Time) bool {
	for _, e := range dir {
		if e != nil && e.Identity == id && st.VerifyEntry(params, e, now) == nil {
			return true
		}
	}
	return false
}

// PolicyFor is the form's section policy for destination dest ("" for an
// unknown one; the built-in default when the form publishes none), with o
// checked against what it requires for a parcel from the form's ship-from
// country, and o's customs code against the destination.
func PolicyFor(f *merchantapi.OrderForm, o *order.Order, dest string) (*order.Policy, error) {
	if f.Policies == nil {
		return order.DefaultPolicy(), nil
	}
	if err := f.Policies.Check(); err != nil {
		return nil, fmt.Errorf("%s's order form: %w", f.Merchant, err)
	}
	pol := f.Policies.For(dest) // dest "": the policy for any other country
	if err := pol.CheckOrder(o, f.ShipFrom, dest); err != nil {
		return nil, err
	}
	if c := o.Recipient.CustomsCode; c != "" {
		if err := address.CheckCustomsCode(dest, c); err != nil {
			return nil, err
		}
		if !slices.Contains(pol.Fields[order.FieldCustomsCode], order.RoleCarrier) {
			return nil, fmt.Errorf("policy %s sends no customs code: %w", pol.ID, ErrCustomsCode)
		}
	}
	return pol, nil
}
