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

// ErrEpochs is returned when the colluders' keys of an epoch suite (OS2)
// are of different epochs; it wraps ErrParams. Each epoch has its own
// matrix (DESIGN.md §2.1): pooled anyway, as shares at their own epochs'
// points, such rows are refused by Rebuild with ErrInconsistent.
var ErrEpochs = fmt.Errorf("%w: keys of different epochs", ErrParams)

// ShareOf is what the holder of key brings to a coalition: its row, read
// from the key file it holds (DESIGN.md §4.1), at its identity point —
// x(identity) of §2 (keygen.IdentityPoint) for OS1, or x(identity, epoch)
// of §2.1 (keygen.IdentityPointIn) for a key of an epoch suite, with the
// epoch the key file names.
func ShareOf(key *keygen.PartyKey) (Share, error) {
	data, err := key.MarshalJSON()
	if err != nil {
		return Share{}, err
	}
	defer clear(data)
	var w struct {
		Identity string `json:"identity"`
		Epoch    string `json:"epoch"`
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
	x, err := point(key.Params(), w.Identity, w.Epoch)
	if err != nil {
		return Share{}, err
	}
	row := make([]fp.Elt, k)
	for i := range row {
		copy(row[i][:], raw[i*fp.Size:])
	}
	return Share{Point: x, Row: row}, nil
}

// point is x(id) under params: in epoch for an epoch suite.
func point(params keygen.Params, id, epoch string) (fp.Elt, error) {
	if params.Epochs != nil {
		return keygen.IdentityPointIn(params.System, id, epoch)
	}
	if epoch != "" {
		return fp.Elt{}, fmt.Errorf("%w: an epoch (%.16q) under suite %s", ErrParams, epoch, params.Suite)
	}
	return keygen.IdentityPoint(params.System, id)
}

// Coalition is k or more parties of one system — of one epoch, under an
// epoch suite — who pooled their keys and hold the key center's matrix
// (of that epoch). Under an epoch suite it also holds what the members'
// identity-based keys are, for an attacker's SOK choices (SOK).
type Coalition struct {
	params  keygen.Params
	epoch   string
	members []string
	soks    [][]byte // the members' d1 || d2, under an epoch suite
	m       *Matrix
}

// Collude rebuilds the matrix of the keys' system (and epoch) from the
// keys alone. All keys must share one set of parameters (else ErrParams)
// and, under an epoch suite, one epoch (else ErrEpochs); fewer than k
// distinct identities give ErrUnderdetermined.
func Collude(keys ...*keygen.PartyKey) (*Coalition, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrUnderdetermined)
	}
	params, epoch := keys[0].Params(), keys[0].Epoch()
	shares := make([]Share, len(keys))
	members := make([]string, len(keys))
	for i, key := range keys {
		if !key.Params().Equal(params) {
			return nil, fmt.Errorf("%w: %s", ErrParams, key.Identity())
		}
		if key.Epoch() != epoch {
			return nil, fmt.Errorf("%w: %s is of %q, the first key of %q", ErrEpochs, key.Identity(), key.Epoch(), epoch)
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
	c := &Coalition{params: params, epoch: epoch, members: members, m: m}
	if params.Epochs != nil {
		c.soks = make([][]byte, len(keys))
		for i, key := range keys {
			c.soks[i] = key.SOK()
		}
	}
	return c, nil
}

// Params are the system's parameters.
func (c *Coalition) Params() keygen.Params { return c.params }

// Epoch is the epoch whose matrix the coalition rebuilt; "" under OS1.
func (c *Coalition) Epoch() string { return c.epoch }

// Members are the identities whose keys were pooled, in the order given.
func (c *Coalition) Members() []string { return append([]string(nil), c.members...) }

// Matrix is the rebuilt matrix D (of the coalition's epoch).
func (c *Coalition) Matrix() *Matrix { return c.m }

// Row is the Blom row of any identity of the system (in the coalition's
// epoch): D·v(x(id)), as the key center computes it. The caller clears it.
func (c *Coalition) Row(id string) ([]fp.Elt, error) {
	x, err := point(c.params, id, c.epoch)
	if err != nil {
		return nil, err
	}
	return c.m.RowAt(&x), nil
}

// Forge makes the party key of any identity of an OS1 system: its row
// D·v(x(id)), as the key center would issue it. Under an epoch suite the
// row is only a part of the key, and the other — d1 = s·H1(id), d2 =
// s·H2(id) — is beyond the coalition: Forge returns ErrSOK, and ForgeWith
// builds the key with an identity-based key of the attacker's choosing.
func (c *Coalition) Forge(id string) (*keygen.PartyKey, error) { return c.ForgeWith(id, nil) }

// ForgeWith makes the party key of id with its genuine Blom row and, under
// an epoch suite, the identity-based key that sok chooses (nil: ErrSOK).
// Under OS1 sok must be nil, and ForgeWith is Forge.
func (c *Coalition) ForgeWith(id string, sok SOK) (*keygen.PartyKey, error) {
	row, err := c.Row(id)
	if err != nil {
		return nil, err
	}
	defer clear(row)
	if c.params.Epochs == nil {
		if sok != nil {
			return nil, fmt.Errorf("%w: suite %s has no identity-based key", ErrParams, c.params.Suite)
		}
		return keygen.NewPartyKey(c.params, id, row)
	}
	if sok == nil {
		return nil, fmt.Errorf("%w (%s)", ErrSOK, id)
	}
	b, err := sok(c, id)
	if err != nil {
		return nil, err
	}
	defer clear(b)
	return keygen.NewEpochPartyKey(c.params, id, c.epoch, row, b)
}

// Destroy zeroes the matrix and the members' identity-based keys.
func (c *Coalition) Destroy() {
	c.m.Destroy()
	for _, s := range c.soks {
		clear(s)
	}
}
