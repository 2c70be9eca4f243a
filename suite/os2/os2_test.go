package os2_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/ecc/bls12381"

	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/keygen/center"
	"orderseal/suite/os2"
	"orderseal/tstest/keys"
)

// now is inside keys.Epoch (2026-12), the OS2 test center's epoch.
var now = time.Date(2026, time.December, 6, 10, 0, 0, 0, time.UTC)

// Base-field arithmetic of BLS12-381 in math/big, independent of circl,
// to build encodings circl must refuse: points off the curve, off the
// subgroup, with x ≥ p.
var (
	fp381, _ = new(big.Int).SetString("1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab", 16)
	half381  = new(big.Int).Rsh(fp381, 1) // (p−1)/2: y > half is "lexicographically largest"
)

func mod(x *big.Int) *big.Int { return x.Mod(x, fp381) }

// fp2 is a + b·u with u² = −1.
type fp2 struct{ a, b *big.Int }

func (x fp2) mul(y fp2) fp2 {
	return fp2{mod(new(big.Int).Sub(new(big.Int).Mul(x.a, y.a), new(big.Int).Mul(x.b, y.b))),
		mod(new(big.Int).Add(new(big.Int).Mul(x.a, y.b), new(big.Int).Mul(x.b, y.a)))}
}
func (x fp2) add(y fp2) fp2 {
	return fp2{mod(new(big.Int).Add(x.a, y.a)), mod(new(big.Int).Add(x.b, y.b))}
}
func (x fp2) eq(y fp2) bool { return x.a.Cmp(y.a) == 0 && x.b.Cmp(y.b) == 0 }

// sqrt2 is a square root in Fp2, or false: with n = √(a²+b²) in Fp,
// x0² = (a ± n)/2 and x1 = b / (2·x0).
func (x fp2) sqrt() (fp2, bool) {
	n := new(big.Int).ModSqrt(mod(new(big.Int).Add(new(big.Int).Mul(x.a, x.a), new(big.Int).Mul(x.b, x.b))), fp381)
	if n == nil {
		return fp2{}, false
	}
	inv2 := new(big.Int).ModInverse(big.NewInt(2), fp381)
	for _, sign := range []int{1, -1} {
		t := mod(new(big.Int).Mul(mod(new(big.Int).Add(x.a, new(big.Int).Mul(big.NewInt(int64(sign)), n))), inv2))
		x0 := new(big.Int).ModSqrt(t, fp381)
		if x0 == nil || x0.Sign() == 0 {
			continue
		}
		x1 := mod(new(big.Int).Mul(x.b, new(big.Int).ModInverse(new(big.Int).Lsh(x0, 1), fp381)))
		r := fp2{x0, x1}
		if r.mul(r).eq(x) {
			return r, true
		}
	}
	return fp2{}, false
}

func be48(x *big.Int) []byte { return x.FillBytes(make([]byte, 48)) }

// g1Compressed encodes x with the flags of a compressed point whose y is
// the larger (big) or smaller root.
func g1Compressed(x *big.Int, big_ bool) []byte {
	b := be48(x)
	b[0] |= 0x80
	if big_ {
		b[0] |= 0x20
	}
	return b
}

// g1Y is a y with y² = x³ + 4, if any.
func g1Y(x *big.Int) *big.Int {
	rhs := mod(new(big.Int).Add(new(big.Int).Exp(x, big.NewInt(3), fp381), big.NewInt(4)))
	return new(big.Int).ModSqrt(rhs, fp381)
}

var b2 = fp2{big.NewInt(4), big.NewInt(4)} // G2: y² = x³ + 4(1 + u)

func g2Y(x fp2) (fp2, bool) { return x.mul(x).mul(x).add(b2).sqrt() }

func g2Compressed(x fp2, big_ bool) []byte {
	b := append(be48(x.b), be48(x.a)...)
	b[0] |= 0x80
	if big_ {
		b[0] |= 0x20
	}
	return b
}

func flip(b []byte, i int, bit byte) []byte {
	c := bytes.Clone(b)
	c[i] ^= bit
	return c
}

// TestHashToCurveIsRFC9380: G1.Hash and G2.Hash, which H1 and H2 call,
// are RFC 9380's BLS12381G1_XMD:SHA-256_SSWU_RO_ and
// BLS12381G2_XMD:SHA-256_SSWU_RO_ (Appendix J.9.1 and J.10.1, msg "abc").
func TestHashToCurveIsRFC9380(t *testing.T) {
	var p1 bls12381.G1
	p1.Hash([]byte("abc"), []byte("QUUX-V01-CS02-with-BLS12381G1_XMD:SHA-256_SSWU_RO_"))
	want1 := "03567bc5ef9c690c2ab2ecdf6a96ef1c139cc0b2f284dca0a9a7943388a49a3aee664ba5379a7655d3c68900be2f6903" +
		"0b9c15f3fe6e5cf4211f346271d7b01c8f3b28be689c8429c85b67af215533311f0b8dfaaa154fa6b88176c229f2885d"
	if got := hx(p1.Bytes()); got != want1 {
		t.Errorf("G1.Hash(abc) = %s\nwant %s", got, want1)
	}
	var p2 bls12381.G2
	p2.Hash([]byte("abc"), []byte("QUUX-V01-CS02-with-BLS12381G2_XMD:SHA-256_SSWU_RO_"))
	// x = x0 + x1·u is written x1 || x0, likewise y.
	want2 := "139cddbccdc5e91b9623efd38c49f81a6f83f175e80b06fc374de9eb4b41dfe4ca3a230ed250fbe3a2acf73a41177fd8" +
		"02c2d18e033b960562aae3cab37a27ce00d80ccd5ba4b7fe0e7a210245129dbec7780ccc7954725f4168aff2787776e6" +
		"00aa65dae3c8d732d10ecd2c50f8a1baf3001578f71c694e03866e9f3d49ac1e1ce70dd94a733534f106d4cec0eddd16" +
		"1787327b68159716a37440985269cf584bcb1e621d3a7202be6ea05c4cfe244aeb197642555a0645fb87bf7466b2ba48"
	if got := hx(p2.Bytes()); got != want2 {
		t.Errorf("G2.Hash(abc) = %s\nwant %s", got, want2)
	}
	// H1 and H2 are those hashes with our DSTs and message.
	sys := keys.System
	var h bls12381.G1
	h.Hash(wire.LP16(wire.LP16(nil, []byte(keys.Alice)), []byte(keys.Epoch)), []byte("orderseal-v2-sok-g1:"+hx(sys[:])))
	if !h.IsEqual(os2.H1(sys, keys.Alice, keys.Epoch)) {
		t.Error("H1 is not G1.Hash(lp16(id) || lp16(epoch), DSTG1 || hex(system))")
	}
	var h2 bls12381.G2
	h2.Hash(wire.LP16(wire.LP16(nil, []byte(keys.Alice)), []byte(keys.Epoch)), []byte("orderseal-v2-sok-g2:"+hx(sys[:])))
	if !h2.IsEqual(os2.H2(sys, keys.Alice, keys.Epoch)) {
		t.Error("H2 is not G2.Hash(lp16(id) || lp16(epoch), DSTG2 || hex(system))")
	}
}

// g1Coords are the affine coordinates of a circl point (its uncompressed form).
func g1Coords(p *bls12381.G1) (x, y *big.Int) {
	u := p.Bytes()
	return new(big.Int).SetBytes(u[:48]), new(big.Int).SetBytes(u[48:])
}

func g2Coords(p *bls12381.G2) (x, y fp2) {
	u := p.Bytes()
	n := func(b []byte) *big.Int { return new(big.Int).SetBytes(b) }
	return fp2{n(u[48:96]), n(u[:48])}, fp2{n(u[144:192]), n(u[96:144])}
}

// fp2Big reports whether y is the lexicographically larger root (ZCash rule).
func fp2Big(y fp2) bool { return y.b.Cmp(half381) > 0 || (y.b.Sign() == 0 && y.a.Cmp(half381) > 0) }

func TestDecodeG1(t *testing.T) {
	good := os2.H1(keys.System, keys.Alice, keys.Epoch)
	enc := good.BytesCompressed()
	// The big-int encoder agrees with circl on a genuine point, so the
	// encodings below differ from a valid one only where they mean to.
	x, y := g1Coords(good)
	if !bytes.Equal(g1Compressed(x, y.Cmp(half381) > 0), enc) || new(big.Int).Exp(y, big.NewInt(2), fp381).Cmp(new(big.Int).Exp(g1Y(x), big.NewInt(2), fp381)) != 0 {
		t.Fatal("the test's G1 encoder disagrees with circl")
	}
	if p, err := os2.DecodeG1(enc); err != nil || !p.IsEqual(good) {
		t.Fatalf("valid point: %v", err)
	}

	var offSubgroup, offCurve, xPlusP []byte
	for i := int64(1); offSubgroup == nil || offCurve == nil; i++ {
		x := big.NewInt(i)
		if g1Y(x) == nil {
			offCurve = g1Compressed(x, false)
		} else {
			// x³+4 is a square: (x, y) is on E, and with cofactor h ≈ 2^126
			// a small x is (all but certainly) outside the r-torsion.
			offSubgroup = g1Compressed(x, false)
		}
	}
	lim := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 381), fp381)
	for i := 0; xPlusP == nil; i++ {
		p := os2.H1(keys.System, fmt.Sprintf("cardholder:x%d", i), keys.Epoch)
		px, py := g1Coords(p)
		if px.Cmp(lim) < 0 {
			xPlusP = g1Compressed(new(big.Int).Add(px, fp381), py.Cmp(half381) > 0)
		}
	}
	identity := make([]byte, os2.G1Size)
	identity[0] = 0xc0
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"47 bytes", enc[:47]},
		{"49 bytes", append(bytes.Clone(enc), 0)},
		{"uncompressed form", good.Bytes()},
		{"compressed bit cleared", flip(enc, 0, 0x80)},
		{"infinity bit set on a point", flip(enc, 0, 0x40)},
		{"identity", identity},
		{"identity with the sort bit", flip(identity, 0, 0x20)},
		{"identity with a stray bit", flip(identity, 47, 1)},
		{"identity, uncompressed bit pattern", flip(identity, 0, 0x80)},
		{"x = p", g1Compressed(fp381, false)},
		{"x + p for a valid x", xPlusP},
		{"x ≥ 2^381 (top flag bits used as value)", append([]byte{0x9f}, bytes.Repeat([]byte{0xff}, 47)...)},
		{"off the curve", offCurve},
		{"on the curve, off the subgroup", offSubgroup},
		{"off the subgroup, other root", flip(offSubgroup, 0, 0x20)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if p, err := os2.DecodeG1(c.b); !errors.Is(err, os2.ErrPoint) || p != nil {
				t.Fatalf("DecodeG1(%x) = %v, %v; want ErrPoint", c.b, p, err)
			}
		})
	}
	// The sort flag chooses between y and −y: flipped, it is another
	// point (−P), never P, so a d1 with it flipped fails the key check.
	neg, err := os2.DecodeG1(flip(enc, 0, 0x20))
	if err != nil {
		t.Fatal(err)
	}
	minus := *good
	minus.Neg()
	if neg.IsEqual(good) || !neg.IsEqual(&minus) {
		t.Fatal("flipping the sort flag did not give −P")
	}
}

func TestDecodeG2(t *testing.T) {
	good := os2.H2(keys.System, keys.Alice, keys.Epoch)
	enc := good.BytesCompressed()
	x, y := g2Coords(good)
	if yy, ok := g2Y(x); !ok || !yy.mul(yy).eq(y.mul(y)) || !bytes.Equal(g2Compressed(x, fp2Big(y)), enc) {
		t.Fatal("the test's G2 encoder disagrees with circl")
	}
	if p, err := os2.DecodeG2(enc); err != nil || !p.IsEqual(good) {
		t.Fatalf("valid point: %v", err)
	}
	var offSubgroup, offCurve []byte
	for i := int64(1); offSubgroup == nil || offCurve == nil; i++ {
		x := fp2{big.NewInt(i), big.NewInt(1)}
		if _, ok := g2Y(x); ok {
			offSubgroup = g2Compressed(x, false)
		} else {
			offCurve = g2Compressed(x, false)
		}
	}
	identity := make([]byte, os2.G2Size)
	identity[0] = 0xc0
	x1p := g2Compressed(fp2{x.a, new(big.Int).Add(x.b, fp381)}, fp2Big(y)) // only if it fits, below
	x0p := g2Compressed(fp2{new(big.Int).Add(x.a, fp381), x.b}, fp2Big(y)) // likewise
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"48 bytes (a G1 size)", enc[:48]},
		{"95 bytes", enc[:95]},
		{"97 bytes", append(bytes.Clone(enc), 0)},
		{"uncompressed form", good.Bytes()},
		{"compressed bit cleared", flip(enc, 0, 0x80)},
		{"infinity bit set on a point", flip(enc, 0, 0x40)},
		{"identity", identity},
		{"identity with the sort bit", flip(identity, 0, 0x20)},
		{"identity with a stray bit", flip(identity, 95, 1)},
		{"x1 = p", g2Compressed(fp2{big.NewInt(1), fp381}, false)},
		{"x0 = p", g2Compressed(fp2{fp381, big.NewInt(1)}, false)},
		{"off the curve", offCurve},
		{"on the curve, off the subgroup", offSubgroup},
		{"off the subgroup, other root", flip(offSubgroup, 0, 0x20)},
	}
	lim := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 381), fp381)
	if x.b.Cmp(lim) < 0 {
		cases = append(cases, struct {
			name string
			b    []byte
		}{"x1 + p for a valid x", x1p})
	}
	if len(x0p) == os2.G2Size { // x0 + p in 48 bytes always (no flag bits there)
		cases = append(cases, struct {
			name string
			b    []byte
		}{"x0 + p for a valid x", x0p})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if p, err := os2.DecodeG2(c.b); !errors.Is(err, os2.ErrPoint) || p != nil {
				t.Fatalf("DecodeG2(%x) = %v, %v; want ErrPoint", c.b, p, err)
			}
		})
	}
	neg, err := os2.DecodeG2(flip(enc, 0, 0x20))
	if err != nil {
		t.Fatal(err)
	}
	minus := *good
	minus.Neg()
	if neg.IsEqual(good) || !neg.IsEqual(&minus) {
		t.Fatal("flipping the sort flag did not give −Q")
	}
}

// withSOK is key with its identity-based key replaced, through the key file.
func withSOK(t *testing.T, key *keygen.PartyKey, sok []byte) *keygen.PartyKey {
	t.Helper()
	raw, err := key.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["sok"] = wire.B64(sok)
	raw, _ = json.Marshal(m)
	k, err := keygen.ParsePartyKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestCheckKey(t *testing.T) {
	kc := keys.OS2(t)
	s := os2.Suite{}
	alice := kc.Party(t, keys.Alice)
	if err := s.CheckKey(alice, now); err != nil {
		t.Fatalf("genuine key: %v", err)
	}
	sok := alice.SOK()
	other := kc.Party(t, keys.Bob).SOK()
	rogueS := new(bls12381.Scalar)
	rogueS.SetUint64(12345)
	var fd1 bls12381.G1
	fd1.ScalarMult(rogueS, os2.H1(keys.System, keys.Alice, keys.Epoch))
	var fd2 bls12381.G2
	fd2.ScalarMult(rogueS, os2.H2(keys.System, keys.Alice, keys.Epoch))
	cat := func(a, b []byte) []byte { return append(bytes.Clone(a), b...) }
	nextEpoch := keys.OS2Center(t, "2027-01").Party(t, keys.Alice).SOK()

	_, end, _ := alice.Params().Epochs.Span(keys.Epoch)
	grace := alice.Params().Epochs.Grace
	cases := []struct {
		name string
		key  *keygen.PartyKey
		at   time.Time
		want error
	}{
		{"d1 of another identity", withSOK(t, alice, cat(other[:48], sok[48:])), now, os2.ErrSOKKey},
		{"d2 of another identity", withSOK(t, alice, cat(sok[:48], other[48:])), now, os2.ErrSOKKey},
		{"d1 and d2 of another identity", withSOK(t, alice, other), now, os2.ErrSOKKey},
		{"d1 and d2 of another epoch", withSOK(t, alice, nextEpoch), now, os2.ErrSOKKey},
		{"d1 forged under another scalar", withSOK(t, alice, cat(fd1.BytesCompressed(), sok[48:])), now, os2.ErrSOKKey},
		{"d2 forged under another scalar", withSOK(t, alice, cat(sok[:48], fd2.BytesCompressed())), now, os2.ErrSOKKey},
		// Consistent with each other (e(d1, H2) = e(H1, d2)) but not with P.
		{"d1 and d2 forged under another scalar", withSOK(t, alice, cat(fd1.BytesCompressed(), fd2.BytesCompressed())), now, os2.ErrSOKKey},
		{"d1 negated (sort flag)", withSOK(t, alice, cat(flip(sok[:48], 0, 0x20), sok[48:])), now, os2.ErrSOKKey},
		{"d2 negated (sort flag)", withSOK(t, alice, cat(sok[:48], flip(sok[48:], 0, 0x20))), now, os2.ErrSOKKey},
		{"d1 not a point", withSOK(t, alice, cat(flip(sok[:48], 0, 0x80), sok[48:])), now, os2.ErrPoint},
		{"d2 the identity", withSOK(t, alice, cat(sok[:48], append([]byte{0xc0}, make([]byte, 95)...))), now, os2.ErrPoint},
		{"at the epoch's end plus grace", alice, end.Add(grace), keygen.ErrEpochOver},
		{"a past epoch", alice, end.AddDate(0, 2, 0), keygen.ErrEpochOver},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := s.CheckKey(c.key, c.at); !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	for _, at := range []time.Time{end.Add(grace - time.Second), end, end.Add(-time.Second), time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)} {
		if err := s.CheckKey(alice, at); err != nil {
			t.Errorf("at %s (within the epoch and its grace, or before it): %v", at, err)
		}
	}
	// An OS1 key has no epochs.
	if err := s.CheckKey(keys.Party(t, keys.Alice), now); !errors.Is(err, os2.ErrNoEpochs) {
		t.Errorf("OS1 key: %v, want ErrNoEpochs", err)
	}
}

func TestCheckParams(t *testing.T) {
	p := keys.OS2(t).Params()
	s := os2.Suite{}
	if err := s.CheckParams(p); err != nil {
		t.Fatal(err)
	}
	bad := func(edit func(e *keygen.Epochs)) keygen.Params {
		q := p
		e := *p.Epochs
		edit(&e)
		q.Epochs = &e
		return q
	}
	for name, c := range map[string]struct {
		p    keygen.Params
		want error
	}{
		"no epochs":        {keys.Params(), os2.ErrNoEpochs},
		"P the identity":   {bad(func(e *keygen.Epochs) { e.SOKPublic = [96]byte{0xc0} }), os2.ErrPoint},
		"P not compressed": {bad(func(e *keygen.Epochs) { e.SOKPublic[0] &^= 0x80 }), os2.ErrPoint},
		"P off the subgroup": {bad(func(e *keygen.Epochs) {
			x := fp2{big.NewInt(1), big.NewInt(1)}
			copy(e.SOKPublic[:], g2CompressedOn(x))
		}), os2.ErrPoint},
	} {
		t.Run(name, func(t *testing.T) {
			err := s.CheckParams(c.p)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// g2CompressedOn is the compressed encoding of the first on-curve x of the
// form x.a + i, x.b.
func g2CompressedOn(x fp2) []byte {
	for {
		if _, ok := g2Y(x); ok {
			return g2Compressed(x, false)
		}
		x.a = new(big.Int).Add(x.a, big.NewInt(1))
	}
}

func TestPairwise(t *testing.T) {
	kc := keys.OS2(t)
	next := keys.OS2Center(t, "2027-01")
	s := os2.Suite{}
	ids := []string{keys.Alice, keys.Bob, keys.Shop, keys.OtherShop, keys.Parcel, keys.OtherCarrier, keys.Bank, keys.Vault,
		"cardholder:a"}
	seen := map[string]string{}
	for i, a := range ids {
		for _, b := range ids[i+1:] {
			ab, err := s.Pairwise(kc.Party(t, a), b)
			if err != nil {
				t.Fatal(err)
			}
			ba, err := s.Pairwise(kc.Party(t, b), a)
			if err != nil {
				t.Fatal(err)
			}
			if !ab.Equal(&ba) {
				t.Fatalf("K(%s, %s) ≠ K(%s, %s)", a, b, b, a)
			}
			nx, err := s.Pairwise(next.Party(t, a), b)
			if err != nil {
				t.Fatal(err)
			}
			if nx.Equal(&ab) {
				t.Fatalf("K(%s, %s) is the same in two epochs", a, b)
			}
			fp := ab.Fingerprint()
			if prev, dup := seen[fp]; dup {
				t.Fatalf("K(%s, %s) = K of %s", a, b, prev)
			}
			seen[fp] = a + "/" + b
			// g alone is symmetric too, and differs across epochs.
			g1, _ := os2.SOK(kc.Party(t, a), b)
			g2, _ := os2.SOK(kc.Party(t, b), a)
			gn, _ := os2.SOK(next.Party(t, a), b)
			if !g1.IsEqual(g2) || g1.IsEqual(gn) {
				t.Fatalf("g(%s, %s) not symmetric, or the same across epochs", a, b)
			}
		}
	}
	if _, err := s.Pairwise(kc.Party(t, keys.Alice), keys.Alice); !errors.Is(err, keygen.ErrSameIdentity) {
		t.Errorf("self: %v, want ErrSameIdentity", err)
	}
	if _, err := os2.SOK(kc.Party(t, keys.Alice), keys.Alice); !errors.Is(err, keygen.ErrSameIdentity) {
		t.Errorf("SOK self: %v, want ErrSameIdentity", err)
	}
	for _, peer := range []string{"", "Merchant:shop", "merchant:", "nobody:x", "merchant:a b"} {
		if _, err := s.Pairwise(kc.Party(t, keys.Alice), peer); !errors.Is(err, keygen.ErrIdentity) {
			t.Errorf("peer %q: %v, want ErrIdentity", peer, err)
		}
	}
	if _, err := s.Pairwise(keys.Party(t, keys.Alice), keys.Shop); !errors.Is(err, os2.ErrNoEpochs) {
		t.Errorf("OS1 key: %v, want ErrNoEpochs", err)
	}
	// A key whose d1/d2 is broken cannot derive either.
	broken := withSOK(t, kc.Party(t, keys.Alice), make([]byte, os2.G1Size+os2.G2Size))
	if _, err := s.Pairwise(broken, keys.Shop); !errors.Is(err, os2.ErrPoint) {
		t.Errorf("broken d1: %v, want ErrPoint", err)
	}
}

func TestVerifyEntry(t *testing.T) {
	kc := keys.OS2(t)
	s := os2.Suite{}
	p := kc.Params()
	good := kc.Entry(t, keys.Bank)
	if err := s.VerifyEntry(p, good, now); err != nil {
		t.Fatalf("genuine entry: %v", err)
	}
	if err := s.VerifyEntry(p, good, good.NotAfter); err != nil {
		t.Fatalf("at not_after itself: %v", err)
	}
	edit := func(f func(e *keygen.DirectoryEntry)) *keygen.DirectoryEntry {
		e := *good
		e.PublicKey = bytes.Clone(good.PublicKey)
		e.Signature = bytes.Clone(good.Signature)
		f(&e)
		return &e
	}
	cases := []struct {
		name string
		e    *keygen.DirectoryEntry
		at   time.Time
		want error
	}{
		{"identity changed", edit(func(e *keygen.DirectoryEntry) { e.Identity = "issuer:bank.examplf" }), now, os2.ErrEntrySig},
		{"identity of another party", edit(func(e *keygen.DirectoryEntry) { e.Identity = keys.Shop }), now, os2.ErrEntrySig},
		{"epoch relabelled", edit(func(e *keygen.DirectoryEntry) { e.Epoch = "2027-01" }), now, os2.ErrEntrySig},
		{"epoch not of the period", edit(func(e *keygen.DirectoryEntry) { e.Epoch = "2026-12-06" }), now, keygen.ErrEpoch},
		{"not_after one second later", edit(func(e *keygen.DirectoryEntry) { e.NotAfter = e.NotAfter.Add(time.Second) }), now, os2.ErrEntrySig},
		{"public key of another party", edit(func(e *keygen.DirectoryEntry) { e.PublicKey = kc.KEMKey(t, keys.Shop).PublicKey() }), now, os2.ErrEntrySig},
		{"public key short", edit(func(e *keygen.DirectoryEntry) { e.PublicKey = e.PublicKey[1:] }), now, os2.ErrKEMKey},
		{"signature of another entry", edit(func(e *keygen.DirectoryEntry) { e.Signature = kc.Entry(t, keys.Shop).Signature }), now, os2.ErrEntrySig},
		{"signature short", edit(func(e *keygen.DirectoryEntry) { e.Signature = e.Signature[1:] }), now, os2.ErrEntrySig},
		{"signature empty", edit(func(e *keygen.DirectoryEntry) { e.Signature = nil }), now, os2.ErrEntrySig},
		{"past not_after", good, good.NotAfter.Add(time.Second), os2.ErrEntryOver},
		{"signed by another key center", rogueEntry(t, kc.KEMKey(t, keys.Bank).PublicKey()), now, os2.ErrEntrySig},
		// A genuine entry of another epoch verifies; Seal, which knows the
		// epoch it seals in, refuses it (order.ErrEntryEpoch).
		{"genuine entry of another epoch", keys.OS2Center(t, "2027-01").Entry(t, keys.Bank), now, nil},
	}
	for i := 0; i < len(good.PublicKey); i += 97 {
		i := i
		cases = append(cases, struct {
			name string
			e    *keygen.DirectoryEntry
			at   time.Time
			want error
		}{fmt.Sprintf("public key byte %d", i), edit(func(e *keygen.DirectoryEntry) { e.PublicKey[i] ^= 0x01 }), now, os2.ErrEntrySig})
	}
	for i := 0; i < len(good.Signature); i += 331 {
		i := i
		cases = append(cases, struct {
			name string
			e    *keygen.DirectoryEntry
			at   time.Time
			want error
		}{fmt.Sprintf("signature byte %d", i), edit(func(e *keygen.DirectoryEntry) { e.Signature[i] ^= 0x80 }), now, os2.ErrEntrySig})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := s.VerifyEntry(p, c.e, c.at)
			if c.want == nil {
				if err != nil {
					t.Fatalf("got %v", err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	if err := s.VerifyEntry(keys.Params(), good, now); !errors.Is(err, os2.ErrNoEpochs) {
		t.Errorf("OS1 params: %v, want ErrNoEpochs", err)
	}

	// Through the wire form: every field of the JSON flipped by one
	// character either fails to parse or fails to verify.
	raw, err := good.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var back keygen.DirectoryEntry
	if err := back.UnmarshalJSON(raw); err != nil || s.VerifyEntry(p, &back, now) != nil {
		t.Fatalf("round trip: %v", err)
	}
	for _, field := range []string{"identity", "epoch", "public_key", "not_after", "signature"} {
		var m map[string]any
		json.Unmarshal(raw, &m)
		v := m[field].(string)
		i := len(v) / 2
		c := byte('A')
		if v[i] == 'A' {
			c = 'B'
		}
		if field == "epoch" || field == "not_after" {
			c = v[i-1] // keep the syntax: swap a digit for a neighbour
			if c == v[i] {
				c = '0' + (v[i]-'0'+1)%10
			}
		}
		m[field] = v[:i] + string(c) + v[i+1:]
		mutated, _ := json.Marshal(m)
		var e keygen.DirectoryEntry
		if err := e.UnmarshalJSON(mutated); err != nil {
			if !errors.Is(err, keygen.ErrDirectory) {
				t.Errorf("%s: parse error %v does not wrap ErrDirectory", field, err)
			}
			continue
		}
		if err := s.VerifyEntry(p, &e, now); err == nil {
			t.Errorf("%s changed to %q: the entry still verifies", field, m[field])
		}
	}
}

// rogueEntry is an entry for the issuer signed by another root's directory key.
func rogueEntry(t *testing.T, pk []byte) *keygen.DirectoryEntry {
	t.Helper()
	p := keys.OS2(t).Params()
	m, err := center.EpochMasterFromSeed(p, [32]byte{0xee})
	if err != nil {
		t.Fatal(err)
	}
	e, err := m.SignEntry(keys.Bank, keys.Epoch, pk, time.Date(2027, 1, 8, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestKEMKey(t *testing.T) {
	kc := keys.OS2(t)
	k := kc.KEMKey(t, keys.Bank)
	s := os2.Suite{}
	ct, ss, err := s.Encapsulate(k.PublicKey(), strings.NewReader(strings.Repeat("e", 64)))
	if err != nil || len(ct) != os2.KEMCiphertext || len(ss) != 32 {
		t.Fatalf("encapsulate: %v (%d, %d bytes)", err, len(ct), len(ss))
	}
	got, err := k.Decapsulate(ct)
	if err != nil || !bytes.Equal(got, ss) {
		t.Fatalf("decapsulate: %v", err)
	}
	for _, n := range []int{0, 1, 32, os2.KEMCiphertext - 1, os2.KEMCiphertext + 1, 2 * os2.KEMCiphertext} {
		if ss, err := k.Decapsulate(make([]byte, n)); !errors.Is(err, os2.ErrKEMLength) || ss != nil {
			t.Errorf("%d-byte ciphertext: %v, want ErrKEMLength", n, err)
		}
	}
	// Another key decapsulates to another secret (ML-KEM's implicit
	// rejection): the section then fails to authenticate.
	if other, _ := kc.KEMKey(t, keys.Shop).Decapsulate(ct); bytes.Equal(other, ss) {
		t.Error("another party's key found the same secret")
	}
	for _, n := range []int{0, 31, 33, 64} {
		if _, err := os2.KEMKeyFromSeed(make([]byte, n)); err == nil {
			t.Errorf("KEMKeyFromSeed with %d bytes", n)
		}
	}
	for _, pk := range [][]byte{nil, k.PublicKey()[1:], append(k.PublicKey(), 0)} {
		if _, _, err := s.Encapsulate(pk, strings.NewReader(strings.Repeat("e", 64))); !errors.Is(err, os2.ErrKEMKey) {
			t.Errorf("%d-byte public key: %v, want ErrKEMKey", len(pk), err)
		}
	}
	if _, _, err := s.Encapsulate(k.PublicKey(), strings.NewReader("short")); err == nil {
		t.Error("encapsulation with a short random stream")
	}
	d, err := os2.KEMKeyFromSeed(k.Seed())
	if err != nil || !d.Equal(k) || !bytes.Equal(d.PublicKey(), k.PublicKey()) {
		t.Fatalf("seed round trip: %v", err)
	}
	d.Destroy()
	if _, err := d.Decapsulate(ct); err == nil {
		t.Error("a destroyed key decapsulates")
	}
	if _, err := s.SectionAEAD(nil, make([]byte, 31), "issuer", "ord-1"); err == nil {
		t.Error("section key from a 31-byte shared secret")
	}
}

// TestSentinels: every refusal of the suite has its own error, and none
// is another's.
func TestSentinels(t *testing.T) {
	all := map[string]error{"ErrPoint": os2.ErrPoint, "ErrSOKKey": os2.ErrSOKKey, "ErrNoEpochs": os2.ErrNoEpochs,
		"ErrKEMLength": os2.ErrKEMLength, "ErrKEMKey": os2.ErrKEMKey, "ErrEntrySig": os2.ErrEntrySig,
		"ErrEntryOver": os2.ErrEntryOver, "ErrEpochMix": os2.ErrEpochMix,
		"keygen.ErrEpoch": keygen.ErrEpoch, "keygen.ErrEpochOver": keygen.ErrEpochOver,
		"keygen.ErrSameIdentity": keygen.ErrSameIdentity, "keygen.ErrIdentity": keygen.ErrIdentity}
	msgs := map[string]string{}
	for a, ea := range all {
		for b, eb := range all {
			if a != b && errors.Is(ea, eb) {
				t.Errorf("%s is %s", a, b)
			}
		}
		if prev, dup := msgs[ea.Error()]; dup {
			t.Errorf("%s and %s share the message %q", a, prev, ea.Error())
		}
		msgs[ea.Error()] = a
	}
}

// BenchmarkCheckKey is what loading an OS2 party key costs (the cardholder
// CLI loads hers on every run).
func BenchmarkCheckKey(b *testing.B) {
	alice := keys.OS2(b).Party(b, keys.Alice)
	s := os2.Suite{}
	for b.Loop() {
		if err := s.CheckKey(alice, now); err != nil {
			b.Fatal(err)
		}
	}
}
