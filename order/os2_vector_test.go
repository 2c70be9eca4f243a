package order

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/hkdf"

	"orderseal/internal/wire"
	"orderseal/keygen"
	"orderseal/keygen/center"
	"orderseal/suite"
	"orderseal/suite/os2"
	"orderseal/tstest/keys"
)

// The OS2 bundle vector (testdata/bundle_os2.json, PROTOCOL.md §21.13–§21.17) is
// sealed under the key center of suite/os2/testdata/os2_kat.json: the same
// system, root seed, k and epoch, so that one center serves both files.
var (
	os2VecSystem = [16]byte{0x2e, 0x02, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d}
	os2VecRoot   = func() (r [32]byte) {
		for i := range r {
			r[i] = byte(0x40 + i)
		}
		return r
	}()
	os2VecNotAfter = time.Date(2027, 1, 8, 0, 0, 0, 0, time.UTC)
)

const (
	os2VecK       = 4
	os2VecEpoch   = "2026-12"
	os2VecOrderID = "ord-os2-vector-0001"
	os2VecPath    = "testdata/bundle_os2.json"
)

// os2VecCenter is the root master of the vector and its epoch's master.
func os2VecCenter(t testing.TB) (root, epoch *center.Master) {
	t.Helper()
	root, err := center.EpochMasterFromSeed(keygen.Params{Suite: os2.Name, System: os2VecSystem, K: os2VecK,
		Epochs: &keygen.Epochs{Period: keygen.PeriodMonth, Grace: keygen.DefaultGrace}}, os2VecRoot)
	if err != nil {
		t.Fatal(err)
	}
	epoch, err = root.ForEpoch(os2VecEpoch)
	if err != nil {
		t.Fatal(err)
	}
	return root, epoch
}

// os2VecKEMSeed is id's X-Wing seed: SHAKE256("orderseal os2 kat kem key " || id)[:32],
// as in the KAT.
func os2VecKEMSeed(id string) []byte {
	x := sha3.NewSHAKE256()
	x.Write([]byte("orderseal os2 kat kem key " + id))
	out := make([]byte, os2.KEMSecretSize)
	x.Read(out)
	return out
}

// teeReader records what Seal draws from the random stream.
type teeReader struct {
	r   io.Reader
	out bytes.Buffer
}

func (t *teeReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.out.Write(p[:n])
	return n, err
}

type os2VecSection struct {
	K           string          `json:"K_hex"`
	KEMHash     string          `json:"kem_ct_sha256_hex"`
	SharedKey   string          `json:"kem_ss_hex"`
	SectionInfo string          `json:"section_info_hex"`
	SectionKey  string          `json:"section_key_hex"`
	AAD         string          `json:"aad_hex"`
	Plaintext   json.RawMessage `json:"plaintext"`
}

type os2Vector struct {
	Comment    string                     `json:"comment"`
	Center     map[string]any             `json:"center"`
	Params     json.RawMessage            `json:"params"`
	Now        string                     `json:"sealed_at"`
	Random     string                     `json:"random_stream_hex"`
	Keys       map[string]json.RawMessage `json:"keys"`
	KEMSeeds   map[string]string          `json:"kem_seeds_hex"`
	Directory  []json.RawMessage          `json:"directory"`
	Canonical  string                     `json:"canonical_header_hex"`
	HeaderHash string                     `json:"header_hash_hex"`
	Bundle     json.RawMessage            `json:"bundle"`
	Sections   map[Role]os2VecSection     `json:"sections"`
}

var os2VecParties = Parties{Merchant: keys.Shop, Issuer: keys.Bank, Carrier: keys.Parcel, Vault: keys.Vault}

// makeOS2Vector seals order_token.json from the fixed inputs and opens
// every section, recording the intermediate values.
func makeOS2Vector(t testing.TB) *os2Vector {
	t.Helper()
	root, m := os2VecCenter(t)
	params := m.Params()
	pj, _ := params.MarshalJSON()
	v := &os2Vector{
		Comment: "made by `go test ./order -run TestBundleOS2Vector -update`; see testdata/README.md and PROTOCOL.md §21.13–§21.17",
		Center: map[string]any{"system": hex.EncodeToString(os2VecSystem[:]), "root_seed": hex.EncodeToString(os2VecRoot[:]),
			"k": os2VecK, "epoch": os2VecEpoch, "kat": "suite/os2/testdata/os2_kat.json"},
		Params: pj, Now: os2Now.Format(time.RFC3339), Keys: map[string]json.RawMessage{}, KEMSeeds: map[string]string{},
		Sections: map[Role]os2VecSection{}}
	pk := map[string]*keygen.PartyKey{}
	var dir []*keygen.DirectoryEntry
	for _, id := range []string{keys.Alice, keys.Shop, keys.Bank, keys.Parcel, keys.Vault} {
		k, err := m.Issue(id)
		if err != nil {
			t.Fatal(err)
		}
		pk[id] = k
		v.Keys[id] = mustJSON(t, k)
		if id == keys.Alice {
			continue
		}
		seed := os2VecKEMSeed(id)
		kem, err := os2.KEMKeyFromSeed(seed)
		if err != nil {
			t.Fatal(err)
		}
		v.KEMSeeds[id] = hex.EncodeToString(seed)
		e, err := root.SignEntry(id, os2VecEpoch, kem.PublicKey(), os2VecNotAfter)
		if err != nil {
			t.Fatal(err)
		}
		dir = append(dir, e)
		v.Directory = append(v.Directory, mustJSON(t, e))
	}
	rnd := &teeReader{r: detRand("os2 vector")}
	b, err := Seal(loadOrder(t, "order_token.json"), suite.NewKeys(pk[keys.Alice], 4), os2VecParties,
		SealOptions{Now: os2Now, OrderID: os2VecOrderID, Rand: rnd, Directory: dir})
	if err != nil {
		t.Fatal(err)
	}
	v.Random = hex.EncodeToString(rnd.out.Bytes())
	v.Bundle = mustJSON(t, b)
	v.Canonical = hex.EncodeToString(b.CanonicalHeader())
	h := b.HeaderHash()
	v.HeaderHash = hex.EncodeToString(h[:])
	for r, id := range b.Parties {
		kem, _ := os2.KEMKeyFromSeed(os2VecKEMSeed(id))
		s, err := Open(b, suite.WithKEM(suite.NewKeys(pk[id], 4), kem), r, OpenOptions{Now: os2Now.Add(time.Minute)})
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		ss, err := kem.Decapsulate(b.Sections[r].KEM)
		if err != nil {
			t.Fatal(err)
		}
		K, err := suite.Pairwise(pk[id], keys.Alice)
		if err != nil {
			t.Fatal(err)
		}
		kb := os2VecK_(t, pk[keys.Alice], id, &K)
		sk := K.Mix(ss, keygen.LabelSectionOS2, string(r), b.OrderID)
		kh := b.KEMs[r]
		v.Sections[r] = os2VecSection{K: hex.EncodeToString(kb), KEMHash: hex.EncodeToString(kh[:]), SharedKey: hex.EncodeToString(ss),
			SectionInfo: hex.EncodeToString(keygen.Info(keygen.LabelSectionOS2, string(r), b.OrderID)),
			SectionKey:  hex.EncodeToString(sk[:]), AAD: hex.EncodeToString(aad(h, r)), Plaintext: mustJSON(t, s)}
	}
	return v
}

// os2VecK_ is K(alice, id) computed from its definition — HKDF-SHA256(salt =
// system, ikm = s_blom || g, info) — and checked against the suite's K
// through the fingerprint, a value derived from it (Pairwise keeps K's bytes).
func os2VecK_(t testing.TB, alice *keygen.PartyKey, id string, K *keygen.Pairwise) []byte {
	t.Helper()
	blom, err := alice.BlomSecret(id)
	if err != nil {
		t.Fatal(err)
	}
	g, err := os2.SOK(alice, id)
	if err != nil {
		t.Fatal(err)
	}
	gb, _ := g.MarshalBinary()
	lo, hi := min(alice.Identity(), id), max(alice.Identity(), id)
	out := make([]byte, 32)
	sys := alice.Params().System
	io.ReadFull(hkdf.New(sha256.New, append(slices.Clone(blom[:]), gb...), sys[:],
		keygen.Info(keygen.LabelPairwiseOS2, alice.Epoch(), lo, hi)), out)
	fp := make([]byte, 15)
	io.ReadFull(hkdf.Expand(sha256.New, out, keygen.Info(keygen.LabelFingerprint)), fp)
	if base32.StdEncoding.EncodeToString(fp)[:20] != strings.ReplaceAll(K.Fingerprint(), "-", "") {
		t.Fatalf("K(alice, %s) is not HKDF(salt = system, ikm = s_blom || g, info)", id)
	}
	return out
}

// TestBundleOS2Vector seals the vector again from its fixed inputs and
// compares byte for byte, then opens the stored bundle with the stored keys
// alone and compares every section; -update regenerates the file.
func TestBundleOS2Vector(t *testing.T) {
	v := makeOS2Vector(t)
	got, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(os2VecPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		writeOS2FuzzSeed(t, v.Bundle)
	}
	data, err := os.ReadFile(os2VecPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Error("sealing the vector's inputs again gives other bytes than testdata/bundle_os2.json (regenerate with -update only if the format changed on purpose)")
	}

	var s os2Vector
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	params, err := keygen.ParseParams(s.Params)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseBundle(s.Bundle)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(b.CanonicalHeader()) != s.Canonical {
		t.Fatal("canonical header differs from the vector")
	}
	if h := b.HeaderHash(); hex.EncodeToString(h[:]) != s.HeaderHash {
		t.Fatal("hH differs from the vector")
	}
	sealedAt, _ := time.Parse(time.RFC3339, s.Now)
	for _, raw := range s.Directory {
		var e keygen.DirectoryEntry
		if err := e.UnmarshalJSON(raw); err != nil {
			t.Fatal(err)
		}
		if err := (os2.Suite{}).VerifyEntry(params, &e, sealedAt); err != nil {
			t.Errorf("stored entry of %s: %v", e.Identity, err)
		}
		seed, _ := hex.DecodeString(s.KEMSeeds[e.Identity])
		kem, err := os2.KEMKeyFromSeed(seed)
		if err != nil || !bytes.Equal(kem.PublicKey(), e.PublicKey) {
			t.Errorf("kem seed of %s does not give its entry's key", e.Identity)
		}
	}
	if len(s.Sections) != 4 {
		t.Fatalf("vector holds %d sections, want 4", len(s.Sections))
	}
	for r, want := range s.Sections {
		id := b.Parties[r]
		k, err := keygen.ParsePartyKey(s.Keys[id])
		if err != nil {
			t.Fatal(err)
		}
		if !k.Params().Equal(params) {
			t.Fatalf("%s key is not of the vector's params", id)
		}
		seed, _ := hex.DecodeString(s.KEMSeeds[id])
		kem, err := os2.KEMKeyFromSeed(seed)
		if err != nil {
			t.Fatal(err)
		}
		relayed, err := b.ForRole(r)
		if err != nil {
			t.Fatal(err)
		}
		sec, err := Open(relayed, suite.WithKEM(suite.NewKeys(k, 4), kem), r, OpenOptions{Now: sealedAt.Add(time.Minute)})
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, want.Plaintext); err != nil {
			t.Fatal(err)
		}
		if got := mustJSON(t, sec); string(got) != compact.String() {
			t.Fatalf("%s section:\n got %s\nwant %s", r, got, want.Plaintext)
		}
		if kh := sha256.Sum256(b.Sections[r].KEM); hex.EncodeToString(kh[:]) != want.KEMHash {
			t.Errorf("%s: SHA-256(kem_ct)", r)
		}
	}
}

// writeOS2FuzzSeed stores the vector's issuer relay as a seed of FuzzParseBundle and FuzzOpen.
func writeOS2FuzzSeed(t testing.TB, bundle json.RawMessage) {
	t.Helper()
	b, err := ParseBundle(bundle)
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.ForRole(RoleIssuer)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "fuzz-bundles", "os2_relayed_issuer.json"), append(mustJSON(t, r), '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOS2RefusalCodes: each refusal issue 15 names has its own error, and
// none of the others': a wrong epoch, an expired key, a directory entry with
// a bad signature, for another identity or of another epoch, a KEM
// ciphertext of the wrong length, an OS1 bundle to a party that no longer accepts OS1,
// a key whose G1 or G2 point is not canonical or not in its subgroup.
func TestOS2RefusalCodes(t *testing.T) {
	kc := keys.OS2(t)
	next := keys.OS2Center(t, "2027-01")
	codes := map[string]error{"ErrEpoch": ErrEpoch, "ErrKeyExpired": ErrKeyExpired, "os2.ErrEntrySig": os2.ErrEntrySig,
		"ErrEntryMissing": ErrEntryMissing, "ErrEntryEpoch": ErrEntryEpoch, "ErrKEM": ErrKEM,
		"ErrNotAccepted": ErrNotAccepted, "os2.ErrPoint": os2.ErrPoint, "os2.ErrEntryOver": os2.ErrEntryOver}
	seal := func(at time.Time, dir []*keygen.DirectoryEntry) (*Bundle, error) {
		if dir == nil {
			dir = kc.Directory(t, keys.Shop, keys.Bank, keys.Parcel)
		}
		return Seal(loadOrder(t, "order.json"), kc.Keys(t, keys.Alice), threeParties, SealOptions{Now: at, Directory: dir})
	}
	good, err := seal(os2Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	issuer := kc.EpochKeys(t, keys.Bank)
	late, err := seal(time.Date(2027, 1, 7, 12, 0, 0, 0, time.UTC), nil) // in grace, open after it
	if err != nil {
		t.Fatal(err)
	}
	dirWith := func(e *keygen.DirectoryEntry) []*keygen.DirectoryEntry {
		return append(kc.Directory(t, keys.Shop, keys.Parcel), e)
	}
	forged := kc.Entry(t, keys.Bank)
	forged.Signature[100] ^= 1
	shortKEM := good.ForRoleMust(t, RoleIssuer)
	s := shortKEM.Sections[RoleIssuer]
	s.KEM = s.KEM[:len(s.KEM)-1]
	shortKEM.Sections[RoleIssuer] = s
	os1Bundle := sealOrder(t, "order.json", "ord-os1")
	os2Bank := suite.NewKeys(kc.Party(t, keys.Bank), 4)
	sok := kc.Party(t, keys.Bank).SOK()
	sok[0] &^= 0x80 // d1 no longer a compressed point
	raw, _ := kc.Party(t, keys.Bank).MarshalJSON()
	var m map[string]any
	json.Unmarshal(raw, &m)
	m["sok"] = wire.B64(sok)
	raw, _ = json.Marshal(m)
	badPoint, err := keygen.ParsePartyKey(raw)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		err  func() error
		want string
	}{
		{"wrong epoch", func() error { _, err := openOS2(good, next.EpochKeys(t, keys.Bank), RoleIssuer); return err }, "ErrEpoch"},
		{"expired key", func() error {
			_, err := Open(late, issuer, RoleIssuer, OpenOptions{Now: time.Date(2027, 1, 8, 1, 0, 0, 0, time.UTC)})
			return err
		}, "ErrKeyExpired"},
		{"expired key seals", func() error { _, err := seal(time.Date(2027, 1, 8, 0, 0, 0, 0, time.UTC), nil); return err }, "ErrKeyExpired"},
		{"entry with a bad signature", func() error { _, err := seal(os2Now, dirWith(forged)); return err }, "os2.ErrEntrySig"},
		{"entry for another identity", func() error { _, err := seal(os2Now, dirWith(kc.Entry(t, keys.OtherCarrier))); return err }, "ErrEntryMissing"},
		{"entry of another epoch", func() error { _, err := seal(os2Now, dirWith(next.Entry(t, keys.Bank))); return err }, "ErrEntryEpoch"},
		{"entry past not_after", func() error {
			_, err := seal(time.Date(2026, 12, 20, 0, 0, 1, 0, time.UTC), dirWith(shortEntry(t, kc, keys.Bank, time.Date(2026, 12, 20, 0, 0, 0, 0, time.UTC))))
			return err
		}, "os2.ErrEntryOver"},
		{"KEM ciphertext of the wrong length", func() error { _, err := openOS2(shortKEM, issuer, RoleIssuer); return err }, "ErrKEM"},
		{"OS1 bundle to a party past its OS1 cut-off", func() error {
			_, err := openAt(os1Bundle, os2Only{os2Bank}, RoleIssuer)
			return err
		}, "ErrNotAccepted"},
		{"key point not canonical", func() error {
			_, err := openOS2(good, suite.WithKEM(suite.NewKeys(badPoint, 4), kc.KEMKey(t, keys.Bank)), RoleIssuer)
			return err
		}, "os2.ErrPoint"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.err()
			if !errors.Is(err, codes[c.want]) {
				t.Fatalf("got %v, want %s", err, c.want)
			}
			for name, other := range codes {
				if name != c.want && errors.Is(err, other) {
					t.Errorf("%v is also %s", err, name)
				}
			}
		})
	}
	// The control: the untouched bundle opens.
	if _, err := openOS2(good, issuer, RoleIssuer); err != nil {
		t.Fatal(err)
	}
}

// os2Only is an OS2 party's keys across epochs that no longer accepts OS1,
// as suite/keystore is past -accept-os1-until.
type os2Only struct{ keygen.Keyring }

func (k os2Only) Epochs() []string { return []string{k.Epoch()} }

func (k os2Only) ForEpoch(epoch string) (keygen.Keyring, error) {
	switch epoch {
	case k.Epoch():
		return k.Keyring, nil
	case "":
		return nil, fmt.Errorf("OS1: %w", keygen.ErrNotAccepted)
	}
	return nil, errors.New("no keys of that epoch")
}

// ForRoleMust is ForRole for tests.
func (b *Bundle) ForRoleMust(t testing.TB, r Role) *Bundle {
	t.Helper()
	c, err := b.ForRole(r)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
