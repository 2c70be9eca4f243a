package sqlstore

import (
	"context"
	"errors"
	"time"

	"orderseal/internal/sqldb"
	"orderseal/merchant/store"
)

// Assisted sessions (DESIGN.md §6.7): one row per consultant login. The
// second identifier itself is never stored, only its hash; at most one
// session per consultant and device is open at a time.

const sessionCols = `session_id, consultant, company, device, device_key, secret_hash, login_nonce, created, expires, ended, end_reason`

func scanSession(row sqldb.Row) (*store.Session, error) {
	var s store.Session
	var created, expires int64
	var ended *int64
	err := row.Scan(&s.ID, &s.Consultant, &s.Company, &s.Device, &s.DeviceKey, &s.SecretHash, &s.LoginNonce, &created, &expires, &ended, &s.EndReason)
	if errors.Is(err, sqldb.ErrNoRows) {
		return nil, store.ErrNoSession
	}
	if err != nil {
		return nil, err
	}
	s.Created, s.Expires = time.UnixMilli(created).UTC(), time.UnixMilli(expires).UTC()
	if ended != nil {
		s.Ended = time.UnixMilli(*ended).UTC()
	}
	return &s, nil
}

// StartSession stores a new login. Any session still open for the same
// consultant and device ends in the same transaction (superseded, or
// expired if its shift is over), so one device never holds two live
// sessions; on PostgreSQL under an advisory lock on the pair, so logins on
// two nodes at once queue. A login nonce seen before, on any node, is
// refused with store.ErrLoginReplayed.
func (s *Store) StartSession(ctx context.Context, sess *store.Session) (ended []string, err error) {
	err = s.db.Tx(ctx, func(tx sqldb.Tx) error {
		if err := tx.Lock(ctx, "assisted "+sess.Consultant+" "+sess.Device); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM assisted_sessions WHERE login_nonce = $1`, sess.LoginNonce).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return store.ErrLoginReplayed
		}
		now := s.now().UnixMilli()
		ended, err = sqldb.Collect(ctx, tx, func(r sqldb.Row) (string, error) {
			var id string
			err := r.Scan(&id)
			return id, err
		}, `UPDATE assisted_sessions SET ended = $1,
			end_reason = CASE WHEN expires <= $1 THEN $2 ELSE $3 END
			WHERE consultant = $4 AND device = $5 AND ended IS NULL RETURNING session_id`,
			now, store.EndExpired, store.EndSuperseded, sess.Consultant, sess.Device)
		if err != nil {
			return err
		}
		n64, err := tx.Exec(ctx, `INSERT INTO assisted_sessions (`+sessionCols+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,NULL,'')
			ON CONFLICT (login_nonce) DO NOTHING`,
			sess.ID, sess.Consultant, sess.Company, sess.Device, sqldb.NotNull(sess.DeviceKey), sqldb.NotNull(sess.SecretHash), sess.LoginNonce,
			sess.Created.UnixMilli(), sess.Expires.UnixMilli())
		if err != nil {
			return err
		}
		if n64 == 0 {
			return store.ErrLoginReplayed // the same login on another device at the same moment
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ended, nil
}

// Session returns one session.
func (s *Store) Session(ctx context.Context, id string) (*store.Session, error) {
	return scanSession(s.db.QueryRow(ctx, sessionByID, id))
}

// EndSession ends a session now with reason. Ending an ended session changes
// nothing and returns it as it is.
func (s *Store) EndSession(ctx context.Context, id, reason string) (sess *store.Session, err error) {
	err = s.db.Tx(ctx, func(tx sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE assisted_sessions SET ended = $1, end_reason = $2 WHERE session_id = $3 AND ended IS NULL`,
			s.now().UnixMilli(), reason, id); err != nil {
			return err
		}
		sess, err = scanSession(tx.QueryRow(ctx, sessionByID, id))
		return err
	})
	if err != nil {
		return nil, err
	}
	return sess, nil
}

// Sessions lists a consultant's sessions, oldest login first.
func (s *Store) Sessions(ctx context.Context, consultant string) ([]*store.Session, error) {
	return sqldb.Collect(ctx, s.db, scanSession,
		`SELECT `+sessionCols+` FROM assisted_sessions WHERE consultant = $1 ORDER BY created, session_id`, consultant)
}

// SessionOrders lists the orders keyed in a session, oldest first.
func (s *Store) SessionOrders(ctx context.Context, session string) ([]*store.Order, error) {
	return sqldb.Collect(ctx, s.db, scanOrder,
		`SELECT `+orderCols+` FROM orders WHERE session_id = $1 ORDER BY created, order_id`, session)
}

const (
	sessionByID         = `SELECT ` + sessionCols + ` FROM assisted_sessions WHERE session_id = $1`
	sessionByIDForShare = sessionByID + ` FOR SHARE`
)

// sessionOpen checks, inside tx and with the session's row locked against
// a concurrent logout (FOR SHARE on PostgreSQL; SQLite's writers exclude
// each other), that session belongs to consultant and is open at now.
func sessionOpen(ctx context.Context, tx sqldb.Tx, session, consultant string, now time.Time) error {
	q := sessionByID
	if tx.Dialect() == sqldb.Postgres {
		q = sessionByIDForShare
	}
	sess, err := scanSession(tx.QueryRow(ctx, q, session))
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
