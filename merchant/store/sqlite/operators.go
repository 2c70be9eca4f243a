package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"orderseal/merchant/store"
)

// Dashboard operators and their sessions (DESIGN.md §10). A session row
// holds the SHA-256 of its cookie's token, never the token.
const operatorsMigration = `
CREATE TABLE operators (
	name          TEXT PRIMARY KEY,
	role          TEXT NOT NULL CHECK (role IN ('viewer', 'admin')),
	password_hash TEXT NOT NULL,      -- argon2id, PHC form, with its parameters
	failures      INTEGER NOT NULL DEFAULT 0,
	locked_until  INTEGER NOT NULL DEFAULT 0,
	created       INTEGER NOT NULL,
	last_login    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE operator_logins (
	token_sha256 BLOB PRIMARY KEY,
	operator     TEXT NOT NULL,
	created      INTEGER NOT NULL,
	expires      INTEGER NOT NULL
);
CREATE INDEX operator_logins_operator ON operator_logins (operator);
`

const operatorCols = `name, role, password_hash, failures, locked_until, created, last_login`

// ms is t in unix milliseconds, 0 for the zero time.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS is ms's inverse.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

func scanOperator(row interface{ Scan(...any) error }) (*store.Operator, error) {
	var o store.Operator
	var locked, created, last int64
	err := row.Scan(&o.Name, &o.Role, &o.PasswordHash, &o.Failures, &locked, &created, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNoOperator
	}
	if err != nil {
		return nil, err
	}
	o.LockedUntil, o.Created, o.LastLogin = fromMS(locked), fromMS(created), fromMS(last)
	return &o, nil
}

// AddOperator stores a new account.
func (s *Store) AddOperator(ctx context.Context, op *store.Operator) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO operators (`+operatorCols+`) VALUES (?, ?, ?, 0, 0, ?, 0)
		ON CONFLICT (name) DO NOTHING`, op.Name, op.Role, op.PasswordHash, s.now().UnixMilli())
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrOperatorExists
	}
	return nil
}

// Operator returns one account.
func (s *Store) Operator(ctx context.Context, name string) (*store.Operator, error) {
	return scanOperator(s.db.QueryRowContext(ctx, `SELECT `+operatorCols+` FROM operators WHERE name = ?`, name))
}

// ListOperators lists the accounts by name.
func (s *Store) ListOperators(ctx context.Context) ([]*store.Operator, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+operatorCols+` FROM operators ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Operator
	for rows.Next() {
		o, err := scanOperator(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// RemoveOperator deletes an account and its sessions in one transaction.
func (s *Store) RemoveOperator(ctx context.Context, name string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM operators WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNoOperator
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM operator_logins WHERE operator = ?`, name); err != nil {
		return err
	}
	return tx.Commit()
}

// UnlockOperator clears an account's failures and lock.
func (s *Store) UnlockOperator(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `UPDATE operators SET failures = 0, locked_until = 0 WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNoOperator
	}
	return nil
}

// FailLogin counts a failed login; the max'th in a row locks the account.
func (s *Store) FailLogin(ctx context.Context, name string, max int, lockFor time.Duration) (*store.Operator, error) {
	now := s.now()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE operators SET
		locked_until = CASE WHEN failures + 1 >= ? THEN ? ELSE locked_until END,
		failures = CASE WHEN failures + 1 >= ? THEN 0 ELSE failures + 1 END
		WHERE name = ?`, max, now.Add(lockFor).UnixMilli(), max, name); err != nil {
		return nil, err
	}
	op, err := scanOperator(tx.QueryRowContext(ctx, `SELECT `+operatorCols+` FROM operators WHERE name = ?`, name))
	if err != nil {
		return nil, err
	}
	return op, tx.Commit()
}

// StartLogin stores a session of a successful login.
func (s *Store) StartLogin(ctx context.Context, l *store.Login) error {
	now := s.now()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE operators SET failures = 0, locked_until = 0, last_login = ? WHERE name = ?`, now.UnixMilli(), l.Operator)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.ErrNoOperator
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM operator_logins WHERE expires <= ?`, now.UnixMilli()); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO operator_logins (token_sha256, operator, created, expires) VALUES (?, ?, ?, ?)`,
		l.TokenHash, l.Operator, ms(l.Created), ms(l.Expires)); err != nil {
		return err
	}
	return tx.Commit()
}

// Login returns a live session and its account.
func (s *Store) Login(ctx context.Context, tokenHash []byte) (*store.Login, *store.Operator, error) {
	var l store.Login
	var created, expires int64
	err := s.db.QueryRowContext(ctx, `SELECT token_sha256, operator, created, expires FROM operator_logins
		WHERE token_sha256 = ? AND expires > ?`, tokenHash, s.now().UnixMilli()).Scan(&l.TokenHash, &l.Operator, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, store.ErrNoLogin
	}
	if err != nil {
		return nil, nil, err
	}
	l.Created, l.Expires = fromMS(created), fromMS(expires)
	op, err := s.Operator(ctx, l.Operator)
	if errors.Is(err, store.ErrNoOperator) {
		return nil, nil, store.ErrNoLogin
	}
	if err != nil {
		return nil, nil, err
	}
	return &l, op, nil
}

// EndLogin ends a session.
func (s *Store) EndLogin(ctx context.Context, tokenHash []byte) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM operator_logins WHERE token_sha256 = ?`, tokenHash)
	return err
}
