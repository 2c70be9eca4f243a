package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"orderseal/merchant/store"
)

// Assisted sessions (DESIGN.md §6.7): one row per consultant login. The
// second identifier itself is never stored, only its hash; at most one
// session per consultant and device is open at a time.
const assistedMigration = `
CREATE TABLE assisted_sessions (
	session_id  TEXT PRIMARY KEY,
	consultant  TEXT NOT NULL,
	company     TEXT NOT NULL,
	device      TEXT NOT NULL,
	secret_hash BLOB NOT NULL,
	login_nonce TEXT NOT NULL UNIQUE,  -- a login request is good once
	created     INTEGER NOT NULL,
	expires     INTEGER NOT NULL,      -- the shift's end
	ended       INTEGER,               -- logout or a later login on the device
	end_reason  TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX assisted_open ON assisted_sessions (consultant, device) WHERE ended IS NULL;
CREATE INDEX assisted_consultant ON assisted_sessions (consultant, created);
ALTER TABLE orders ADD COLUMN session_id TEXT NOT NULL DEFAULT '';
CREATE INDEX orders_session ON orders (session_id, created) WHERE session_id != '';
`

// deviceKeyMigration binds each session to its terminal's device public
// key (issue 16 item 8). Sessions opened before it have none and prove
// nothing: a shift is at most a day.
const deviceKeyMigration = `
ALTER TABLE assisted_sessions ADD COLUMN device_key BLOB NOT NULL DEFAULT x'';
`

const sessionCols = `session_id, consultant, company, device, device_key, secret_hash, login_nonce, created, expires, ended, end_reason`

func scanSession(row interface{ Scan(...any) error }) (*store.Session, error) {
	var s store.Session
	var created, expires int64
	var ended sql.NullInt64
	err := row.Scan(&s.ID, &s.Consultant, &s.Company, &s.Device, &s.DeviceKey, &s.SecretHash, &s.LoginNonce, &created, &expires, &ended, &s.EndReason)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNoSession
	}
	if err != nil {
		return nil, err
	}
	s.Created, s.Expires = time.UnixMilli(created).UTC(), time.UnixMilli(expires).UTC()
	if ended.Valid {
		s.Ended = time.UnixMilli(ended.Int64).UTC()
	}
	return &s, nil
}

// StartSession stores a new login. Any session still open for the same
// consultant and device ends in the same transaction (superseded, or expired
// if its shift is over), so one device never holds two live sessions. A
// login nonce seen before is refused with store.ErrLoginReplayed.
func (s *Store) StartSession(ctx context.Context, sess *store.Session) (ended []string, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM assisted_sessions WHERE login_nonce = ?`, sess.LoginNonce).Scan(&n); err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, store.ErrLoginReplayed
	}
	now := s.now()
	rows, err := tx.QueryContext(ctx, `SELECT session_id FROM assisted_sessions WHERE consultant = ? AND device = ? AND ended IS NULL`,
		sess.Consultant, sess.Device)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ended = append(ended, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE assisted_sessions SET ended = ?,
		end_reason = CASE WHEN expires <= ? THEN ? ELSE ? END
		WHERE consultant = ? AND device = ? AND ended IS NULL`,
		now.UnixMilli(), now.UnixMilli(), store.EndExpired, store.EndSuperseded, sess.Consultant, sess.Device); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO assisted_sessions (`+sessionCols+`) VALUES (?,?,?,?,?,?,?,?,?,NULL,'')`,
		sess.ID, sess.Consultant, sess.Company, sess.Device, append([]byte{}, sess.DeviceKey...), sess.SecretHash, sess.LoginNonce,
		sess.Created.UnixMilli(), sess.Expires.UnixMilli()); err != nil {
		return nil, err
	}
	return ended, tx.Commit()
}

// Session returns one session.
func (s *Store) Session(ctx context.Context, id string) (*store.Session, error) {
	return scanSession(s.db.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM assisted_sessions WHERE session_id = ?`, id))
}

// EndSession ends a session now with reason. Ending an ended session changes
// nothing and returns it as it is.
func (s *Store) EndSession(ctx context.Context, id, reason string) (*store.Session, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE assisted_sessions SET ended = ?, end_reason = ? WHERE session_id = ? AND ended IS NULL`,
		s.now().UnixMilli(), reason, id); err != nil {
		return nil, err
	}
	sess, err := scanSession(tx.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM assisted_sessions WHERE session_id = ?`, id))
	if err != nil {
		return nil, err
	}
	return sess, tx.Commit()
}

// Sessions lists a consultant's sessions, oldest login first.
func (s *Store) Sessions(ctx context.Context, consultant string) ([]*store.Session, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sessionCols+` FROM assisted_sessions WHERE consultant = ? ORDER BY created, session_id`, consultant)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sess)
	}
	return out, rows.Err()
}

// SessionOrders lists the orders keyed in a session, oldest first.
func (s *Store) SessionOrders(ctx context.Context, session string) ([]*store.Order, error) {
	return s.queryOrders(ctx, `SELECT `+orderCols+` FROM orders WHERE session_id = ? ORDER BY created, order_id`, session)
}

// sessionOpen checks, inside tx, that session belongs to consultant and is
// open at now.
func sessionOpen(ctx context.Context, tx *sql.Tx, session, consultant string, now time.Time) error {
	sess, err := scanSession(tx.QueryRowContext(ctx, `SELECT `+sessionCols+` FROM assisted_sessions WHERE session_id = ?`, session))
	if err != nil {
		return err
	}
	switch {
	case sess.Consultant != consultant:
		return store.ErrNoSession
	case !sess.Ended.IsZero():
		return store.ErrSessionEnded
	case !now.Before(sess.Expires):
		return store.ErrSessionExpired
	}
	return nil
}
