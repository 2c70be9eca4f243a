package keygen

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	fp "github.com/cloudflare/circl/math/fp25519"

	"orderseal/internal/secfile"
	"orderseal/internal/strictjson"
	"orderseal/internal/wire"
	"orderseal/keygen/internal/field"
)

// ErrKeyFile is wrapped by every structural error in a party key file.
var ErrKeyFile = errors.New("invalid party key file")

// maxKeyFile bounds a key file: MaxK elements in base64 plus the envelope
// (the params, and under an epoch suite the identity-based key).
var maxKeyFile = base64.RawURLEncoding.EncodedLen(MaxK*fp.Size) + maxParamsFile

// PartyKey is one party's secret row of the key center's matrix, bound to
// one identity. It is not comparable with ==; use Equal.
type PartyKey struct {
	params   Params
	identity string
	row      []fp.Elt
	// Under an epoch suite (params.Epochs set): the epoch the key is for,
	// and the identity-based key d1 = s·H1(id) || d2 = s·H2(id).
	epoch string
	sok   []byte
}

type partyKeyWire struct {
	V        int         `json:"v"`
	Suite    string      `json:"suite"`
	System   string      `json:"system"`
	K        int         `json:"k"`
	Epochs   *epochsWire `json:"epochs,omitempty"`
	Identity string      `json:"identity"`
	Epoch    string      `json:"epoch,omitempty"`
	Row      string      `json:"row"`
	SOK      string      `json:"sok,omitempty"`
}

// Identity is the public identity the key is bound to.
func (k *PartyKey) Identity() string { return k.identity }

// Params returns the key center parameters the key belongs to.
func (k *PartyKey) Params() Params { return k.params }

// Epoch is the epoch the key is for; "" under a suite without epochs (OS1).
func (k *PartyKey) Epoch() string { return k.epoch }

// SOK is a copy of the identity-based key d1 || d2 (SOKG1Size + SOKG2Size
// bytes, compressed) under an epoch suite, nil otherwise. The caller clears it.
func (k *PartyKey) SOK() []byte { return append([]byte(nil), k.sok...) }

// Equal compares two party keys in constant time (for equal-size rows).
func (k *PartyKey) Equal(o *PartyKey) bool {
	if !k.params.Equal(o.params) || k.identity != o.identity || k.epoch != o.epoch ||
		len(k.row) != len(o.row) || len(k.sok) != len(o.sok) {
		return false
	}
	var acc int
	for i := range k.row {
		acc |= subtle.ConstantTimeCompare(k.row[i][:], o.row[i][:]) ^ 1
	}
	acc |= subtle.ConstantTimeCompare(k.sok, o.sok) ^ 1
	return acc == 0
}

// Destroy zeroes the row and the identity-based key.
func (k *PartyKey) Destroy() {
	clear(k.row)
	clear(k.sok)
}

// MarshalJSON writes the key file of DESIGN.md §4.1.
//
// The bytes are those encoding/json writes for partyKeyWire, built
// directly: nothing in the file needs escaping (identity syntax and
// base64url see to it), and the row, almost all of the file, is encoded
// once, into the output, instead of through an intermediate string that
// could not be cleared. An identity that would need escaping (only a
// hand-built PartyKey can hold one) goes through encoding/json.
func (k *PartyKey) MarshalJSON() ([]byte, error) {
	raw := make([]byte, len(k.row)*fp.Size)
	defer clear(raw)
	for i := range k.row {
		field.Encode(raw[i*fp.Size:], &k.row[i])
	}
	if !jsonPlain(k.identity) || !jsonPlain(k.epoch) {
		var sok string
		if k.sok != nil {
			sok = wire.B64(k.sok)
		}
		return json.Marshal(partyKeyWire{V: 1, Suite: k.params.Suite, System: k.params.SystemHex(),
			K: k.params.K, Epochs: k.params.Epochs.wire(), Identity: k.identity, Epoch: k.epoch,
			Row: wire.B64(raw), SOK: sok})
	}
	var epochs []byte
	if k.params.Epochs != nil {
		var err error
		if epochs, err = json.Marshal(k.params.Epochs.wire()); err != nil {
			return nil, err
		}
	}
	buf := make([]byte, 0, 160+len(k.params.Suite)+len(epochs)+len(k.identity)+len(k.epoch)+
		base64.RawURLEncoding.EncodedLen(len(raw))+base64.RawURLEncoding.EncodedLen(len(k.sok)))
	buf = append(buf, `{"v":1,"suite":"`...)
	buf = append(buf, k.params.Suite...)
	buf = append(buf, `","system":"`...)
	buf = append(buf, k.params.SystemHex()...)
	buf = append(buf, `","k":`...)
	buf = strconv.AppendInt(buf, int64(k.params.K), 10)
	if epochs != nil {
		buf = append(buf, `,"epochs":`...)
		buf = append(buf, epochs...)
	}
	buf = append(buf, `,"identity":"`...)
	buf = append(buf, k.identity...)
	if k.epoch != "" {
		buf = append(buf, `","epoch":"`...)
		buf = append(buf, k.epoch...)
	}
	buf = append(buf, `","row":"`...)
	buf = base64.RawURLEncoding.AppendEncode(buf, raw)
	if k.sok != nil {
		buf = append(buf, `","sok":"`...)
		buf = base64.RawURLEncoding.AppendEncode(buf, k.sok)
	}
	buf = append(buf, `"}`...)
	return buf, nil
}

// jsonPlain reports whether encoding/json writes s inside quotes unchanged:
// printable ASCII other than the quote, the backslash and the characters
// it escapes for HTML.
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// ParsePartyKey reads a key file strictly: unknown or duplicate fields,
// a row of the wrong length and non-canonical field elements are refused.
func ParsePartyKey(data []byte) (*PartyKey, error) {
	var w partyKeyWire
	if err := strictjson.Decode(data, &w, maxKeyFile); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	params, err := paramsWire{V: w.V, Suite: w.Suite, System: w.System, K: w.K, Epochs: w.Epochs}.params()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	if err := ValidateIdentity(w.Identity); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	var sok []byte
	switch {
	case params.Epochs == nil && (w.Epoch != "" || w.SOK != ""):
		return nil, fmt.Errorf("%w: epoch and sok belong to keys of an epoch suite only", ErrKeyFile)
	case params.Epochs != nil:
		if _, _, err := params.Epochs.Span(w.Epoch); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
		}
		if sok, err = wire.UnB64Len(w.SOK, SOKG1Size+SOKG2Size); err != nil {
			return nil, fmt.Errorf("%w: sok must be %d bytes of base64url: %w", ErrKeyFile, SOKG1Size+SOKG2Size, err)
		}
	}
	raw, err := wire.UnB64Len(w.Row, params.K*fp.Size)
	if err != nil {
		return nil, fmt.Errorf("%w: row must be k×32 bytes of base64url: %w", ErrKeyFile, err)
	}
	defer clear(raw)
	row := make([]fp.Elt, params.K)
	for i := range row {
		if row[i], err = field.Decode(raw[i*fp.Size : (i+1)*fp.Size]); err != nil {
			clear(row)
			return nil, fmt.Errorf("%w: row element %d: %w", ErrKeyFile, i, err)
		}
	}
	return &PartyKey{params: params, identity: w.Identity, row: row, epoch: w.Epoch, sok: sok}, nil
}

// NewPartyKey makes the party key of identity from its row, as the key
// center computes it (keygen/center): the identity must be valid, the row
// k canonical elements. The key holds a copy of row.
func NewPartyKey(params Params, identity string, row []fp.Elt) (*PartyKey, error) {
	if err := params.Check(); err != nil {
		return nil, err
	}
	if err := ValidateIdentity(identity); err != nil {
		return nil, err
	}
	if params.Epochs != nil {
		return nil, fmt.Errorf("%w: a key of an epoch suite needs its epoch (NewEpochPartyKey)", ErrParams)
	}
	return newPartyKey(params, identity, row)
}

func newPartyKey(params Params, identity string, row []fp.Elt) (*PartyKey, error) {
	if len(row) != params.K {
		return nil, fmt.Errorf("%w: row of %d elements for k=%d", ErrParams, len(row), params.K)
	}
	for i := range row {
		if !field.IsCanonical(&row[i]) {
			return nil, fmt.Errorf("row element %d: %w", i, ErrNonCanonical)
		}
	}
	return &PartyKey{params: params, identity: identity, row: append([]fp.Elt(nil), row...)}, nil
}

// NewEpochPartyKey makes the party key of identity for epoch under an epoch
// suite: its row of the epoch's matrix and its identity-based key d1 || d2
// (which the suite, not keygen, checks against the params). The key holds
// copies.
func NewEpochPartyKey(params Params, identity, epoch string, row []fp.Elt, sok []byte) (*PartyKey, error) {
	if err := params.Check(); err != nil {
		return nil, err
	}
	if err := ValidateIdentity(identity); err != nil {
		return nil, err
	}
	if params.Epochs == nil {
		return nil, fmt.Errorf("%w: suite %s has no epochs", ErrParams, params.Suite)
	}
	if _, _, err := params.Epochs.Span(epoch); err != nil {
		return nil, err
	}
	if len(sok) != SOKG1Size+SOKG2Size {
		return nil, fmt.Errorf("%w: identity-based key of %d bytes", ErrParams, len(sok))
	}
	k, err := newPartyKey(params, identity, row)
	if err != nil {
		return nil, err
	}
	k.epoch, k.sok = epoch, append([]byte(nil), sok...)
	return k, nil
}

// LoadPartyKey reads a key file, refusing one that group or others can read.
func LoadPartyKey(path string) (*PartyKey, error) {
	data, err := secfile.Read(path, int64(maxKeyFile))
	if err != nil {
		return nil, err
	}
	defer clear(data)
	k, err := ParsePartyKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadPartyKeyFor loads a key file and checks it belongs to params' system.
func LoadPartyKeyFor(path string, params Params) (*PartyKey, error) {
	k, err := LoadPartyKey(path)
	if err != nil {
		return nil, err
	}
	if !k.params.Equal(params) {
		return nil, fmt.Errorf("%s: %w", path, ErrSystem)
	}
	return k, nil
}

// ErrRole is wrapped by LoadRoleKey's error for the key of another role.
var ErrRole = errors.New("key of another role")

// roleError is a key file holding the key of another role than wanted.
type roleError struct {
	path, identity string
	want           Role
}

func (e *roleError) Error() string {
	article := "a"
	if e.want != "" && strings.ContainsRune("aeiou", rune(e.want[0])) {
		article = "an"
	}
	return fmt.Sprintf("%s is the key of %s, not of %s %s", e.path, e.identity, article, e.want)
}

func (e *roleError) Unwrap() error { return ErrRole }

// LoadRoleKey loads a key file and checks its identity has role want; the
// key of another role is destroyed and the error wraps ErrRole.
func LoadRoleKey(path string, want Role) (*PartyKey, error) {
	k, err := LoadPartyKey(path)
	if err != nil {
		return nil, err
	}
	if RoleOf(k.Identity()) != want {
		err := &roleError{path: path, identity: k.Identity(), want: want}
		k.Destroy()
		return nil, err
	}
	return k, nil
}

// KeyFileName is the file name of id's key, as a key center batch writes it: "role.name.key".
func KeyFileName(id string) string { return strings.Replace(id, ":", ".", 1) + ".key" }

// WriteFile stores the key at path with mode 0600; an existing file is never overwritten.
func (k *PartyKey) WriteFile(path string) error {
	data, err := k.MarshalJSON()
	if err != nil {
		return err
	}
	defer clear(data)
	return secfile.WriteNew(path, append(data, '\n'))
}
