package collude

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	fp "github.com/cloudflare/circl/math/fp25519"

	"orderseal/keygen"
)

// ErrParams is returned when the colluders' keys belong to different systems.
var ErrParams = errors.New("collude: keys of different parameters")

// ShareOf is what the holder of key brings to a coalition: its row, read
// from the key file it holds (DESIGN.md §4.1), at its identity point
// x(identity) of §2.
func ShareOf(key *keygen.PartyKey) (Share, error) {
	data, err := key.MarshalJSON()
	if err != nil {
		return Share{}, err
	}
	defer clear(data)
	var w struct {
		Identity string `json:"identity"`
		Row      string `json:"row"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return Share{}, fmt.Errorf("collude: key file: %w", err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(w.Row)
	if err != nil {
		return Share{}, fmt.Errorf("collude: key file row: %w", err)
	}
	defer clear(raw)
	k := key.Params().K
	if len(raw) != k*fp.Size {
		return Share{}, fmt.Errorf("collude: key file row of %d bytes for k = %d", len(raw), k)
	}
	x, err := keygen.IdentityPoint(key.Params().System, w.Identity)
	if err != nil {
		return Share{}, err
	}
	row := make([]fp.Elt, k)
	for i := range row {
		copy(row[i][:], raw[i*fp.Size:])
	}
	return Share{Point: x, Row: row}, nil
}

// Coalition is k or more parties of one system who pooled their keys and
// hold the key center's matrix.
type Coalition struct {
	params  keygen.Params
	members []string
	m       *Matrix
}

// Collude rebuilds the matrix of the keys' system from the keys alone.
// All keys must share one set of parameters (else ErrParams); fewer than
// k distinct identities give ErrUnderdetermined.
func Collude(keys ...*keygen.PartyKey) (*Coalition, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrUnderdetermined)
	}
	params := keys[0].Params()
	shares := make([]Share, len(keys))
	members := make([]string, len(keys))
	for i, key := range keys {
		if !key.Params().Equal(params) {
			return nil, fmt.Errorf("%w: %s", ErrParams, key.Identity())
		}
		s, err := ShareOf(key)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key.Identity(), err)
		}
		shares[i], members[i] = s, key.Identity()
	}
	defer func() {
		for _, s := range shares {
			clear(s.Row)
		}
	}()
	m, err := Rebuild(params.K, shares)
	if err != nil {
		return nil, err
	}
	return &Coalition{params: params, members: members, m: m}, nil
}

// Params are the system's parameters.
func (c *Coalition) Params() keygen.Params { return c.params }

// Members are the identities whose keys were pooled, in the order given.
func (c *Coalition) Members() []string { return append([]string(nil), c.members...) }

// Matrix is the rebuilt matrix D.
func (c *Coalition) Matrix() *Matrix { return c.m }

// Forge makes the party key of any identity of the system: its row
// D·v(x(id)), as the key center would issue it.
func (c *Coalition) Forge(id string) (*keygen.PartyKey, error) {
	x, err := keygen.IdentityPoint(c.params.System, id)
	if err != nil {
		return nil, err
	}
	row := c.m.RowAt(&x)
	defer clear(row)
	return keygen.NewPartyKey(c.params, id, row)
}

// Destroy zeroes the matrix.
func (c *Coalition) Destroy() { c.m.Destroy() }
