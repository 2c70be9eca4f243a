// Package store is the token vault (DESIGN.md §7, §8, §9): an index of who
// owns which token, data stores of sealed values, a pending table for
// writes a data store could not take, grants, and a hash-chained audit log.
//
// # Backends
//
// Store holds all of the vault's logic once, over persistence interfaces
// (backend.go) that a backend package implements — vault/store/sqlite and
// vault/store/postgres (index and data as two databases under two roles),
// each proven by the suite in vault/store/storetest:
//
//   - Index: entries (owner → token, type, label, epoch, created, expires,
//     shareable, replaced_by), grants, and the audit log. No PII at all, not
//     even sealed: a copy of the index reveals which owners have how many
//     tokens, nothing more.
//   - Data, twice: the primary and the optional backup, written through:
//     token → dedupe hash, nonce, sealed reference, created; and share id →
//     the sealed value, held once however many owners registered it.
//   - Pending: sealed records not yet in every data store. It holds
//     ciphertext, so it is not part of the index (whose credential must
//     never reach PII), but it lives on the vault host's own storage, so it
//     is writable when a data store is not.
//   - The data key: its own 0600 file (CreateDataKey, LoadDataKey), never in
//     any store. Each data store and pending table keeps a key check
//     (KeyCheck, an HMAC under a sub-key) and refuses one sealed under
//     another key.
//
// # Sealing
//
// Sub-keys are HKDF-Expand(data key, label) with one label per purpose.
// Values are sealed with XChaCha20-Poly1305 under the seal sub-key, a random
// 24-byte nonce and AAD = token, so a ciphertext moved to another row fails to
// open. Dedupe uses HMAC-SHA256 under the dedupe sub-key over the
// length-prefixed owner, type and folded value (Options.Fold: for
// addresses NFC, width and case folded); tokens themselves are random.
//
// # Shared values
//
// Identical values of different owners (seeds 001/002) are stored once: a
// token's record holds only a reference to a shared record, sealed under
// the token with a random nonce, and the shared record ("shr_" +
// HMAC-SHA256(share sub-key, type, value)) holds the value, sealed with a
// nonce derived from its id, so every writer makes it byte for byte the
// same and writing it again (a second owner, the pending table's flush) is
// a no-op. Index entries and token records show nothing that links two
// owners: no share id, no count of references. Every new token writes its
// shared record, held already or not, so the writes look the same either
// way. The orphan sweep leaves shared records alone (it cannot tell, without
// opening every reference, whether one is still pointed to); a failed
// batch discards the shared records it created.
//
// # Registration
//
// Register is group-committed. One committer goroutine takes the calls
// queued while its last batch committed (up to maxBatch; a lone call goes
// at once, no timer) and, holding regMu, dedupes them against the stores
// and against each other, writes the new records in one transaction per
// data store (one Data.Put each), then their entries and audit entries in
// one index transaction (one Index.Update), and only then answers the
// callers. A record is always durable before the entry naming it; if the
// index transaction fails the batch's records are discarded and every
// caller gets the error, and what a crash leaves between the two is an
// orphan for SweepOrphans. Rotation takes
// regMu too, so it never interleaves with a batch.
//
// # Outages
//
// A record is written to the primary, then the backup; if either fails for
// any reason (locked, missing, read-only, full, corrupt, closed) the record
// goes to the pending table and Register still succeeds. Flush copies
// pending records to every data store and deletes each from the pending
// table only after both writes succeeded, so it is idempotent and loses
// nothing when it stops midway. A Data recovers by itself when its store
// returns, and never silently recreates a store that went missing (see the
// backend's package comment for how).
//
// Reveal reads the pending table, then the primary, then — when the primary
// fails, lacks the record or holds one that fails authentication — the
// backup.
//
// While both data stores are unreachable, Register cannot see values they
// hold and may issue a second token for a value already registered; both
// tokens stay valid and dedupe later returns the older one.
//
// # Audit
//
// Each audit entry's hash is SHA-256(prev || canonical fields), the fields
// length-prefixed after the label "orderseal-v1-audit", seq and time as
// 8-byte big-endian integers. VerifyAudit names the first entry that was
// edited, dropped or reordered. Cutting entries off the end leaves a valid
// shorter chain: compare the count VerifyAudit returns with one recorded
// elsewhere to catch that.
package store
