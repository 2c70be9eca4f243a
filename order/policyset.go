package order

import (
	_ "embed"
	"fmt"
	"slices"
	"sync"

	"orderseal/internal/strictjson"
)

// PolicySet is the section policies a merchant publishes in its order
// form, one per group of destination countries and one for any other
// ("*"). The cardholder seals under the one For the destination; the
// bundle header names it (Bundle.Policy).
type PolicySet struct {
	Policies []*Policy `json:"policies"`
}

//go:embed policies_default.json
var defaultPoliciesJSON []byte

var defaultPolicies = sync.OnceValue(func() *PolicySet {
	ps, err := ParsePolicySet(defaultPoliciesJSON)
	if err != nil {
		panic("order: embedded policy set: " + err.Error())
	}
	return ps
})

// DefaultPolicies returns a copy of the embedded policy set
// (policies_default.json): the DESIGN.md §3 table for any destination; for
// KR the carrier also gets the recipient's customs code, required on
// imports, and the recipient's phone is required; for JP and CN the phone
// is required; in the EU the issuer does not get the buyer's phone.
func DefaultPolicies() *PolicySet {
	ps := defaultPolicies()
	out := &PolicySet{Policies: make([]*Policy, len(ps.Policies))}
	for i, p := range ps.Policies {
		out.Policies[i] = p.clone()
	}
	return out
}

// ParsePolicySet decodes a policy set strictly and checks it: every policy
// passes Check and has an id and countries; ids are unique, no country is
// in two policies, and exactly one policy is for "*".
func ParsePolicySet(data []byte) (*PolicySet, error) {
	var ps PolicySet
	if err := strictjson.Decode(data, &ps, 16*MaxPolicySize); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPolicy, err)
	}
	if err := ps.Check(); err != nil {
		return nil, err
	}
	return &ps, nil
}

// Check is ParsePolicySet's check of a set built in code.
func (ps *PolicySet) Check() error {
	if ps == nil || len(ps.Policies) == 0 {
		return fmt.Errorf("%w: an empty policy set", ErrPolicy)
	}
	ids, countries, any := map[string]bool{}, map[string]string{}, 0
	for _, p := range ps.Policies {
		if p == nil {
			return fmt.Errorf("%w: a null policy", ErrPolicy)
		}
		if err := p.Check(); err != nil {
			return err
		}
		if p.ID == "" || len(p.Countries) == 0 {
			return fmt.Errorf("%w: a published policy needs an id and countries", ErrPolicy)
		}
		if ids[p.ID] {
			return fmt.Errorf("%w: policy %s listed twice", ErrPolicy, p.ID)
		}
		ids[p.ID] = true
		for _, c := range p.Countries {
			if c == "*" {
				any++
				continue
			}
			if other, ok := countries[c]; ok {
				return fmt.Errorf("%w: %s is in policies %s and %s", ErrPolicy, c, other, p.ID)
			}
			countries[c] = p.ID
		}
	}
	if any != 1 {
		return fmt.Errorf("%w: exactly one policy must be for any other country (\"*\"), not %d", ErrPolicy, any)
	}
	return nil
}

// For returns the policy for destination country (ISO 3166-1 alpha-2).
func (ps *PolicySet) For(country string) *Policy {
	var fallback *Policy
	for _, p := range ps.Policies {
		if slices.Contains(p.Countries, country) {
			return p
		}
		if slices.Contains(p.Countries, "*") {
			fallback = p
		}
	}
	return fallback
}

// ByRef returns the policy ref names, if the set holds it with that very
// hash; false for an unknown id or a hash of another policy.
func (ps *PolicySet) ByRef(ref *PolicyRef) (*Policy, bool) {
	if ref == nil {
		return nil, false
	}
	for _, p := range ps.Policies {
		if p.ID == ref.ID {
			return p, p.Hash() == ref.Hash
		}
	}
	return nil, false
}
