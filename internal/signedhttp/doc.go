// Package signedhttp authenticates every request between orderseal parties
// with their pairwise key K(caller, target) (DESIGN.md §5): echo middleware
// for servers, and a Client (from package httpsig, which never imports echo)
// that signs requests and verifies the signed responses. TLS may be layered
// underneath; it is not what authenticates parties.
//
// # Wire format v1 (normative)
//
// Notation: lp16(b) is the 2-byte big-endian length of b, then b (DESIGN.md
// §4.1); b64(b) is base64url without padding; Expand(label) is the keygen
// sub-key HKDF-Expand-SHA256(K, "orderseal-v1-" || label), 32 bytes.
//
// A request carries these headers, each exactly once:
//
//	Orderseal-Identity        caller identity, e.g. merchant:shop.example
//	Orderseal-Target          identity of the party the caller means to reach
//	Orderseal-Date            RFC 3339 UTC, whole seconds: 2025-01-02T03:04:05Z
//	Orderseal-Nonce           b64(16 random bytes)
//	Orderseal-Content-Sha256  b64(SHA-256(body)); an empty body hashes ""
//	Orderseal-Key-Id          b64(first 8 bytes of Expand("http-keyid"))
//	Orderseal-Signature       b64(HMAC-SHA256(Expand("http"), msg))
//
//	msg = "orderseal-v1-request" || lp16(method) || lp16(request-target) ||
//	      lp16(date) || lp16(nonce) || lp16(content-sha256) || lp16(key-id) ||
//	      lp16(caller) || lp16(target)
//
// request-target is the escaped path, plus "?" and the raw query when
// present, exactly as on the request line; date, nonce, content-sha256 and
// key-id are the header strings as sent. Every field is at most 65535 bytes.
//
// The key id is a one-way key confirmation: a receiver whose own key id
// differs knows the caller holds another K (wrong key file or key center),
// rather than that the request was altered.
//
// A response to an authenticated request — every response sent once the
// receiver knows K, refusals included — carries:
//
//	Orderseal-Identity   responder identity
//	Orderseal-Signature  b64(HMAC-SHA256(Expand("http"), "orderseal-v1-response" ||
//	                     lp16(request nonce) || lp16(decimal status code) ||
//	                     lp16(b64(SHA-256(response body))) || lp16(responder) || lp16(caller)))
//
// Responses to requests refused before K was known (auth-missing,
// unknown-identity, wrong-target, uri-too-long, and the server limits of
// package web in front of the verifier: overloaded, too-many-headers and a
// declared body-too-large) are unsigned; a client treats them as forged,
// and a relay retries them like any transport failure. Bodies of HEAD, 204 and 304 responses are empty
// and signed as such.
//
// # Receiver checks, in order
//
//  1. every header present once and well formed (auth-missing, 401);
//     request-target and method fit lp16 (uri-too-long, 414);
//  2. caller identity syntax (unknown-identity, 401), target equals the
//     receiver's identity (wrong-target, 401);
//  3. |now − date| ≤ window, default 5 min (clock-skew, 401);
//  4. key id, constant time (wrong-key, 401);
//  5. body, read up to the limit, default 1 MiB, or the server's lower
//     ceiling (body-too-large, 413), and its digest (body-digest, 400);
//  6. MAC, constant time (bad-signature, 401);
//  7. nonce unseen for this caller within the window (replayed-nonce, 401),
//     recorded only now so unauthenticated junk cannot fill the store.
//
// Routes then check the caller's role with Allow (forbidden-role, 403).
// Every refusal is an RFC 9457 problem (package problem) with that code.
package signedhttp
