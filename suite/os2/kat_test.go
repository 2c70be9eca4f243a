package os2_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/circl/ecc/bls12381"
	"github.com/cloudflare/circl/kem/xwing"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"golang.org/x/crypto/hkdf"

	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/keygen/center"
	"orderseal/suite/os2"
)

// The known-answer vectors of suite OS2 (PROTOCOL.md §21.17) are in
// testdata/os2_kat.json, made from the fixed inputs below by
// `go test ./suite/os2 -run TestKAT -update`. TestKAT recomputes every
// value and compares, and then checks the stored values against each other
// with code of its own (HKDF, the root expansions, the Blom matrix in
// math/big, the pairing equations, the signature), so that a change in the
// math or in an encoding fails here. See testdata/README.md.

var update = flag.Bool("update", false, "rewrite testdata/os2_kat.json from its fixed inputs")

const katPath = "testdata/os2_kat.json"

// The KAT's fixed inputs.
var (
	katSystem     = [16]byte{0x2e, 0x02, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d}
	katIdentities = []string{"cardholder:alice@example.org", "merchant:shop.example", "issuer:bank.example", "carrier:parcel.example"}
)

const (
	katK        = 4
	katEpoch    = "2026-12"
	katNotAfter = "2027-01-08T00:00:00Z"
	katOrderID  = "ord-os2-kat-0001"
)

func katRoot() [32]byte {
	var r [32]byte
	for i := range r {
		r[i] = byte(0x40 + i)
	}
	return r
}

// katStream is the deterministic byte stream of the KAT's KEM seeds.
func katStream(label string) io.Reader {
	x := sha3.NewSHAKE256()
	x.Write([]byte("orderseal os2 kat " + label))
	return x
}

type katInputs struct {
	System     string   `json:"system"`
	Root       string   `json:"root_seed"`
	K          int      `json:"k"`
	Period     string   `json:"period"`
	Grace      string   `json:"grace"`
	Epoch      string   `json:"epoch"`
	Identities []string `json:"identities"`
}

type katRootDerivation struct {
	SOKWide   string   `json:"sok_shake256_64"`
	SOKScalar string   `json:"sok_scalar_be"`
	MLDSASeed string   `json:"mldsa_seed"`
	BlomSeed  string   `json:"blom_seed_of_epoch"`
	DRow0     []string `json:"D_row0"`
	SOKPublic string   `json:"sok_public_P"`
	DirKey    string   `json:"directory_key_sha256"`
}

type katGroups struct {
	G1    string `json:"g1_generator"`
	G2    string `json:"g2_generator"`
	Pair  string `json:"e_g1_g2"`
	DSTG1 string `json:"dst_g1"`
	DSTG2 string `json:"dst_g2"`
	DSTID string `json:"dst_identity_point"`
}

type katIdentity struct {
	Identity string          `json:"identity"`
	Msg      string          `json:"msg"`
	X        string          `json:"x"`
	H1       string          `json:"H1"`
	H2       string          `json:"H2"`
	D1       string          `json:"d1"`
	D2       string          `json:"d2"`
	Row      []string        `json:"row"`
	KeyFile  json.RawMessage `json:"key_file"`
}

type katPair struct {
	Lo    string `json:"lo"`
	Hi    string `json:"hi"`
	Blom  string `json:"s_blom"`
	G     string `json:"g"`
	Info  string `json:"info"`
	K     string `json:"K"`
	Check string `json:"fingerprint"`
}

type katDirectory struct {
	Identity    string          `json:"identity"`
	KEMSeed     string          `json:"kem_seed"`
	PublicKey   string          `json:"public_key"`
	NotAfter    string          `json:"not_after"`
	SignedBytes string          `json:"signed_bytes"`
	Signature   string          `json:"signature"`
	Entry       json.RawMessage `json:"entry"`
}

type katSection struct {
	Cardholder   string `json:"cardholder"`
	Party        string `json:"party"`
	Role         string `json:"role"`
	OrderID      string `json:"order_id"`
	K            string `json:"K"`
	EncapSeed    string `json:"encapsulation_seed"`
	Ciphertext   string `json:"kem_ct"`
	CTHash       string `json:"kem_ct_sha256"`
	SharedSecret string `json:"kem_ss"`
	Info         string `json:"info"`
	SectionKey   string `json:"section_key"`
}

type katDoc struct {
	Comment    string            `json:"comment"`
	Suite      string            `json:"suite"`
	Inputs     katInputs         `json:"inputs"`
	Root       katRootDerivation `json:"root"`
	Params     json.RawMessage   `json:"params"`
	Groups     katGroups         `json:"groups"`
	Identities []katIdentity     `json:"identities"`
	Pairs      []katPair         `json:"pairs"`
	Directory  katDirectory      `json:"directory"`
	Section    katSection        `json:"section"`
}

func hx(b []byte) string { return hex.EncodeToString(b) }

func gtHex(t testing.TB, g *bls12381.Gt) string {
	t.Helper()
	b, err := g.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != os2.GTSize {
		t.Fatalf("GT encoding of %d bytes", len(b))
	}
	return hx(b)
}

func shakeRead(n int, parts ...[]byte) []byte {
	x := sha3.NewSHAKE256()
	for _, p := range parts {
		x.Write(p)
	}
	out := make([]byte, n)
	x.Read(out)
	return out
}

// makeKAT computes the whole document from the fixed inputs.
func makeKAT(t testing.TB) *katDoc {
	t.Helper()
	root := katRoot()
	params := keygen.Params{Suite: os2.Name, System: katSystem, K: katK,
		Epochs: &keygen.Epochs{Period: keygen.PeriodMonth, Grace: keygen.DefaultGrace}}
	rm, err := center.EpochMasterFromSeed(params, root)
	if err != nil {
		t.Fatal(err)
	}
	m, err := rm.ForEpoch(katEpoch)
	if err != nil {
		t.Fatal(err)
	}
	params = m.Params()
	pj, err := params.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	doc := &katDoc{
		Comment: "made by `go test ./suite/os2 -run TestKAT -update`; PROTOCOL.md §21 says how each value is computed (§21.17 lists them), testdata/README.md what it is for",
		Suite:   os2.Name,
		Inputs: katInputs{System: hx(katSystem[:]), Root: hx(root[:]), K: katK, Period: params.Epochs.Period,
			Grace: params.Epochs.Grace.String(), Epoch: katEpoch, Identities: katIdentities},
		Params: pj,
	}

	// Root derivations, recomputed here from their definitions.
	wide := shakeRead(64, wire.LP16(nil, []byte("orderseal-v2-master-sok")), root[:])
	var s bls12381.Scalar
	s.SetBytes(wide)
	sb, _ := s.MarshalBinary()
	dsaSeed := shakeRead(32, wire.LP16(nil, []byte("orderseal-v2-master-mldsa")), root[:])
	blomSeed := shakeRead(32, wire.LP16(nil, []byte("orderseal-v2-master-blom")), root[:], wire.LP16(nil, []byte(katEpoch)))
	dk := sha256.Sum256(params.Epochs.DirectoryKey[:])
	doc.Root = katRootDerivation{SOKWide: hx(wide), SOKScalar: hx(sb), MLDSASeed: hx(dsaSeed), BlomSeed: hx(blomSeed),
		DRow0: matrixRow0(blomSeed, katK), SOKPublic: hx(params.Epochs.SOKPublic[:]), DirKey: hx(dk[:])}

	one := bls12381.Pair(bls12381.G1Generator(), bls12381.G2Generator())
	doc.Groups = katGroups{G1: hx(bls12381.G1Generator().BytesCompressed()), G2: hx(bls12381.G2Generator().BytesCompressed()),
		Pair: gtHex(t, one), DSTG1: os2.DSTG1 + hx(katSystem[:]), DSTG2: os2.DSTG2 + hx(katSystem[:]),
		DSTID: "orderseal-v2-id:" + hx(katSystem[:])}

	pk := map[string]*keygen.PartyKey{}
	for _, id := range katIdentities {
		k, err := m.Issue(id)
		if err != nil {
			t.Fatal(err)
		}
		pk[id] = k
		x, err := keygen.IdentityPointIn(katSystem, id, katEpoch)
		if err != nil {
			t.Fatal(err)
		}
		kf, err := k.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var w struct {
			Row string `json:"row"`
		}
		if err := json.Unmarshal(kf, &w); err != nil {
			t.Fatal(err)
		}
		raw, err := wire.UnB64(w.Row)
		if err != nil {
			t.Fatal(err)
		}
		var row []string
		for i := 0; i < len(raw); i += 32 {
			row = append(row, hx(raw[i:i+32]))
		}
		sok := k.SOK()
		doc.Identities = append(doc.Identities, katIdentity{Identity: id,
			Msg: hx(wire.LP16(wire.LP16(nil, []byte(id)), []byte(katEpoch))), X: hx(x[:]),
			H1: hx(os2.H1(katSystem, id, katEpoch).BytesCompressed()), H2: hx(os2.H2(katSystem, id, katEpoch).BytesCompressed()),
			D1: hx(sok[:os2.G1Size]), D2: hx(sok[os2.G1Size:]), Row: row, KeyFile: kf})
	}
	for i, a := range katIdentities {
		for _, b := range katIdentities[i+1:] {
			lo, hi := min(a, b), max(a, b)
			blom, err := pk[lo].BlomSecret(hi)
			if err != nil {
				t.Fatal(err)
			}
			g, err := os2.SOK(pk[lo], hi)
			if err != nil {
				t.Fatal(err)
			}
			K, err := os2.Suite{}.Pairwise(pk[lo], hi)
			if err != nil {
				t.Fatal(err)
			}
			gb, _ := g.MarshalBinary()
			kb := katPairwise(t, katSystem, blom[:], gb, katEpoch, lo, hi, &K)
			doc.Pairs = append(doc.Pairs, katPair{Lo: lo, Hi: hi, Blom: hx(blom[:]), G: gtHex(t, g),
				Info: hx(keygen.Info(keygen.LabelPairwiseOS2, katEpoch, lo, hi)), K: hx(kb),
				Check: K.Fingerprint()})
		}
	}

	// A directory entry for the issuer and a section sealed to it.
	issuer := katIdentities[2]
	kemSeed := make([]byte, os2.KEMSecretSize)
	katStream("kem key " + issuer).Read(kemSeed)
	kem, err := os2.KEMKeyFromSeed(kemSeed)
	if err != nil {
		t.Fatal(err)
	}
	na, _ := time.Parse(time.RFC3339, katNotAfter)
	e, err := rm.SignEntry(issuer, katEpoch, kem.PublicKey(), na)
	if err != nil {
		t.Fatal(err)
	}
	ej, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	doc.Directory = katDirectory{Identity: issuer, KEMSeed: hx(kemSeed), PublicKey: hx(e.PublicKey), NotAfter: katNotAfter,
		SignedBytes: hx(e.SignedBytes()), Signature: hx(e.Signature), Entry: ej}

	eseed := make([]byte, xwing.EncapsulationSeedSize)
	katStream("encapsulation").Read(eseed)
	ct, ss, err := os2.Suite{}.Encapsulate(e.PublicKey, bytes.NewReader(eseed))
	if err != nil {
		t.Fatal(err)
	}
	alice := katIdentities[0]
	K, err := os2.Suite{}.Pairwise(pk[alice], issuer)
	if err != nil {
		t.Fatal(err)
	}
	sk := K.Mix(ss, keygen.LabelSectionOS2, "issuer", katOrderID)
	ch := os2.EncapHash(ct)
	var kb string
	for _, p := range doc.Pairs {
		if p.Lo == alice && p.Hi == issuer {
			kb = p.K
		}
	}
	doc.Section = katSection{Cardholder: alice, Party: issuer, Role: "issuer", OrderID: katOrderID, K: kb,
		EncapSeed: hx(eseed), Ciphertext: hx(ct), CTHash: hx(ch[:]), SharedSecret: hx(ss),
		Info: hx(keygen.Info(keygen.LabelSectionOS2, "issuer", katOrderID)), SectionKey: hx(sk[:])}
	return doc
}

// katK computes K(lo, hi) from its definition (keygen.Pairwise keeps its
// bytes to itself) and checks it against the suite's through a value
// derived from each: the fingerprint, HKDF-Expand(K, lp16(label))[0:15].
func katPairwise(t testing.TB, system [16]byte, blom, g []byte, epoch, lo, hi string, suiteK *keygen.Pairwise) []byte {
	t.Helper()
	info := keygen.Info(keygen.LabelPairwiseOS2, epoch, lo, hi)
	K := make([]byte, 32)
	if _, err := io.ReadFull(hkdf.New(sha256.New, append(slices.Clone(blom), g...), system[:], info), K); err != nil {
		t.Fatal(err)
	}
	fp := make([]byte, 15)
	io.ReadFull(hkdf.Expand(sha256.New, K, keygen.Info(keygen.LabelFingerprint)), fp)
	if want := base32.StdEncoding.EncodeToString(fp)[:20]; strings.ReplaceAll(suiteK.Fingerprint(), "-", "") != want {
		t.Fatalf("K(%s, %s): the suite's K is not HKDF(salt=system, ikm=s_blom||g, info)", lo, hi)
	}
	return K
}

// matrixRow0 is D[0][0..k−1] of the Blom matrix expanded from seed
// (PROTOCOL.md §4.1), little-endian hex.
func matrixRow0(seed []byte, k int) []string {
	out := make([]string, k)
	for b, e := range expandRow(seed, k, 0) {
		out[b] = e
	}
	return out
}

var p25519 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))

// expandRow is row a of the upper triangle, D[a][a..k−1], as hex, computed
// from the definition with math/big.
func expandRow(seed []byte, k, a int) []string {
	var hdr []byte
	hdr = append(hdr, "orderseal-v1-master"...)
	hdr = append(hdr, seed...)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(k))
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(a))
	x := sha3.NewSHAKE256()
	x.Write(hdr)
	var out []string
	for len(out) < k-a {
		var e [32]byte
		x.Read(e[:])
		e[31] &= 0x7f
		be := slices.Clone(e[:])
		slices.Reverse(be)
		if new(big.Int).SetBytes(be).Cmp(p25519) < 0 {
			out = append(out, hx(e[:]))
		}
	}
	return out
}

func TestKAT(t *testing.T) {
	doc := makeKAT(t)
	got, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(katPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(katPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		var stored katDoc
		if err := json.Unmarshal(want, &stored); err != nil {
			t.Fatal(err)
		}
		diffKAT(t, doc, &stored)
		t.Fatal("testdata/os2_kat.json differs from what the code computes (regenerate with -update only if the format changed on purpose)")
	}
}

// diffKAT names the parts of the document that differ.
func diffKAT(t *testing.T, got, want *katDoc) {
	parts := map[string][2]any{"inputs": {got.Inputs, want.Inputs}, "root": {got.Root, want.Root},
		"params": {got.Params, want.Params}, "groups": {got.Groups, want.Groups}, "identities": {got.Identities, want.Identities},
		"pairs": {got.Pairs, want.Pairs}, "directory": {got.Directory, want.Directory}, "section": {got.Section, want.Section}}
	for name, p := range parts {
		a, _ := json.Marshal(p[0])
		b, _ := json.Marshal(p[1])
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs", name)
		}
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %.16q: %v", s, err)
	}
	return b
}

// TestKATConsistent checks the stored values against each other, with code
// of the test's own where it can: what another implementation would check.
func TestKATConsistent(t *testing.T) {
	data, err := os.ReadFile(filepath.Clean(katPath))
	if err != nil {
		t.Fatal(err)
	}
	var doc katDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	params, err := keygen.ParseParams(doc.Params)
	if err != nil {
		t.Fatal(err)
	}
	if err := (os2.Suite{}).CheckParams(params); err != nil {
		t.Fatal(err)
	}
	system := [16]byte(unhex(t, doc.Inputs.System))
	root := unhex(t, doc.Inputs.Root)

	// Root → s, P, the ML-DSA key and the epoch's Blom seed and matrix.
	wide := shakeRead(64, wire.LP16(nil, []byte("orderseal-v2-master-sok")), root)
	if hx(wide) != doc.Root.SOKWide {
		t.Error("sok_shake256_64")
	}
	r, _ := new(big.Int).SetString("73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001", 16)
	sBig := new(big.Int).Mod(new(big.Int).SetBytes(wide), r)
	if hx(sBig.FillBytes(make([]byte, 32))) != doc.Root.SOKScalar {
		t.Error("sok scalar is not SHAKE256 output mod r, big-endian")
	}
	var s bls12381.Scalar
	s.SetBytes(unhex(t, doc.Root.SOKScalar))
	var P bls12381.G2
	P.ScalarMult(&s, bls12381.G2Generator())
	if hx(P.BytesCompressed()) != doc.Root.SOKPublic || !bytes.Equal(P.BytesCompressed(), params.Epochs.SOKPublic[:]) {
		t.Error("P ≠ s·g2")
	}
	dsaSeed := [32]byte(unhex(t, doc.Root.MLDSASeed))
	dpk, _ := mldsa65.NewKeyFromSeed(&dsaSeed)
	dpkb, _ := dpk.MarshalBinary()
	if !bytes.Equal(dpkb, params.Epochs.DirectoryKey[:]) {
		t.Error("directory key is not ML-DSA-65.KeyGen(mldsa_seed)")
	}
	blomSeed := shakeRead(32, wire.LP16(nil, []byte("orderseal-v2-master-blom")), root, wire.LP16(nil, []byte(doc.Inputs.Epoch)))
	if hx(blomSeed) != doc.Root.BlomSeed {
		t.Error("blom seed of the epoch")
	}

	// Rows from the matrix, in math/big: r_a = Σ_b D[a][b] x^b.
	k := doc.Inputs.K
	D := make([][]*big.Int, k)
	for a := range D {
		D[a] = make([]*big.Int, k)
	}
	for a := 0; a < k; a++ {
		for j, e := range expandRow(blomSeed, k, a) {
			D[a][a+j], D[a+j][a] = leBig(unhex(t, e)), leBig(unhex(t, e))
		}
	}
	for j, e := range doc.Root.DRow0 {
		if leBig(unhex(t, e)).Cmp(D[0][j]) != 0 {
			t.Errorf("D[0][%d]", j)
		}
	}
	g2 := bls12381.G2Generator()
	for _, id := range doc.Identities {
		x := leBig(unhex(t, id.X))
		for a := 0; a < k; a++ {
			sum, pw := new(big.Int), big.NewInt(1)
			for b := 0; b < k; b++ {
				sum.Add(sum, new(big.Int).Mul(D[a][b], pw))
				pw.Mul(pw, x).Mod(pw, p25519)
			}
			sum.Mod(sum, p25519)
			if sum.Cmp(leBig(unhex(t, id.Row[a]))) != 0 {
				t.Errorf("%s: row[%d] ≠ Σ D[%d][b]·x^b", id.Identity, a, a)
			}
		}
		h1, err := os2.DecodeG1(unhex(t, id.H1))
		if err != nil {
			t.Fatal(err)
		}
		h2, err := os2.DecodeG2(unhex(t, id.H2))
		if err != nil {
			t.Fatal(err)
		}
		var m bls12381.G1
		m.Hash(unhex(t, id.Msg), []byte(doc.Groups.DSTG1))
		if !m.IsEqual(h1) {
			t.Errorf("%s: H1 ≠ G1.Hash(msg, dst_g1)", id.Identity)
		}
		d1, err := os2.DecodeG1(unhex(t, id.D1))
		if err != nil {
			t.Fatal(err)
		}
		d2, err := os2.DecodeG2(unhex(t, id.D2))
		if err != nil {
			t.Fatal(err)
		}
		var sd1 bls12381.G1
		sd1.ScalarMult(&s, h1)
		var sd2 bls12381.G2
		sd2.ScalarMult(&s, h2)
		if !sd1.IsEqual(d1) || !sd2.IsEqual(d2) {
			t.Errorf("%s: d1 ≠ s·H1 or d2 ≠ s·H2", id.Identity)
		}
		if !bls12381.Pair(d1, g2).IsEqual(bls12381.Pair(h1, &P)) || !bls12381.Pair(d1, h2).IsEqual(bls12381.Pair(h1, d2)) {
			t.Errorf("%s: key check equations fail", id.Identity)
		}
		key, err := keygen.ParsePartyKey(id.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := (os2.Suite{}).CheckKey(key, time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Errorf("%s: stored key file: %v", id.Identity, err)
		}
	}

	// Pairs: g from both sides' formulas, K by HKDF written out here.
	byID := map[string]katIdentity{}
	for _, id := range doc.Identities {
		byID[id.Identity] = id
	}
	for _, p := range doc.Pairs {
		lo, hi := byID[p.Lo], byID[p.Hi]
		d1, _ := os2.DecodeG1(unhex(t, lo.D1))
		h2, _ := os2.DecodeG2(unhex(t, hi.H2))
		h1, _ := os2.DecodeG1(unhex(t, lo.H1))
		d2, _ := os2.DecodeG2(unhex(t, hi.D2))
		if gtHex(t, bls12381.Pair(d1, h2)) != p.G || gtHex(t, bls12381.Pair(h1, d2)) != p.G {
			t.Errorf("%s/%s: g ≠ e(d1(lo), H2(hi)) = e(H1(lo), d2(hi))", p.Lo, p.Hi)
		}
		info := wire.LP16(nil, []byte("orderseal-v2-pairwise"))
		for _, c := range []string{doc.Inputs.Epoch, p.Lo, p.Hi} {
			info = wire.LP16(info, []byte(c))
		}
		if hx(info) != p.Info {
			t.Errorf("%s/%s: info", p.Lo, p.Hi)
		}
		K := make([]byte, 32)
		io.ReadFull(hkdf.New(sha256.New, append(unhex(t, p.Blom), unhex(t, p.G)...), system[:], info), K)
		if hx(K) != p.K {
			t.Errorf("%s/%s: K ≠ HKDF(salt=system, ikm=s_blom||g, info)", p.Lo, p.Hi)
		}
	}

	// The directory entry: its signed bytes, its signature, its JSON.
	var e keygen.DirectoryEntry
	if err := e.UnmarshalJSON(doc.Directory.Entry); err != nil {
		t.Fatal(err)
	}
	sb := []byte("orderseal-v2-directory")
	for _, f := range [][]byte{[]byte(doc.Directory.Identity), []byte(doc.Inputs.Epoch), unhex(t, doc.Directory.PublicKey), []byte(doc.Directory.NotAfter)} {
		sb = wire.LP16(sb, f)
	}
	if hx(sb) != doc.Directory.SignedBytes || !bytes.Equal(e.SignedBytes(), sb) {
		t.Error("signed bytes")
	}
	if !mldsa65.Verify(dpk, sb, nil, unhex(t, doc.Directory.Signature)) {
		t.Error("signature does not verify")
	}
	if err := (os2.Suite{}).VerifyEntry(params, &e, time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Error(err)
	}
	_, kpk := xwing.DeriveKeyPairPacked(unhex(t, doc.Directory.KEMSeed))
	if hx(kpk) != doc.Directory.PublicKey {
		t.Error("public key ≠ X-Wing DeriveKeyPair(kem_seed)")
	}

	// The section: X-Wing encapsulation, decapsulation, section key by HKDF.
	sec := doc.Section
	ss, ct, err := xwing.Encapsulate(kpk, unhex(t, sec.EncapSeed))
	if err != nil || hx(ct) != sec.Ciphertext || hx(ss) != sec.SharedSecret {
		t.Errorf("X-Wing encapsulation: %v", err)
	}
	if h := sha256.Sum256(ct); hx(h[:]) != sec.CTHash {
		t.Error("kem_ct_sha256")
	}
	if got := xwing.Decapsulate(unhex(t, sec.Ciphertext), unhex(t, doc.Directory.KEMSeed)); hx(got) != sec.SharedSecret {
		t.Error("X-Wing decapsulation")
	}
	info := wire.LP16(nil, []byte("orderseal-v2-section"))
	info = wire.LP16(wire.LP16(info, []byte(sec.Role)), []byte(sec.OrderID))
	if hx(info) != sec.Info {
		t.Error("section info")
	}
	skey := make([]byte, 32)
	io.ReadFull(hkdf.New(sha256.New, unhex(t, sec.SharedSecret), unhex(t, sec.K), info), skey)
	if hx(skey) != sec.SectionKey {
		t.Error("section key ≠ HKDF(salt=K, ikm=ss, info)")
	}
	for _, p := range doc.Pairs {
		if p.Lo == sec.Cardholder && p.Hi == sec.Party && p.K != sec.K {
			t.Error("section K is not the pair's K")
		}
	}
}

func leBig(le []byte) *big.Int {
	be := slices.Clone(le)
	slices.Reverse(be)
	return new(big.Int).SetBytes(be)
}
