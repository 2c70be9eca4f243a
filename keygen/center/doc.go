// Package center is orderseal's key center (DESIGN.md §2 and §4.1): the
// master secret D of Blom's scheme, sealed at rest under a passphrase, the
// issuance of party keys r = D·v(x) one by one or in batches, and the
// keygen command (init, issue, params, fingerprint).
//
// Parties never link this package: they hold a party key and use package
// keygen alone (tstest/deptest enforces it).
package center
