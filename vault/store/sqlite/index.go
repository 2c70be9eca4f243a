package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncesql"
	"orderseal/internal/sqlitex"
	"orderseal/vault/store"
)

var indexMigrations = []string{
	`CREATE TABLE entries (
		token       TEXT PRIMARY KEY,
		owner       TEXT NOT NULL,
		type        TEXT NOT NULL,
		label       TEXT NOT NULL,
		epoch       INTEGER NOT NULL,
		created     INTEGER NOT NULL, -- unix nanoseconds
		expires     INTEGER NOT NULL, -- unix nanoseconds; 0: never
		shareable   INTEGER NOT NULL CHECK (shareable IN (0, 1)),
		replaced_by TEXT NOT NULL DEFAULT ''
	) STRICT;
	CREATE INDEX entries_owner ON entries(owner, created);
	CREATE INDEX entries_current ON entries(created) WHERE replaced_by = '';

	CREATE TABLE grants (
		id       TEXT PRIMARY KEY,
		token    TEXT NOT NULL REFERENCES entries(token),
		merchant TEXT NOT NULL,
		carrier  TEXT NOT NULL,
		order_id TEXT NOT NULL,
		invoice  TEXT NOT NULL,
		expires  INTEGER NOT NULL,
		max_uses INTEGER NOT NULL CHECK (max_uses > 0),
		uses     INTEGER NOT NULL DEFAULT 0,
		created  INTEGER NOT NULL,
		UNIQUE (token, carrier, order_id)
	) STRICT;

	CREATE TABLE audit (
		seq      INTEGER PRIMARY KEY,
		time     INTEGER NOT NULL, -- unix nanoseconds
		kind     TEXT NOT NULL,
		actor    TEXT NOT NULL,
		token    TEXT NOT NULL,
		order_id TEXT NOT NULL,
		outcome  TEXT NOT NULL,
		prev     BLOB NOT NULL,
		hash     BLOB NOT NULL
	) STRICT;`,
	// Grant states (DESIGN.md §7): grants made before them were usable at
	// once, so they stay active; new ones start pending.
	`ALTER TABLE grants ADD COLUMN state TEXT NOT NULL DEFAULT 'active'
		CHECK (state IN ('pending', 'active', 'revoked'));
	CREATE INDEX grants_order ON grants(merchant, order_id);
	CREATE INDEX grants_carrier ON grants(carrier);`,

	// The replay memory of signed requests (DESIGN.md §5 "Hardening").
	noncesql.Migration,
}

// Index is the index database (store.Index): entries, grants and the audit
// log, in one SQLite file whose transactions are all BEGIN IMMEDIATE.
type Index struct {
	db *sql.DB
	// writes is held by every write of this process (Update, UseGrant,
	// the nonce store's batches), so they queue here rather than in
	// SQLite's sleeping busy handler; readers need no lock (WAL).
	writes sync.Mutex
}

var _ store.Index = (*Index)(nil)

// OpenIndex opens (creating when absent) the index at dsn and runs its migrations.
func OpenIndex(ctx context.Context, dsnString string) (*Index, error) {
	path, err := sqlitePath(dsnString)
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	db, err := sqlitex.Open(path, sqlitex.Immediate())
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	if err := sqlitex.Migrate(ctx, db, indexMigrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("vault index: %w", err)
	}
	return &Index{db: db}, nil
}

// OpenIndexReadOnly opens the existing index at dsn read-only: it never
// creates a file and no statement can write (for 'vault audit verify' and
// the test harness, which may run beside the serving vault).
func OpenIndexReadOnly(ctx context.Context, dsnString string) (*Index, error) {
	path, err := sqlitePath(dsnString)
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	db, err := sqlitex.Open(path, sqlitex.ReadOnly(), sqlitex.MaxConns(1))
	if err != nil {
		return nil, err
	}
	return &Index{db: db}, nil
}

// Close closes the database.
func (x *Index) Close() error { return x.db.Close() }

// Nonces is the signed requests' replay memory in the index (store.Index).
func (x *Index) Nonces(quota nonce.Quota) nonce.Store {
	return noncesql.New(x.db, quota, noncesql.WriteLock(&x.writes))
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

const entryColumns = `token, owner, type, label, epoch, created, expires, shareable, replaced_by`

func scanEntry(sc interface{ Scan(...any) error }) (store.Entry, error) {
	var e store.Entry
	var typ string
	var created, expires int64
	if err := sc.Scan(&e.Token, &e.Owner, &typ, &e.Label, &e.Epoch, &created, &expires, &e.Shareable, &e.ReplacedBy); err != nil {
		return store.Entry{}, err
	}
	e.Type, e.Created, e.Expires = store.TokenType(typ), fromNanos(created), fromNanos(expires)
	return e, nil
}

func queryEntries(ctx context.Context, db dbtx, q string, args ...any) ([]store.Entry, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func entry(ctx context.Context, db dbtx, token string) (store.Entry, error) {
	e, err := scanEntry(db.QueryRowContext(ctx, `SELECT `+entryColumns+` FROM entries WHERE token = ?`, token))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Entry{}, store.ErrNotFound
	}
	return e, err
}

// Entry returns token's entry, or store.ErrNotFound.
func (x *Index) Entry(ctx context.Context, token string) (store.Entry, error) {
	return entry(ctx, x.db, token)
}

// maxParams bounds the tokens of one IN list, well under SQLite's limit on parameters.
const maxParams = 256

// Entries returns the entries of tokens by token.
func (x *Index) Entries(ctx context.Context, tokens []string) (map[string]store.Entry, error) {
	out := map[string]store.Entry{}
	for len(tokens) > 0 {
		n := min(len(tokens), maxParams)
		es, err := queryEntries(ctx, x.db, `SELECT `+entryColumns+` FROM entries
			WHERE token IN (`+sqlitex.Placeholders(n)+`)`, sqlitex.Args(tokens[:n])...)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			out[e.Token] = e
		}
		tokens = tokens[n:]
	}
	return out, nil
}

// List returns owner's entries unexpired at now, oldest first.
func (x *Index) List(ctx context.Context, owner string, now time.Time) ([]store.Entry, error) {
	return queryEntries(ctx, x.db, `SELECT `+entryColumns+` FROM entries
		WHERE owner = ? AND (expires = 0 OR expires > ?) ORDER BY created, token`, owner, now.UnixNano())
}

// Due returns the current entries created at or before createdBy and unexpired at now.
func (x *Index) Due(ctx context.Context, createdBy, now time.Time) ([]store.Entry, error) {
	return queryEntries(ctx, x.db, `SELECT `+entryColumns+` FROM entries
		WHERE replaced_by = '' AND created <= ? AND (expires = 0 OR expires > ?)
		ORDER BY created, token`, createdBy.UnixNano(), now.UnixNano())
}

// Tokens yields the token of every entry.
func (x *Index) Tokens(ctx context.Context) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		rows, err := x.db.QueryContext(ctx, `SELECT token FROM entries`)
		if err != nil {
			yield("", err)
			return
		}
		defer rows.Close()
		for rows.Next() {
			var t string
			if err := rows.Scan(&t); err != nil {
				yield("", err)
				return
			}
			if !yield(t, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield("", err)
		}
	}
}

const grantColumns = `id, token, merchant, carrier, order_id, invoice, expires, max_uses, uses, state`

func scanGrant(sc interface{ Scan(...any) error }) (store.Grant, error) {
	var g store.Grant
	var exp int64
	err := sc.Scan(&g.ID, &g.Token, &g.Merchant, &g.Carrier, &g.OrderID, &g.Invoice, &exp, &g.MaxUses, &g.Uses, &g.State)
	g.Expires = fromNanos(exp)
	return g, err
}

func grant(ctx context.Context, db dbtx, token, carrier, orderID string) (store.Grant, error) {
	g, err := scanGrant(db.QueryRowContext(ctx, `SELECT `+grantColumns+` FROM grants
		WHERE token = ? AND carrier = ? AND order_id = ?`, token, carrier, orderID))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Grant{}, store.ErrNoGrant
	}
	return g, err
}

// Grant returns the grant for (token, carrier, orderID), or store.ErrNoGrant.
func (x *Index) Grant(ctx context.Context, token, carrier, orderID string) (store.Grant, error) {
	return grant(ctx, x.db, token, carrier, orderID)
}

// GrantsTo returns every grant made to carrier, oldest first.
func (x *Index) GrantsTo(ctx context.Context, carrier string) ([]store.Grant, error) {
	return grants(ctx, x.db, ` WHERE carrier = ?`, carrier)
}

// GrantsOf returns every grant made to merchant, oldest first.
func (x *Index) GrantsOf(ctx context.Context, merchant string) ([]store.Grant, error) {
	return grants(ctx, x.db, ` WHERE merchant = ?`, merchant)
}

// Grants returns every grant, to any merchant, oldest first.
func (x *Index) Grants(ctx context.Context) ([]store.Grant, error) {
	return grants(ctx, x.db, ``)
}

func grants(ctx context.Context, db dbtx, where string, args ...any) ([]store.Grant, error) {
	rows, err := db.QueryContext(ctx, `SELECT `+grantColumns+` FROM grants`+where+` ORDER BY created, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// UseGrant counts one use of a live grant in one statement, so two
// concurrent uses cannot both take the last one.
func (x *Index) UseGrant(ctx context.Context, token, carrier, orderID, invoice string, now time.Time) (store.Grant, bool, error) {
	x.writes.Lock()
	defer x.writes.Unlock()
	g, err := scanGrant(x.db.QueryRowContext(ctx, `UPDATE grants SET uses = uses + 1
		WHERE token = ? AND carrier = ? AND order_id = ? AND invoice = ? AND expires > ? AND uses < max_uses
			AND state = 'active'
		RETURNING `+grantColumns, token, carrier, orderID, invoice, now.UnixNano()))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Grant{}, false, nil
	}
	if err != nil {
		return store.Grant{}, false, err
	}
	return g, true, nil
}

const auditColumns = `seq, time, kind, actor, token, order_id, outcome, prev, hash`

func scanAudit(sc interface{ Scan(...any) error }) (store.AuditEvent, error) {
	var ev store.AuditEvent
	var t int64
	err := sc.Scan(&ev.Seq, &t, &ev.Kind, &ev.Actor, &ev.Token, &ev.OrderID, &ev.Outcome, &ev.Prev, &ev.Hash)
	ev.Time = time.Unix(0, t).UTC()
	return ev, err
}

// Audit yields the audit log in seq order.
func (x *Index) Audit(ctx context.Context) iter.Seq2[store.AuditEvent, error] {
	return func(yield func(store.AuditEvent, error) bool) {
		rows, err := x.db.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit ORDER BY seq`)
		if err != nil {
			yield(store.AuditEvent{}, err)
			return
		}
		defer rows.Close()
		for n := 1; rows.Next(); n++ {
			ev, err := scanAudit(rows)
			if err != nil {
				// n is the entry a verifier expects here.
				yield(store.AuditEvent{}, fmt.Errorf("%w: entry %d: %v", store.ErrAuditBroken, n, err))
				return
			}
			if !yield(ev, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(store.AuditEvent{}, err)
		}
	}
}

// AuditHead returns the newest audit entry's seq and hash.
func (x *Index) AuditHead(ctx context.Context) (int64, []byte, error) {
	return auditHead(ctx, x.db)
}

// AuditEntry returns the audit entry seq.
func (x *Index) AuditEntry(ctx context.Context, seq int64) (store.AuditEvent, error) {
	ev, err := scanAudit(x.db.QueryRowContext(ctx, `SELECT `+auditColumns+` FROM audit WHERE seq = ?`, seq))
	if errors.Is(err, sql.ErrNoRows) {
		return ev, fmt.Errorf("%w: entry %d: missing", store.ErrAuditBroken, seq)
	}
	return ev, err
}

// AuditFind returns the audit entries of kind with outcome ("": any), in seq order.
func (x *Index) AuditFind(ctx context.Context, kind, outcome string) ([]store.AuditEvent, error) {
	rows, err := x.db.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit
		WHERE (? = '' OR kind = ?) AND (? = '' OR outcome = ?) ORDER BY seq`, kind, kind, outcome, outcome)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.AuditEvent
	for rows.Next() {
		ev, err := scanAudit(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, rows.Err()
}

// Update runs fn in one BEGIN IMMEDIATE transaction: the write lock is
// taken up front, so the audit head fn reads cannot move before it commits.
func (x *Index) Update(ctx context.Context, fn func(store.IndexTx) error) error {
	x.writes.Lock()
	defer x.writes.Unlock()
	tx, err := x.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(indexTx{tx}); err != nil {
		return err
	}
	return tx.Commit()
}

// indexTx is the index inside Update's transaction.
type indexTx struct{ tx *sql.Tx }

func (t indexTx) Entry(ctx context.Context, token string) (store.Entry, error) {
	return entry(ctx, t.tx, token)
}

func (t indexTx) Grant(ctx context.Context, token, carrier, orderID string) (store.Grant, error) {
	return grant(ctx, t.tx, token, carrier, orderID)
}

func (t indexTx) AuditHead(ctx context.Context) (int64, []byte, error) {
	return auditHead(ctx, t.tx)
}

func auditHead(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}) (int64, []byte, error) {
	var seq int64
	var hash []byte
	err := q.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, nil
	}
	return seq, hash, err
}

// InsertEntries inserts es in one statement.
func (t indexTx) InsertEntries(ctx context.Context, es ...store.Entry) error {
	if len(es) == 0 {
		return nil
	}
	args := make([]any, 0, 9*len(es))
	for _, e := range es {
		args = append(args, e.Token, e.Owner, string(e.Type), e.Label, e.Epoch, nanos(e.Created), nanos(e.Expires), e.Shareable, e.ReplacedBy)
	}
	_, err := t.tx.ExecContext(ctx, `INSERT INTO entries (`+entryColumns+`) VALUES `+valueRows(len(es), 9), args...)
	return err
}

func (t indexTx) Replace(ctx context.Context, token, by string, expires time.Time) (bool, error) {
	res, err := t.tx.ExecContext(ctx, `UPDATE entries SET replaced_by = ?, expires = ?
		WHERE token = ? AND replaced_by = ''`, by, nanos(expires), token)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (t indexTx) InsertGrant(ctx context.Context, g store.Grant, created time.Time) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO grants
		(id, token, merchant, carrier, order_id, invoice, expires, max_uses, uses, created, state)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`,
		g.ID, g.Token, g.Merchant, g.Carrier, g.OrderID, g.Invoice, g.Expires.UnixNano(), g.MaxUses, created.UnixNano(), string(g.State))
	return err
}

func (t indexTx) OrderGrants(ctx context.Context, merchant, orderID string) ([]store.Grant, error) {
	return grants(ctx, t.tx, ` WHERE merchant = ? AND order_id = ?`, merchant, orderID)
}

func (t indexTx) SetGrantState(ctx context.Context, id string, state store.GrantState) error {
	res, err := t.tx.ExecContext(ctx, `UPDATE grants SET state = ? WHERE id = ?`, string(state), id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errors.Join(err, fmt.Errorf("grant %s: %d rows changed", id, n))
	}
	return nil
}

// AppendAudit inserts evs in one statement.
func (t indexTx) AppendAudit(ctx context.Context, evs ...store.AuditEvent) error {
	if len(evs) == 0 {
		return nil
	}
	args := make([]any, 0, 9*len(evs))
	for _, ev := range evs {
		args = append(args, ev.Seq, ev.Time.UnixNano(), ev.Kind, ev.Actor, ev.Token, ev.OrderID, ev.Outcome, ev.Prev, ev.Hash)
	}
	_, err := t.tx.ExecContext(ctx, `INSERT INTO audit (`+auditColumns+`) VALUES `+valueRows(len(evs), 9), args...)
	return err
}

func (t indexTx) SetLabel(ctx context.Context, token, label string) error {
	_, err := t.tx.ExecContext(ctx, `UPDATE entries SET label = ? WHERE token = ?`, label, token)
	return err
}
