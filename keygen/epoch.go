package keygen

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"orderseal/internal/wire"
)

// Sizes of the public values an epoch suite (OS2, DESIGN.md §2.1) publishes
// and the identity-based key a party holds, in their compressed encodings.
const (
	SOKPublicSize    = 96   // P = s·g2, a compressed BLS12-381 G2 point
	DirectoryKeySize = 1952 // the key center's ML-DSA-65 public key
	SOKG1Size        = 48   // d1 = s·H1(id), a compressed G1 point
	SOKG2Size        = 96   // d2 = s·H2(id), a compressed G2 point
)

// Epoch periods: how long one epoch lasts, and how its name is written.
const (
	PeriodMonth = "month" // "2026-12": a calendar month, UTC
	PeriodDay   = "day"   // "2026-12-06": a calendar day, UTC (short-lived deployments, tests)
)

// DefaultGrace is how long past its epoch a key still opens orders in flight.
const DefaultGrace = 7 * 24 * time.Hour

// MaxGrace bounds the grace period.
const MaxGrace = 90 * 24 * time.Hour

var (
	// ErrEpoch is wrapped by every malformed or unknown epoch.
	ErrEpoch = errors.New("invalid epoch")
	// ErrEpochOver is returned for a key whose epoch and grace are over.
	ErrEpochOver = errors.New("key's epoch is over")
)

// Epochs are the public parameters of a suite that keys every identity per
// epoch (OS2): the period, the grace, the key center's SOK public value and
// its directory-signing key. Params of such a suite carry a non-nil Epochs;
// the values are checked for syntax only here (the suite checks the points).
type Epochs struct {
	Period       string
	Grace        time.Duration
	SOKPublic    [SOKPublicSize]byte
	DirectoryKey [DirectoryKeySize]byte
}

type epochsWire struct {
	Period       string `json:"period"`
	Grace        string `json:"grace"`
	SOKPublic    string `json:"sok_public"`
	DirectoryKey string `json:"directory_key"`
}

func (e *Epochs) wire() *epochsWire {
	if e == nil {
		return nil
	}
	return &epochsWire{Period: e.Period, Grace: e.Grace.String(),
		SOKPublic: wire.B64(e.SOKPublic[:]), DirectoryKey: wire.B64(e.DirectoryKey[:])}
}

func (w *epochsWire) epochs() (*Epochs, error) {
	if w == nil {
		return nil, nil
	}
	e := &Epochs{Period: w.Period}
	g, err := time.ParseDuration(w.Grace)
	if err != nil || g.String() != w.Grace {
		return nil, fmt.Errorf("%w: grace must be a Go duration such as 168h0m0s", ErrParams)
	}
	e.Grace = g
	p, err := wire.UnB64Len(w.SOKPublic, SOKPublicSize)
	if err != nil {
		return nil, fmt.Errorf("%w: sok_public: %w", ErrParams, err)
	}
	copy(e.SOKPublic[:], p)
	d, err := wire.UnB64Len(w.DirectoryKey, DirectoryKeySize)
	if err != nil {
		return nil, fmt.Errorf("%w: directory_key: %w", ErrParams, err)
	}
	copy(e.DirectoryKey[:], d)
	return e, e.check()
}

func (e *Epochs) check() error {
	if e.Period != PeriodMonth && e.Period != PeriodDay {
		return fmt.Errorf("%w: epoch period must be %q or %q", ErrParams, PeriodMonth, PeriodDay)
	}
	if e.Grace < 0 || e.Grace > MaxGrace {
		return fmt.Errorf("%w: grace must be between 0 and %s", ErrParams, MaxGrace)
	}
	return nil
}

func (e *Epochs) equal(o *Epochs) bool {
	if e == nil || o == nil {
		return e == o
	}
	return e.Period == o.Period && e.Grace == o.Grace &&
		bytes.Equal(e.SOKPublic[:], o.SOKPublic[:]) && bytes.Equal(e.DirectoryKey[:], o.DirectoryKey[:])
}

func (e *Epochs) layout() string {
	if e.Period == PeriodDay {
		return "2006-01-02"
	}
	return "2006-01"
}

// At is the epoch t falls in.
func (e *Epochs) At(t time.Time) string { return t.UTC().Format(e.layout()) }

// Span is when epoch begins and ends (exclusive); its keys open orders
// until end + Grace. A name that is not of the period's form, exactly, is
// refused.
func (e *Epochs) Span(epoch string) (start, end time.Time, err error) {
	start, err = time.Parse(e.layout(), epoch)
	if err != nil || start.Format(e.layout()) != epoch {
		return start, end, fmt.Errorf("%w: %.16q is not a %s (%s)", ErrEpoch, epoch, e.Period, e.layout())
	}
	if e.Period == PeriodDay {
		return start, start.AddDate(0, 0, 1), nil
	}
	return start, start.AddDate(0, 1, 0), nil
}

// Next is the epoch after epoch (which must be valid).
func (e *Epochs) Next(epoch string) (string, error) {
	_, end, err := e.Span(epoch)
	if err != nil {
		return "", err
	}
	return e.At(end), nil
}

// Usable reports whether a key of epoch may still be used at now: before
// the epoch's end plus grace. A key for an epoch not yet begun is usable
// (keys are issued ahead of their epoch).
func (e *Epochs) Usable(epoch string, now time.Time) error {
	_, end, err := e.Span(epoch)
	if err != nil {
		return err
	}
	if !now.Before(end.Add(e.Grace)) {
		return fmt.Errorf("%w: %s ended %s, grace %s", ErrEpochOver, epoch, end.Format(time.RFC3339), e.Grace)
	}
	return nil
}
