package store

import (
	"errors"
	"time"
)

// Reasons a session ended.
const (
	EndLogout     = "logged-out"
	EndSuperseded = "superseded"
	EndExpired    = "expired" // recorded when a later login finds it past its shift
)

// Session errors.
var (
	ErrNoSession      = errors.New("merchant: no such assisted session")
	ErrLoginReplayed  = errors.New("merchant: login request already used")
	ErrSessionEnded   = errors.New("merchant: assisted session ended")
	ErrSessionExpired = errors.New("merchant: assisted session expired")
)

// Session is one consultant login (DESIGN.md §6.7). The second identifier
// itself is never stored, only its hash; at most one session per consultant
// and device is open at a time. DeviceKey is the terminal's Ed25519 public
// key registered at login: every order of the session must be signed by it.
type Session struct {
	ID, Consultant, Company, Device string
	DeviceKey                       []byte
	SecretHash                      []byte
	LoginNonce                      string
	Created, Expires                time.Time
	Ended                           time.Time // zero while open
	EndReason                       string
}

// State is the session's state at now: live, expired, or how it ended.
func (s *Session) State(now time.Time) string {
	switch {
	case !s.Ended.IsZero():
		return s.EndReason
	case !now.Before(s.Expires):
		return EndExpired
	}
	return "live"
}

// Err is nil while the session is live at now, else ErrSessionEnded or
// ErrSessionExpired.
func (s *Session) Err(now time.Time) error {
	switch s.State(now) {
	case "live":
		return nil
	case EndExpired:
		return ErrSessionExpired
	}
	return ErrSessionEnded
}
