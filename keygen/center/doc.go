// Package center is orderseal's key center (DESIGN.md §2, §2.1 and §4.1):
// the master secret D of Blom's scheme, sealed at rest under a passphrase
// (OS1), or for an epoch suite (OS2) a root split T-of-n among officers
// (officers.go) from which each epoch's matrix, the SOK scalar and the
// ML-DSA directory key are expanded (epochs.go); the issuance of party keys
// r = D·v(x) one by one or in batches, each OS2 issuance recorded in a
// hash-chained, checkpoint-signed ledger (ledger.go); directory entries;
// and the keygen command (init, issue, directory sign, ledger verify,
// params, fingerprint).
//
// Parties never link this package: they hold a party key and use package
// keygen alone (tstest/deptest enforces it).
package center
