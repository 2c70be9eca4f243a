package postgres

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"orderseal/internal/dsn"
	"orderseal/internal/pgdb"
	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncepg"
	"orderseal/vault/store"
)

// IndexComponent names the index's migrations in schema_version.
const IndexComponent = "vault-index"

var indexMigrations = []string{`
CREATE TABLE entries (
	token       TEXT    COLLATE "C" PRIMARY KEY,
	owner       TEXT    NOT NULL,
	type        TEXT    NOT NULL,
	label       TEXT    NOT NULL,
	epoch       INTEGER NOT NULL,
	created     BIGINT  NOT NULL, -- unix nanoseconds
	expires     BIGINT  NOT NULL, -- unix nanoseconds; 0: never
	shareable   BOOLEAN NOT NULL,
	replaced_by TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX entries_owner ON entries (owner, created);
CREATE INDEX entries_current ON entries (created) WHERE replaced_by = '';
CREATE TABLE grants (
	id       TEXT    COLLATE "C" PRIMARY KEY,
	token    TEXT    COLLATE "C" NOT NULL REFERENCES entries (token),
	merchant TEXT    NOT NULL,
	carrier  TEXT    NOT NULL,
	order_id TEXT    NOT NULL,
	invoice  TEXT    NOT NULL,
	expires  BIGINT  NOT NULL,
	max_uses INTEGER NOT NULL CHECK (max_uses > 0),
	uses     INTEGER NOT NULL DEFAULT 0,
	created  BIGINT  NOT NULL,
	state    TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'active', 'revoked')),
	UNIQUE (token, carrier, order_id)
);
CREATE INDEX grants_order ON grants (merchant, order_id);
CREATE INDEX grants_carrier ON grants (carrier);
CREATE TABLE audit (
	seq      BIGINT PRIMARY KEY,
	time     BIGINT NOT NULL, -- unix nanoseconds
	kind     TEXT   NOT NULL,
	actor    TEXT   NOT NULL,
	token    TEXT   NOT NULL,
	order_id TEXT   NOT NULL,
	outcome  TEXT   NOT NULL,
	prev     BYTEA  NOT NULL,
	hash     BYTEA  NOT NULL
);
`, noncepg.Migration}

// Index is the index database (store.Index) on PostgreSQL: entries, grants
// and the audit log, shared by every vault node. Update holds a
// transaction advisory lock from its start, so of two nodes appending to
// the audit chain one waits for the other's commit.
type Index struct{ pool *pgxpool.Pool }

var _ store.Index = (*Index)(nil)

// OpenIndex connects to the index a postgres:// DSN names and runs its migrations.
func OpenIndex(ctx context.Context, url string) (*Index, error) {
	pool, err := pgdb.OpenMigrated(ctx, url, 0, IndexComponent, indexMigrations)
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	return &Index{pool: pool}, nil
}

// OpenIndexReadOnly connects to an existing index for reading only, in
// read-only sessions (for 'vault audit verify' and the test harness).
func OpenIndexReadOnly(ctx context.Context, url string) (*Index, error) {
	d, err := dsn.Parse(url)
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	pool, err := pgdb.Open(ctx, url, 2)
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	pool.Close()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	cfg.MaxConns = 2
	if pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("vault index: %w", pgdb.Explain(err, d))
	}
	return &Index{pool: pool}, nil
}

// Close closes the pool.
func (x *Index) Close() error { x.pool.Close(); return nil }

// Nonces is the signed requests' replay memory in the index (store.Index).
func (x *Index) Nonces(quota nonce.Quota) nonce.Store { return noncepg.New(x.pool, quota) }

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

// querier is the pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

const entryColumns = `token, owner, type, label, epoch, created, expires, shareable, replaced_by`

func scanEntry(sc pgx.Row) (store.Entry, error) {
	var e store.Entry
	var typ string
	var created, expires int64
	if err := sc.Scan(&e.Token, &e.Owner, &typ, &e.Label, &e.Epoch, &created, &expires, &e.Shareable, &e.ReplacedBy); err != nil {
		return store.Entry{}, err
	}
	e.Type, e.Created, e.Expires = store.TokenType(typ), fromNanos(created), fromNanos(expires)
	return e, nil
}

func queryEntries(ctx context.Context, q querier, sql string, args ...any) ([]store.Entry, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Entry, error) { return scanEntry(r) })
}

func entry(ctx context.Context, q querier, token string) (store.Entry, error) {
	e, err := scanEntry(q.QueryRow(ctx, `SELECT `+entryColumns+` FROM entries WHERE token = $1`, token))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Entry{}, store.ErrNotFound
	}
	return e, err
}

// Entry returns token's entry, or store.ErrNotFound.
func (x *Index) Entry(ctx context.Context, token string) (store.Entry, error) {
	return entry(ctx, x.pool, token)
}

// Entries returns the entries of tokens by token.
func (x *Index) Entries(ctx context.Context, tokens []string) (map[string]store.Entry, error) {
	out := map[string]store.Entry{}
	if len(tokens) == 0 {
		return out, nil
	}
	es, err := queryEntries(ctx, x.pool, `SELECT `+entryColumns+` FROM entries WHERE token = ANY ($1)`, tokens)
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		out[e.Token] = e
	}
	return out, nil
}

// List returns owner's entries unexpired at now, oldest first.
func (x *Index) List(ctx context.Context, owner string, now time.Time) ([]store.Entry, error) {
	return queryEntries(ctx, x.pool, `SELECT `+entryColumns+` FROM entries
		WHERE owner = $1 AND (expires = 0 OR expires > $2) ORDER BY created, token`, owner, now.UnixNano())
}

// Due returns the current entries created at or before createdBy and unexpired at now.
func (x *Index) Due(ctx context.Context, createdBy, now time.Time) ([]store.Entry, error) {
	return queryEntries(ctx, x.pool, `SELECT `+entryColumns+` FROM entries
		WHERE replaced_by = '' AND created <= $1 AND (expires = 0 OR expires > $2)
		ORDER BY created, token`, createdBy.UnixNano(), now.UnixNano())
}

// Tokens yields the token of every entry.
func (x *Index) Tokens(ctx context.Context) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		rows, err := x.pool.Query(ctx, `SELECT token FROM entries`)
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

func scanGrant(sc pgx.Row) (store.Grant, error) {
	var g store.Grant
	var exp int64
	var state string
	err := sc.Scan(&g.ID, &g.Token, &g.Merchant, &g.Carrier, &g.OrderID, &g.Invoice, &exp, &g.MaxUses, &g.Uses, &state)
	g.Expires, g.State = fromNanos(exp), store.GrantState(state)
	return g, err
}

func grant(ctx context.Context, q querier, token, carrier, orderID string) (store.Grant, error) {
	g, err := scanGrant(q.QueryRow(ctx, `SELECT `+grantColumns+` FROM grants
		WHERE token = $1 AND carrier = $2 AND order_id = $3`, token, carrier, orderID))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Grant{}, store.ErrNoGrant
	}
	return g, err
}

// Grant returns the grant for (token, carrier, orderID), or store.ErrNoGrant.
func (x *Index) Grant(ctx context.Context, token, carrier, orderID string) (store.Grant, error) {
	return grant(ctx, x.pool, token, carrier, orderID)
}

// GrantsTo returns every grant made to carrier, oldest first.
func (x *Index) GrantsTo(ctx context.Context, carrier string) ([]store.Grant, error) {
	return grants(ctx, x.pool, ` WHERE carrier = $1`, carrier)
}

// GrantsOf returns every grant made to merchant, oldest first.
func (x *Index) GrantsOf(ctx context.Context, merchant string) ([]store.Grant, error) {
	return grants(ctx, x.pool, ` WHERE merchant = $1`, merchant)
}

// Grants returns every grant, to any merchant, oldest first.
func (x *Index) Grants(ctx context.Context) ([]store.Grant, error) {
	return grants(ctx, x.pool, ``)
}

func grants(ctx context.Context, q querier, where string, args ...any) ([]store.Grant, error) {
	rows, err := q.Query(ctx, `SELECT `+grantColumns+` FROM grants`+where+` ORDER BY created, id`, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Grant, error) { return scanGrant(r) })
}

// UseGrant counts one use of a live grant in one statement, so two
// concurrent uses, on any nodes, cannot both take the last one.
func (x *Index) UseGrant(ctx context.Context, token, carrier, orderID, invoice string, now time.Time) (store.Grant, bool, error) {
	g, err := scanGrant(x.pool.QueryRow(ctx, `UPDATE grants SET uses = uses + 1
		WHERE token = $1 AND carrier = $2 AND order_id = $3 AND invoice = $4 AND expires > $5 AND uses < max_uses
			AND state = 'active'
		RETURNING `+grantColumns, token, carrier, orderID, invoice, now.UnixNano()))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Grant{}, false, nil
	}
	if err != nil {
		return store.Grant{}, false, err
	}
	return g, true, nil
}

const auditColumns = `seq, time, kind, actor, token, order_id, outcome, prev, hash`

func scanAudit(sc pgx.Row) (store.AuditEvent, error) {
	var ev store.AuditEvent
	var t int64
	err := sc.Scan(&ev.Seq, &t, &ev.Kind, &ev.Actor, &ev.Token, &ev.OrderID, &ev.Outcome, &ev.Prev, &ev.Hash)
	ev.Time = time.Unix(0, t).UTC()
	return ev, err
}

// Audit yields the audit log in seq order.
func (x *Index) Audit(ctx context.Context) iter.Seq2[store.AuditEvent, error] {
	return func(yield func(store.AuditEvent, error) bool) {
		rows, err := x.pool.Query(ctx, `SELECT `+auditColumns+` FROM audit ORDER BY seq`)
		if err != nil {
			yield(store.AuditEvent{}, err)
			return
		}
		defer rows.Close()
		for n := 1; rows.Next(); n++ {
			ev, err := scanAudit(rows)
			if err != nil {
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
func (x *Index) AuditHead(ctx context.Context) (int64, []byte, error) { return auditHead(ctx, x.pool) }

// AuditEntry returns the audit entry seq.
func (x *Index) AuditEntry(ctx context.Context, seq int64) (store.AuditEvent, error) {
	ev, err := scanAudit(x.pool.QueryRow(ctx, `SELECT `+auditColumns+` FROM audit WHERE seq = $1`, seq))
	if errors.Is(err, pgx.ErrNoRows) {
		return ev, fmt.Errorf("%w: entry %d: missing", store.ErrAuditBroken, seq)
	}
	return ev, err
}

// AuditFind returns the audit entries of kind with outcome ("": any), in seq order.
func (x *Index) AuditFind(ctx context.Context, kind, outcome string) ([]store.AuditEvent, error) {
	rows, err := x.pool.Query(ctx, `SELECT `+auditColumns+` FROM audit
		WHERE ($1 = '' OR kind = $1) AND ($2 = '' OR outcome = $2) ORDER BY seq`, kind, outcome)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AuditEvent, error) { return scanAudit(r) })
}

// indexLock is the advisory lock every Update holds: the index's write lock.
const indexLock = 0x6f7264657273_01 // "orders" and 1

// Update runs fn in one transaction that first takes the index's write
// lock (a transaction advisory lock, released at commit or rollback), so
// the audit head fn reads cannot move, on any node, before it commits.
func (x *Index) Update(ctx context.Context, fn func(store.IndexTx) error) error {
	return pgx.BeginTxFunc(ctx, x.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(indexLock)); err != nil {
			return err
		}
		return fn(indexTx{tx})
	})
}

// indexTx is the index inside Update's transaction.
type indexTx struct{ tx pgx.Tx }

func (t indexTx) Entry(ctx context.Context, token string) (store.Entry, error) {
	return entry(ctx, t.tx, token)
}

func (t indexTx) Grant(ctx context.Context, token, carrier, orderID string) (store.Grant, error) {
	return grant(ctx, t.tx, token, carrier, orderID)
}

func (t indexTx) AuditHead(ctx context.Context) (int64, []byte, error) { return auditHead(ctx, t.tx) }

func auditHead(ctx context.Context, q querier) (int64, []byte, error) {
	var seq int64
	var hash []byte
	err := q.QueryRow(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, nil
	}
	return seq, hash, err
}

// InsertEntries inserts es in one round trip.
func (t indexTx) InsertEntries(ctx context.Context, es ...store.Entry) error {
	if len(es) == 0 {
		return nil
	}
	rows := make([][]any, len(es))
	for i, e := range es {
		rows[i] = []any{e.Token, e.Owner, string(e.Type), e.Label, e.Epoch, nanos(e.Created), nanos(e.Expires), e.Shareable, e.ReplacedBy}
	}
	_, err := t.tx.CopyFrom(ctx, pgx.Identifier{"entries"},
		[]string{"token", "owner", "type", "label", "epoch", "created", "expires", "shareable", "replaced_by"}, pgx.CopyFromRows(rows))
	return err
}

func (t indexTx) Replace(ctx context.Context, token, by string, expires time.Time) (bool, error) {
	tag, err := t.tx.Exec(ctx, `UPDATE entries SET replaced_by = $1, expires = $2
		WHERE token = $3 AND replaced_by = ''`, by, nanos(expires), token)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
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
	tag, err := t.tx.Exec(ctx, `UPDATE grants SET state = $1 WHERE id = $2`, string(state), id)
	if err != nil {
		return err
	}
	if n := tag.RowsAffected(); n != 1 {
		return fmt.Errorf("grant %s: %d rows changed", id, n)
	}
	return nil
}

// AppendAudit inserts evs in one round trip.
func (t indexTx) AppendAudit(ctx context.Context, evs ...store.AuditEvent) error {
	if len(evs) == 0 {
		return nil
	}
	rows := make([][]any, len(evs))
	for i, ev := range evs {
		rows[i] = []any{ev.Seq, ev.Time.UnixNano(), ev.Kind, ev.Actor, ev.Token, ev.OrderID, ev.Outcome, ev.Prev, ev.Hash}
	}
	_, err := t.tx.CopyFrom(ctx, pgx.Identifier{"audit"},
		[]string{"seq", "time", "kind", "actor", "token", "order_id", "outcome", "prev", "hash"}, pgx.CopyFromRows(rows))
	return err
}

func (t indexTx) SetLabel(ctx context.Context, token, label string) error {
	_, err := t.tx.Exec(ctx, `UPDATE entries SET label = $1 WHERE token = $2`, label, token)
	return err
}
