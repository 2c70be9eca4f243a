// Package store is the card issuer's persistence seam (DESIGN.md §6.5, §8,
// §9): the cards it issued and every authorization it answered, behind the
// Store interface, with the domain types, errors and rules every backend
// shares. The backends are store/sqlite and store/postgres (shared by
// several issuer nodes), each its schema, Open and replay memory around
// store/sqlstore, the store's logic and queries written once for both;
// storetest is the conformance suite both pass.
//
// # Card numbers
//
// A card number never rests in clear. The card key (its own 0600 file,
// CreateCardKey / LoadCardKey, never in the database) yields sub-keys by
// HKDF-Expand with one label each (SubKeys):
//
//   - "orderseal-v1-issuer-card-seal": XChaCha20-Poly1305 key; each number
//     is sealed with a random 24-byte nonce and AAD = card id, so a
//     ciphertext moved to another row does not open;
//   - "orderseal-v1-issuer-card-lookup": HMAC-SHA256 key; the keyed hash
//     of the number is the unique lookup column, unlinkable without the key;
//   - "orderseal-v1-issuer-card-keycheck": an HMAC stored once in the
//     database, so a database opened with another card key is refused
//     (ErrWrongKey) instead of answering "not enrolled" for every card;
//   - "orderseal-v1-issuer-card-cvk": the card verification key, from which
//     each card's CVC is derived (CVC, cvc.go), so no CVC is ever stored.
//
// The sealing and hashing happen here, above the backends: a backend only
// ever stores a SealedNumber and the key check. Only the last four digits
// are kept in clear. The CVC is never stored: an assisted order's CVC is
// compared with the derived one and dropped.
//
// # Authorizations
//
// Authorize runs in one write transaction: it looks up the (merchant, order
// id) record, decides (Decision) and debits, and records the answer,
// declines included. Concurrent retries of one bundle therefore debit once
// and all get the same answer; a different bundle under a used order id is
// refused with ErrOrderIDReused. Void releases an approved hold once.
//
// A bundle sealed by a cardholder is authorized on the online channel: the
// card must be enrolled to that cardholder. One sealed by a merchant's phone
// consultant (DESIGN.md §6.7) is authorized on the assisted channel: the
// buyer holds no key, so instead of the enrollment binding the issuer
// section must carry the card's CVC. Each record keeps the sealer, the
// channel and the assisted session (Authorizations lists them).
package store
