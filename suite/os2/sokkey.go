package os2

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"runtime"
	"sync"
	"weak"

	"github.com/cloudflare/circl/ecc/bls12381"

	"orderseal/keygen"
)

// A party key's d1 and d2 are decoded once per key, not per derivation:
// decoding a compressed point takes a square root and a subgroup check,
// and for d2 in G2 that is a fifth of a pairing. The cache holds the points
// of each live key with the SHA-256 of the encoding they came from, and is
// used only while the key still holds that encoding, so a key Destroyed
// since (its bytes zeroed) fails to decode exactly as it did before the
// cache. An entry goes when its key is garbage collected.
var sokPoints = struct {
	sync.Mutex
	m map[weak.Pointer[keygen.PartyKey]]*decodedSOK
}{m: map[weak.Pointer[keygen.PartyKey]]*decodedSOK{}}

// decodedSOK is a party key's identity-based key, decoded and checked.
type decodedSOK struct {
	digest [32]byte // SHA-256(d1 || d2 compressed)
	d1     bls12381.G1
	d2     bls12381.G2
}

// sokKey decodes a party key's d1 and d2, refusing non-canonical
// encodings, points outside their subgroups and the identity; the points
// are the caller's own copies.
func sokKey(key *keygen.PartyKey) (d1 *bls12381.G1, d2 *bls12381.G2, err error) {
	sok := key.SOK()
	defer clear(sok)
	digest := sha256.Sum256(sok)
	defer clear(digest[:])
	wp := weak.Make(key)

	sokPoints.Lock()
	if e, ok := sokPoints.m[wp]; ok {
		if subtle.ConstantTimeCompare(e.digest[:], digest[:]) == 1 {
			p1, p2 := e.d1, e.d2
			sokPoints.Unlock()
			return &p1, &p2, nil
		}
		delete(sokPoints.m, wp) // the key changed (Destroy): decode again, and fail
		*e = decodedSOK{}
	}
	sokPoints.Unlock()

	if len(sok) != G1Size+G2Size {
		return nil, nil, ErrSOKKey
	}
	if d1, err = DecodeG1(sok[:G1Size]); err != nil {
		return nil, nil, fmt.Errorf("d1: %w", err)
	}
	if d2, err = DecodeG2(sok[G1Size:]); err != nil {
		return nil, nil, fmt.Errorf("d2: %w", err)
	}

	sokPoints.Lock()
	defer sokPoints.Unlock()
	if _, ok := sokPoints.m[wp]; !ok {
		sokPoints.m[wp] = &decodedSOK{digest: digest, d1: *d1, d2: *d2}
		runtime.AddCleanup(key, forgetSOK, wp)
	}
	return d1, d2, nil
}

// forgetSOK drops a collected key's points.
func forgetSOK(wp weak.Pointer[keygen.PartyKey]) {
	sokPoints.Lock()
	defer sokPoints.Unlock()
	if e, ok := sokPoints.m[wp]; ok {
		*e = decodedSOK{}
		delete(sokPoints.m, wp)
	}
}
