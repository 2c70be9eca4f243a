package store

import (
	"context"
	"errors"
	"time"
)

// Roles of a dashboard operator (DESIGN.md §10): a viewer reads, an admin
// also re-drives dead letters and edits the catalog.
const (
	RoleViewer = "viewer"
	RoleAdmin  = "admin"
)

// Operator errors.
var (
	ErrNoOperator     = errors.New("merchant: no such operator")
	ErrOperatorExists = errors.New("merchant: operator already exists")
	// ErrNoLogin is a dashboard session that is unknown, ended or past
	// its expiry.
	ErrNoLogin = errors.New("merchant: no such dashboard session")
)

// Operator is one account of the merchant dashboard, created by
// 'merchant operator add'. PasswordHash is an argon2id hash in PHC form
// with its parameters; the password itself is never stored.
type Operator struct {
	Name, Role   string
	PasswordHash string
	// Failures counts failed logins since the last success or lock; the
	// account is refused until LockedUntil (zero: not locked).
	Failures           int
	LockedUntil        time.Time
	Created, LastLogin time.Time // LastLogin: the last successful login, zero if none
}

// Locked reports whether the account refuses logins at now.
func (o *Operator) Locked(now time.Time) bool { return now.Before(o.LockedUntil) }

// Login is one dashboard session. Only the SHA-256 of its cookie's token
// is stored, so a copy of the database opens no session.
type Login struct {
	TokenHash        []byte
	Operator         string
	Created, Expires time.Time
}

// Operators is the dashboard's accounts and sessions, in the merchant store.
type Operators interface {
	// AddOperator stores a new account; ErrOperatorExists if the name is taken.
	AddOperator(ctx context.Context, op *Operator) error
	// Operator returns one account, or ErrNoOperator.
	Operator(ctx context.Context, name string) (*Operator, error)
	// ListOperators lists the accounts by name.
	ListOperators(ctx context.Context) ([]*Operator, error)
	// RemoveOperator deletes an account and ends its sessions; ErrNoOperator if there is none.
	RemoveOperator(ctx context.Context, name string) error
	// UnlockOperator clears an account's failures and lock; ErrNoOperator if there is none.
	UnlockOperator(ctx context.Context, name string) error
	// FailLogin counts a failed login at the store's now; the max'th in a row locks the account for lockFor and starts the count again. It returns the account as it now is, or ErrNoOperator.
	FailLogin(ctx context.Context, name string, max int, lockFor time.Duration) (*Operator, error)
	// StartLogin stores a session of a successful login, resets the account's failures, sets its last login and drops expired sessions; ErrNoOperator if the account is gone.
	StartLogin(ctx context.Context, l *Login) error
	// Login returns the session whose token hashes to tokenHash with its account, or ErrNoLogin when there is none live at the store's now.
	Login(ctx context.Context, tokenHash []byte) (*Login, *Operator, error)
	// EndLogin ends a session; ending an unknown one is no error.
	EndLogin(ctx context.Context, tokenHash []byte) error
}
