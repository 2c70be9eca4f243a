// Package keygen is orderseal's identity-based key predistribution
// (DESIGN.md §2 and §4.1): Blom's scheme over GF(2^255−19).
//
// A key center holds a secret symmetric k×k matrix D. Each party receives the
// row r = D·v(x) for its identity point x; two parties A and B each compute the
// same raw secret vᵀ(A)·D·v(B) from their own row and the other's public
// identity, and derive the pairwise key K(A,B) from it with HKDF-SHA256.
//
// Collusion bound: any k parties who pool their rows can solve for D and so
// for every pairwise key in the system; k−1 or fewer learn nothing about the
// keys of pairs outside their coalition. Choose k above the largest number of
// parties that could ever collude (the default is 1024).
//
// This package is the parties' SDK and links no CLI, terminal or transport
// (tstest/deptest); the key center, which holds D, is package keygen/center.
package keygen
