package keygen

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"orderseal/internal/strictjson"
)

// DefaultK is the number of coefficients per row unless the center chooses
// otherwise: a coalition of DefaultK parties breaks the system, fewer learn
// nothing about other pairs' keys.
const DefaultK = 1024

// maxParamsFile bounds a params file: the directory key in base64 and room.
const maxParamsFile = 8192

// MaxK bounds k so that a key file stays a sane size (MaxK×32 bytes).
const MaxK = 1 << 14

var (
	// ErrVersion is returned for a key or params file of another version.
	ErrVersion = errors.New("unsupported version")
	// ErrSuite is returned for a malformed suite name.
	ErrSuite = errors.New("unsupported suite")
	// ErrSystem is returned when a file belongs to another key center.
	ErrSystem = errors.New("key belongs to another system")
	// ErrParams is wrapped by malformed parameter values.
	ErrParams = errors.New("invalid parameters")
)

// Params are a key center's public parameters.
type Params struct {
	Suite  string // the suite's name (package suite); keygen checks its syntax only
	System [16]byte
	K      int
	// Epochs is set exactly for a suite that keys identities per epoch
	// (OS2, DESIGN.md §2.1); nil for OS1. Shared, never modified.
	Epochs *Epochs
}

type paramsWire struct {
	V      int         `json:"v"`
	Suite  string      `json:"suite"`
	System string      `json:"system"`
	K      int         `json:"k"`
	Epochs *epochsWire `json:"epochs,omitempty"`
}

// Check validates the suite name's syntax and k.
func (p Params) Check() error {
	if !ValidSuiteName(p.Suite) {
		return fmt.Errorf("%w: %q", ErrSuite, truncate(p.Suite, 64))
	}
	if p.K < 1 || p.K > MaxK {
		return fmt.Errorf("%w: k must be between 1 and %d", ErrParams, MaxK)
	}
	if p.Epochs != nil {
		return p.Epochs.check()
	}
	return nil
}

// SystemHex is the lowercase hex form of the system identifier.
func (p Params) SystemHex() string { return hex.EncodeToString(p.System[:]) }

// MarshalJSON writes the public params file of DESIGN.md §4.1.
func (p Params) MarshalJSON() ([]byte, error) {
	return json.Marshal(paramsWire{V: 1, Suite: p.Suite, System: p.SystemHex(), K: p.K, Epochs: p.Epochs.wire()})
}

// ParseParams reads a params file strictly.
func ParseParams(data []byte) (Params, error) {
	var w paramsWire
	if err := strictjson.Decode(data, &w, maxParamsFile); err != nil {
		return Params{}, err
	}
	return w.params()
}

func (w paramsWire) params() (Params, error) {
	var p Params
	if w.V != 1 {
		return p, fmt.Errorf("%w: v=%d", ErrVersion, w.V)
	}
	sys, err := ParseSystem(w.System)
	if err != nil {
		return p, err
	}
	p = Params{Suite: w.Suite, System: sys, K: w.K}
	if p.Epochs, err = w.Epochs.epochs(); err != nil {
		return Params{}, err
	}
	return p, p.Check()
}

// ParseSystem decodes the 32-character lowercase hex system identifier.
func ParseSystem(s string) ([16]byte, error) {
	var sys [16]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 16 || hex.EncodeToString(b) != s {
		return sys, fmt.Errorf("%w: system must be 32 lowercase hex digits", ErrParams)
	}
	copy(sys[:], b)
	return sys, nil
}

// Equal reports whether two parameter sets are the same system.
func (p Params) Equal(q Params) bool {
	return p.Suite == q.Suite && bytes.Equal(p.System[:], q.System[:]) && p.K == q.K && p.Epochs.equal(q.Epochs)
}
