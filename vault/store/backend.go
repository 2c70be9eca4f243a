package store

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"iter"
	"time"

	"orderseal/internal/signedhttp/nonce"
)

// The backend interfaces: what a Store needs from its persistence. They hold
// no domain logic (sealing, dedupe, the group commit, audit hashing,
// failover and the flush policy all live in Store, once for every backend).
// A backend package (vault/store/sqlite, …) implements them; the conformance
// suite in vault/store/storetest proves an implementation.

// Backends are the stores a Store is built over. Each is its own database
// under its own credential (DESIGN.md §7, §9): the index never holds PII,
// sealed or not.
type Backends struct {
	Index   Index
	Primary Data
	Backup  Data    // nil: no backup
	Pending Pending // on the vault host's own storage, so it is writable when a data store is not
}

// Record is one sealed record as a data store or the pending table holds
// it: a token's (its sealed reference to a shared value), or a shared
// value's, keyed by its share id ("shr_…") in Token.
type Record struct {
	Token   string
	Dedupe  []byte // HMAC-SHA256 of owner, type and folded value under the dedupe sub-key (a shared record: its nonce key's MAC)
	Nonce   []byte // 24 bytes
	Sealed  []byte // XChaCha20-Poly1305 under the seal sub-key, AAD = Token
	Created int64  // unix nanoseconds: the queue order and the orphan sweep's watermark
}

// Same reports whether r and o are the same sealed record.
func (r Record) Same(o Record) bool {
	return r.Token == o.Token && bytes.Equal(r.Dedupe, o.Dedupe) &&
		bytes.Equal(r.Nonce, o.Nonce) && bytes.Equal(r.Sealed, o.Sealed)
}

// Records is what the data stores and the pending table have in common.
// Each method is one atomic step (one transaction, one commit), durable
// when it returns (synchronous=FULL or its equivalent).
type Records interface {
	// Put writes rs in one transaction (one commit for all of them).
	// Writing a record again is a no-op; a different record under a token
	// already held fails with an error wrapping ErrCorrupt (the other
	// records of rs may then be written).
	Put(ctx context.Context, rs ...Record) error
	// Get returns token's record; ok is false when there is none.
	Get(ctx context.Context, token string) (r Record, ok bool, err error)
	// TokensByHash returns the tokens of the records with each of hashes,
	// keyed by string(hash), each list oldest first (Created, then Token).
	// No hashes: an empty map (a cheap probe of the store).
	TokensByHash(ctx context.Context, hashes [][]byte) (map[string][]string, error)
	// Delete removes the records of tokens, in one transaction; absent ones are skipped.
	Delete(ctx context.Context, tokens ...string) error
	// CreatedIn returns the tokens of records with after < Created <= upTo, oldest first.
	CreatedIn(ctx context.Context, after, upTo int64) ([]string, error)
	// DeleteOld removes token's record if its Created <= upTo.
	DeleteOld(ctx context.Context, token string, upTo int64) error
	// Close releases the store; later calls fail.
	Close() error
}

// Data is a data store: token → sealed record (the primary, or the backup
// written through). It keeps the key check it was opened with and refuses
// (ErrWrongKey) a store sealed under another data key. An error because the
// store cannot be reached, or fails, wraps ErrUnavailable (or ErrCorrupt for
// a conflicting record); the Data recovers by itself once the store is back,
// and never silently recreates a store that went missing after it was
// opened: a missing store is an outage.
type Data interface {
	Records
	// Ping checks the store can be reached now.
	Ping(ctx context.Context) error
	// Scan yields every record in token order; an error ends it.
	Scan(ctx context.Context) iter.Seq2[Record, error]
	// PutCheckpoint keeps cp as the store's audit checkpoint unless it holds one of a higher Seq.
	PutCheckpoint(ctx context.Context, cp Checkpoint) error
	// Checkpoint returns the audit checkpoint the store holds; ok is false when none.
	Checkpoint(ctx context.Context) (cp Checkpoint, ok bool, err error)
}

// Pending is the pending table: sealed records not yet in every data store.
// Like Data it keeps a key check and refuses a table written under another
// data key.
type Pending interface {
	Records
	// Oldest returns up to n records, oldest first (Created, then Token).
	Oldest(ctx context.Context, n int) ([]Record, error)
	// Remove deletes r only if the table still holds exactly r (same nonce
	// and sealed value), never a record queued under its token since.
	Remove(ctx context.Context, r Record) error
	// Retried counts one failed flush of token's record.
	Retried(ctx context.Context, token string) error
	// Count returns how many records wait.
	Count(ctx context.Context) (int, error)
	// Tokens returns the tokens of every waiting record.
	Tokens(ctx context.Context) ([]string, error)
}

// IndexReader is the index's read-only side: entries (owner → token, no
// PII), grants and the audit log. A read-only opening of an index (for
// 'vault audit verify' and the test harness) offers just this.
type IndexReader interface {
	// Entry returns token's entry, expired or not, or ErrNotFound.
	Entry(ctx context.Context, token string) (Entry, error)
	// Entries returns the entries of tokens by token; a token without one is absent.
	Entries(ctx context.Context, tokens []string) (map[string]Entry, error)
	// List returns owner's entries unexpired at now, oldest first (Created, then Token).
	List(ctx context.Context, owner string, now time.Time) ([]Entry, error)
	// Due returns the current entries (ReplacedBy "") created at or before
	// createdBy and unexpired at now, oldest first: rotation's work.
	Due(ctx context.Context, createdBy, now time.Time) ([]Entry, error)
	// Tokens yields the token of every entry.
	Tokens(ctx context.Context) iter.Seq2[string, error]
	// Grant returns the grant for (token, carrier, orderID), or ErrNoGrant.
	Grant(ctx context.Context, token, carrier, orderID string) (Grant, error)
	// GrantsTo returns every grant made to carrier, any state.
	GrantsTo(ctx context.Context, carrier string) ([]Grant, error)
	// GrantsOf returns every grant made to merchant.
	GrantsOf(ctx context.Context, merchant string) ([]Grant, error)
	// Grants returns every grant, to any merchant: for a test showing that
	// refused input left no grant behind.
	Grants(ctx context.Context) ([]Grant, error)
	// Audit yields the audit log in Seq order. A row that cannot be read
	// is yielded as an error wrapping ErrAuditBroken.
	Audit(ctx context.Context) iter.Seq2[AuditEvent, error]
	// AuditHead returns the last audit entry's Seq and Hash (0, nil for an empty log).
	AuditHead(ctx context.Context) (seq int64, hash []byte, err error)
	// AuditEntry returns the audit entry seq, or an error wrapping ErrAuditBroken when there is none.
	AuditEntry(ctx context.Context, seq int64) (AuditEvent, error)
	// AuditFind returns the audit entries of kind with outcome ("": any), in Seq order.
	AuditFind(ctx context.Context, kind, outcome string) ([]AuditEvent, error)
	// Close releases the index.
	Close() error
}

// Index is the index database.
type Index interface {
	IndexReader
	// Update runs fn in one transaction holding the index's write lock
	// from its start, so what fn reads (the audit head above all) cannot
	// change before it commits: every write of fn commits together, or
	// none does (fn's error, or a failed commit, rolls back). fn must not
	// keep tx after it returns.
	Update(ctx context.Context, fn func(tx IndexTx) error) error
	// UseGrant counts one use of the grant for (token, carrier, orderID)
	// in one atomic step if it is active, its invoice matches, it is
	// unexpired at now and Uses < MaxUses, returning it with the use counted; ok is false when
	// no grant qualified (nothing changed).
	UseGrant(ctx context.Context, token, carrier, orderID, invoice string, now time.Time) (g Grant, ok bool, err error)
	// Nonces is the replay memory of signed requests to the vault, in the
	// index: durable, and shared by every vault process serving from it
	// (DESIGN.md §5 "Hardening"); each caller holds at most quota(caller)
	// live nonces (nil: nonce.DefaultQuota).
	Nonces(quota nonce.Quota) nonce.Store
}

// IndexTx is the index inside Update's transaction.
type IndexTx interface {
	// Entry is IndexReader.Entry inside the transaction.
	Entry(ctx context.Context, token string) (Entry, error)
	// Grant is IndexReader.Grant inside the transaction.
	Grant(ctx context.Context, token, carrier, orderID string) (Grant, error)
	// AuditHead returns the last audit entry's Seq and Hash (0, nil for an empty log).
	AuditHead(ctx context.Context) (seq int64, hash []byte, err error)
	// InsertEntries inserts new entries (a token is never reused).
	InsertEntries(ctx context.Context, es ...Entry) error
	// Replace marks token replaced by by, expiring at expires, if it is
	// not replaced yet; done is false when it was (nothing changed).
	Replace(ctx context.Context, token, by string, expires time.Time) (done bool, err error)
	// InsertGrant inserts g (ID and State set, Uses 0), made at created; (Token, Carrier, OrderID) is unique.
	InsertGrant(ctx context.Context, g Grant, created time.Time) error
	// OrderGrants returns the grants of merchant's order orderID, any state, oldest first.
	OrderGrants(ctx context.Context, merchant, orderID string) ([]Grant, error)
	// SetLabel sets token's label.
	SetLabel(ctx context.Context, token, label string) error
	// SetGrantState sets the state of grant id.
	SetGrantState(ctx context.Context, id string, state GrantState) error
	// AppendAudit appends evs, chained (Seq, Prev and Hash set) onto the head AuditHead returned.
	AppendAudit(ctx context.Context, evs ...AuditEvent) error
}

// KeyCheck is the value a data store or pending table records under key k,
// so that a store sealed under another key is refused: an HMAC under the
// key-check sub-key, which reveals nothing of the other sub-keys.
func KeyCheck(k *DataKey) ([]byte, error) {
	if k == nil {
		return nil, errNoDataKey
	}
	checkKey := k.Expand(labelCheck)
	defer clear(checkKey)
	m := hmac.New(sha256.New, checkKey)
	m.Write([]byte(labelCheck))
	return m.Sum(nil), nil
}
