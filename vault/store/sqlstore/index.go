package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"orderseal/internal/sqldb"
	"orderseal/vault/store"
)

// Index is the index database: entries, grants and the audit log. It is
// store.Index but for Nonces, which each backend adds over its own
// driver. On SQLite the handle must make every transaction a write
// transaction (sqlitex.Immediate, and a write lock given to sqlitex.Wrap),
// so the audit head Update's fn reads cannot move before it commits.
type Index struct{ db sqldb.DB }

// NewIndex returns the index over db, migrated by its backend.
func NewIndex(db sqldb.DB) *Index { return &Index{db: db} }

// Close closes the database.
func (x *Index) Close() error { return x.db.Close() }

const entryColumns = `token, owner, type, label, epoch, created, expires, shareable, replaced_by`

var insertEntries = newInsert("entries", []column{
	{"token", "text"}, {"owner", "text"}, {"type", "text"}, {"label", "text"}, {"epoch", "bigint"},
	{"created", "bigint"}, {"expires", "bigint"}, {"shareable", "boolean"}, {"replaced_by", "text"},
}, "")

func scanEntry(r sqldb.Row) (store.Entry, error) {
	var e store.Entry
	var typ string
	var created, expires int64
	if err := r.Scan(&e.Token, &e.Owner, &typ, &e.Label, &e.Epoch, &created, &expires, &e.Shareable, &e.ReplacedBy); err != nil {
		return store.Entry{}, err
	}
	e.Type, e.Created, e.Expires = store.TokenType(typ), sqldb.FromUnixNano(created), sqldb.FromUnixNano(expires)
	return e, nil
}

func entry(ctx context.Context, q sqldb.Querier, token string) (store.Entry, error) {
	e, err := scanEntry(q.QueryRow(ctx, `SELECT `+entryColumns+` FROM entries WHERE token = $1`, token))
	if errors.Is(err, sqldb.ErrNoRows) {
		return store.Entry{}, store.ErrNotFound
	}
	return e, err
}

// Entry returns token's entry, or store.ErrNotFound.
func (x *Index) Entry(ctx context.Context, token string) (store.Entry, error) {
	return entry(ctx, x.db, token)
}

// Entries returns the entries of tokens by token.
func (x *Index) Entries(ctx context.Context, tokens []string) (map[string]store.Entry, error) {
	out := map[string]store.Entry{}
	for len(tokens) > 0 {
		n := min(len(tokens), sqldb.ListChunk(x.db))
		cond, args := sqldb.In(x.db, "token", 1, tokens[:n])
		es, err := sqldb.Collect(ctx, x.db, scanEntry, `SELECT `+entryColumns+` FROM entries WHERE `+cond, args...)
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
	return sqldb.Collect(ctx, x.db, scanEntry, `SELECT `+entryColumns+` FROM entries
		WHERE owner = $1 AND (expires = 0 OR expires > $2) ORDER BY created, token`, owner, now.UnixNano())
}

// Due returns the current entries created at or before createdBy and unexpired at now.
func (x *Index) Due(ctx context.Context, createdBy, now time.Time) ([]store.Entry, error) {
	return sqldb.Collect(ctx, x.db, scanEntry, `SELECT `+entryColumns+` FROM entries
		WHERE replaced_by = '' AND created <= $1 AND (expires = 0 OR expires > $2)
		ORDER BY created, token`, createdBy.UnixNano(), now.UnixNano())
}

// Tokens yields the token of every entry.
func (x *Index) Tokens(ctx context.Context) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		rows, err := x.db.Query(ctx, `SELECT token FROM entries`)
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

func scanGrant(r sqldb.Row) (store.Grant, error) {
	var g store.Grant
	var exp int64
	var state string
	err := r.Scan(&g.ID, &g.Token, &g.Merchant, &g.Carrier, &g.OrderID, &g.Invoice, &exp, &g.MaxUses, &g.Uses, &state)
	g.Expires, g.State = sqldb.FromUnixNano(exp), store.GrantState(state)
	return g, err
}

func grant(ctx context.Context, q sqldb.Querier, token, carrier, orderID string) (store.Grant, error) {
	g, err := scanGrant(q.QueryRow(ctx, `SELECT `+grantColumns+` FROM grants
		WHERE token = $1 AND carrier = $2 AND order_id = $3`, token, carrier, orderID))
	if errors.Is(err, sqldb.ErrNoRows) {
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
	return grants(ctx, x.db, ` WHERE carrier = $1`, carrier)
}

// GrantsOf returns every grant made to merchant, oldest first.
func (x *Index) GrantsOf(ctx context.Context, merchant string) ([]store.Grant, error) {
	return grants(ctx, x.db, ` WHERE merchant = $1`, merchant)
}

// Grants returns every grant, to any merchant, oldest first.
func (x *Index) Grants(ctx context.Context) ([]store.Grant, error) {
	return grants(ctx, x.db, ``)
}

func grants(ctx context.Context, q sqldb.Querier, where string, args ...any) ([]store.Grant, error) {
	return sqldb.Collect(ctx, q, scanGrant, `SELECT `+grantColumns+` FROM grants`+where+` ORDER BY created, id`, args...)
}

// UseGrant counts one use of a live grant in one statement, so two
// concurrent uses, on any nodes, cannot both take the last one.
func (x *Index) UseGrant(ctx context.Context, token, carrier, orderID, invoice string, now time.Time) (store.Grant, bool, error) {
	var g store.Grant
	err := x.write(ctx, func(q sqldb.Querier) (err error) {
		g, err = scanGrant(q.QueryRow(ctx, `UPDATE grants SET uses = uses + 1
			WHERE token = $1 AND carrier = $2 AND order_id = $3 AND invoice = $4 AND expires > $5 AND uses < max_uses
				AND state = 'active'
			RETURNING `+grantColumns, token, carrier, orderID, invoice, now.UnixNano()))
		return err
	})
	if errors.Is(err, sqldb.ErrNoRows) {
		return store.Grant{}, false, nil
	}
	if err != nil {
		return store.Grant{}, false, err
	}
	return g, true, nil
}

// write runs one statement outside Update. On SQLite it runs in a
// transaction, so it queues on the backend's write lock with every other
// writer of the process rather than in SQLite's sleeping busy handler; on
// PostgreSQL the statement is its own transaction, no extra round trips.
func (x *Index) write(ctx context.Context, fn func(sqldb.Querier) error) error {
	if x.db.Dialect() == sqldb.SQLite {
		return x.db.Tx(ctx, func(tx sqldb.Tx) error { return fn(tx) })
	}
	return fn(x.db)
}

const auditColumns = `seq, time, kind, actor, token, order_id, outcome, prev, hash`

var insertAudit = newInsert("audit", []column{
	{"seq", "bigint"}, {"time", "bigint"}, {"kind", "text"}, {"actor", "text"}, {"token", "text"},
	{"order_id", "text"}, {"outcome", "text"}, {"prev", "bytea"}, {"hash", "bytea"},
}, "")

func scanAudit(r sqldb.Row) (store.AuditEvent, error) {
	var ev store.AuditEvent
	var t int64
	err := r.Scan(&ev.Seq, &t, &ev.Kind, &ev.Actor, &ev.Token, &ev.OrderID, &ev.Outcome, &ev.Prev, &ev.Hash)
	ev.Time = time.Unix(0, t).UTC()
	return ev, err
}

// Audit yields the audit log in seq order.
func (x *Index) Audit(ctx context.Context) iter.Seq2[store.AuditEvent, error] {
	return func(yield func(store.AuditEvent, error) bool) {
		rows, err := x.db.Query(ctx, `SELECT `+auditColumns+` FROM audit ORDER BY seq`)
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
func (x *Index) AuditHead(ctx context.Context) (int64, []byte, error) { return auditHead(ctx, x.db) }

func auditHead(ctx context.Context, q sqldb.Querier) (int64, []byte, error) {
	var seq int64
	var hash []byte
	err := q.QueryRow(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, sqldb.ErrNoRows) {
		return 0, nil, nil
	}
	return seq, hash, err
}

// AuditEntry returns the audit entry seq.
func (x *Index) AuditEntry(ctx context.Context, seq int64) (store.AuditEvent, error) {
	ev, err := scanAudit(x.db.QueryRow(ctx, `SELECT `+auditColumns+` FROM audit WHERE seq = $1`, seq))
	if errors.Is(err, sqldb.ErrNoRows) {
		return ev, fmt.Errorf("%w: entry %d: missing", store.ErrAuditBroken, seq)
	}
	return ev, err
}

// AuditFind returns the audit entries of kind with outcome ("": any), in seq order.
func (x *Index) AuditFind(ctx context.Context, kind, outcome string) ([]store.AuditEvent, error) {
	return sqldb.Collect(ctx, x.db, scanAudit, `SELECT `+auditColumns+` FROM audit
		WHERE ($1 = '' OR kind = $1) AND ($2 = '' OR outcome = $2) ORDER BY seq`, kind, outcome)
}

// indexLock names the lock every Update holds: the index's write lock.
const indexLock = "vault/store index"

// Update runs fn in one transaction that first takes the index's write
// lock, so the audit head fn reads cannot move, on any node, before it
// commits: on PostgreSQL a transaction advisory lock (released at commit
// or rollback), on SQLite the write transaction itself (BEGIN IMMEDIATE,
// behind the backend's write lock).
func (x *Index) Update(ctx context.Context, fn func(store.IndexTx) error) error {
	return x.db.Tx(ctx, func(tx sqldb.Tx) error {
		if err := tx.Lock(ctx, indexLock); err != nil {
			return err
		}
		return fn(indexTx{tx})
	})
}

// indexTx is the index inside Update's transaction.
type indexTx struct{ tx sqldb.Tx }

func (t indexTx) Entry(ctx context.Context, token string) (store.Entry, error) {
	return entry(ctx, t.tx, token)
}

func (t indexTx) Grant(ctx context.Context, token, carrier, orderID string) (store.Grant, error) {
	return grant(ctx, t.tx, token, carrier, orderID)
}

func (t indexTx) AuditHead(ctx context.Context) (int64, []byte, error) { return auditHead(ctx, t.tx) }

// InsertEntries inserts es in one statement.
func (t indexTx) InsertEntries(ctx context.Context, es ...store.Entry) error {
	if len(es) == 0 {
		return nil
	}
	rows := make([][]any, len(es))
	for i, e := range es {
		rows[i] = []any{e.Token, e.Owner, string(e.Type), e.Label, int64(e.Epoch), sqldb.UnixNano(e.Created), sqldb.UnixNano(e.Expires), e.Shareable, e.ReplacedBy}
	}
	_, err := insertEntries.exec(ctx, t.tx, rows)
	return err
}

func (t indexTx) Replace(ctx context.Context, token, by string, expires time.Time) (bool, error) {
	n, err := t.tx.Exec(ctx, `UPDATE entries SET replaced_by = $1, expires = $2
		WHERE token = $3 AND replaced_by = ''`, by, sqldb.UnixNano(expires), token)
	return n == 1 && err == nil, err
}

func (t indexTx) InsertGrant(ctx context.Context, g store.Grant, created time.Time) error {
	_, err := t.tx.Exec(ctx, `INSERT INTO grants
		(id, token, merchant, carrier, order_id, invoice, expires, max_uses, uses, created, state)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10)`,
		g.ID, g.Token, g.Merchant, g.Carrier, g.OrderID, g.Invoice, g.Expires.UnixNano(), g.MaxUses, created.UnixNano(), string(g.State))
	return err
}

func (t indexTx) OrderGrants(ctx context.Context, merchant, orderID string) ([]store.Grant, error) {
	return grants(ctx, t.tx, ` WHERE merchant = $1 AND order_id = $2`, merchant, orderID)
}

func (t indexTx) SetGrantState(ctx context.Context, id string, state store.GrantState) error {
	n, err := t.tx.Exec(ctx, `UPDATE grants SET state = $1 WHERE id = $2`, string(state), id)
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("grant %s: %d rows changed", id, n)
	}
	return nil
}

// AppendAudit inserts evs in one statement.
func (t indexTx) AppendAudit(ctx context.Context, evs ...store.AuditEvent) error {
	if len(evs) == 0 {
		return nil
	}
	rows := make([][]any, len(evs))
	for i, ev := range evs {
		rows[i] = []any{ev.Seq, ev.Time.UnixNano(), ev.Kind, ev.Actor, ev.Token, ev.OrderID, ev.Outcome, ev.Prev, ev.Hash}
	}
	_, err := insertAudit.exec(ctx, t.tx, rows)
	return err
}

func (t indexTx) SetLabel(ctx context.Context, token, label string) error {
	_, err := t.tx.Exec(ctx, `UPDATE entries SET label = $1 WHERE token = $2`, label, token)
	return err
}
