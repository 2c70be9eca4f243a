package sqlstore

import (
	"context"
	"errors"
	"time"

	"orderseal/internal/sqldb"
	"orderseal/merchant/store"
)

// Dashboard operators and their sessions (DESIGN.md §10), shared by every
// node on the database: a session opened on one node is good on the others,
// and a lockout counts the failures on all of them. A session row holds the
// SHA-256 of its cookie's token, never the token.

const operatorCols = `name, role, password_hash, failures, locked_until, created, last_login`

func scanOperator(row sqldb.Row) (*store.Operator, error) {
	var o store.Operator
	var locked, created, last int64
	err := row.Scan(&o.Name, &o.Role, &o.PasswordHash, &o.Failures, &locked, &created, &last)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, store.ErrNoOperator
	}
	if err != nil {
		return nil, err
	}
	o.LockedUntil, o.Created, o.LastLogin = sqldb.FromUnixMilli(locked), sqldb.FromUnixMilli(created), sqldb.FromUnixMilli(last)
	return &o, nil
}

// AddOperator stores a new account.
func (s *Store) AddOperator(ctx context.Context, op *store.Operator) error {
	n, err := s.db.Exec(ctx, `INSERT INTO operators (`+operatorCols+`) VALUES ($1, $2, $3, 0, 0, $4, 0)
		ON CONFLICT (name) DO NOTHING`, op.Name, op.Role, op.PasswordHash, s.now().UnixMilli())
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrOperatorExists
	}
	return nil
}

// Operator returns one account.
func (s *Store) Operator(ctx context.Context, name string) (*store.Operator, error) {
	return scanOperator(s.db.QueryRow(ctx, `SELECT `+operatorCols+` FROM operators WHERE name = $1`, name))
}

// ListOperators lists the accounts by name.
func (s *Store) ListOperators(ctx context.Context) ([]*store.Operator, error) {
	return sqldb.Collect(ctx, s.db, scanOperator, `SELECT `+operatorCols+` FROM operators ORDER BY name`)
}

// RemoveOperator deletes an account and its sessions in one transaction.
func (s *Store) RemoveOperator(ctx context.Context, name string) error {
	return s.db.Tx(ctx, func(tx sqldb.Tx) error {
		n, err := tx.Exec(ctx, `DELETE FROM operators WHERE name = $1`, name)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNoOperator
		}
		_, err = tx.Exec(ctx, `DELETE FROM operator_logins WHERE operator = $1`, name)
		return err
	})
}

// UnlockOperator clears an account's failures and lock.
func (s *Store) UnlockOperator(ctx context.Context, name string) error {
	n, err := s.db.Exec(ctx, `UPDATE operators SET failures = 0, locked_until = 0 WHERE name = $1`, name)
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNoOperator
	}
	return nil
}

// FailLogin counts a failed login in one statement, so failures on several
// nodes at once all count; the max'th in a row locks the account. The
// statement runs in a transaction so its commit's error, if any, is
// FailLogin's.
func (s *Store) FailLogin(ctx context.Context, name string, max int, lockFor time.Duration) (op *store.Operator, err error) {
	err = s.db.Tx(ctx, func(tx sqldb.Tx) error {
		op, err = scanOperator(tx.QueryRow(ctx, `UPDATE operators SET
			locked_until = CASE WHEN failures + 1 >= $1 THEN $2 ELSE locked_until END,
			failures = CASE WHEN failures + 1 >= $1 THEN 0 ELSE failures + 1 END
			WHERE name = $3 RETURNING `+operatorCols, max, s.now().Add(lockFor).UnixMilli(), name))
		return err
	})
	if err != nil {
		return nil, err
	}
	return op, nil
}

// StartLogin stores a session of a successful login.
func (s *Store) StartLogin(ctx context.Context, l *store.Login) error {
	now := s.now().UnixMilli()
	return s.db.Tx(ctx, func(tx sqldb.Tx) error {
		n, err := tx.Exec(ctx, `UPDATE operators SET failures = 0, locked_until = 0, last_login = $1 WHERE name = $2`, now, l.Operator)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNoOperator
		}
		if _, err := tx.Exec(ctx, `DELETE FROM operator_logins WHERE expires <= $1`, now); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO operator_logins (token_sha256, operator, created, expires) VALUES ($1, $2, $3, $4)`,
			l.TokenHash, l.Operator, sqldb.UnixMilli(l.Created), sqldb.UnixMilli(l.Expires))
		return err
	})
}

// Login returns a live session and its account, in one query.
func (s *Store) Login(ctx context.Context, tokenHash []byte) (*store.Login, *store.Operator, error) {
	var l store.Login
	var o store.Operator
	var created, expires, locked, opCreated, last int64
	err := s.db.QueryRow(ctx, `SELECT l.token_sha256, l.operator, l.created, l.expires,
		o.name, o.role, o.password_hash, o.failures, o.locked_until, o.created, o.last_login
		FROM operator_logins l JOIN operators o ON o.name = l.operator
		WHERE l.token_sha256 = $1 AND l.expires > $2`, tokenHash, s.now().UnixMilli()).Scan(
		&l.TokenHash, &l.Operator, &created, &expires, &o.Name, &o.Role, &o.PasswordHash, &o.Failures, &locked, &opCreated, &last)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, nil, store.ErrNoLogin
	}
	if err != nil {
		return nil, nil, err
	}
	l.Created, l.Expires = sqldb.FromUnixMilli(created), sqldb.FromUnixMilli(expires)
	o.LockedUntil, o.Created, o.LastLogin = sqldb.FromUnixMilli(locked), sqldb.FromUnixMilli(opCreated), sqldb.FromUnixMilli(last)
	return &l, &o, nil
}

// EndLogin ends a session.
func (s *Store) EndLogin(ctx context.Context, tokenHash []byte) error {
	_, err := s.db.Exec(ctx, `DELETE FROM operator_logins WHERE token_sha256 = $1`, tokenHash)
	return err
}
