package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"orderseal/internal/pgdb"
	"orderseal/internal/signedhttp/nonce"
	"orderseal/internal/signedhttp/nonce/noncepg"
	"orderseal/vault/store"
	"orderseal/vault/store/sqlstore"
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
// and the audit log (vault/store/sqlstore), shared by every vault node.
// Update holds a transaction advisory lock from its start (sqldb's
// Tx.Lock), so of two nodes appending to the audit chain one waits for the
// other's commit.
type Index struct {
	*sqlstore.Index
	pool *pgxpool.Pool
}

var _ store.Index = (*Index)(nil)

func newIndex(pool *pgxpool.Pool) *Index {
	return &Index{Index: sqlstore.NewIndex(pgdb.Wrap(pool)), pool: pool}
}

// OpenIndex connects to the index a postgres:// DSN names and runs its migrations.
func OpenIndex(ctx context.Context, url string) (*Index, error) {
	pool, err := pgdb.OpenMigrated(ctx, url, 0, IndexComponent, indexMigrations)
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	return newIndex(pool), nil
}

// OpenIndexReadOnly connects to an existing index for reading only, in
// read-only sessions (for 'vault audit verify' and the test harness).
func OpenIndexReadOnly(ctx context.Context, url string) (*Index, error) {
	pool, err := pgdb.OpenReadOnly(ctx, url, 2)
	if err != nil {
		return nil, fmt.Errorf("vault index: %w", err)
	}
	return newIndex(pool), nil
}

// Nonces is the signed requests' replay memory in the index (store.Index).
func (x *Index) Nonces(quota nonce.Quota) nonce.Store { return noncepg.New(x.pool, quota) }
