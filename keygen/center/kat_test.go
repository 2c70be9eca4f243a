package center

import (
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"strconv"
	"strings"
	"testing"

	fp "github.com/cloudflare/circl/math/fp25519"

	"orderseal/keygen"
	"orderseal/keygen/internal/field"
	"orderseal/keygen/internal/kat"
	"orderseal/suite/os1"
)

// The known-answer vectors in keygen/testdata/kat.json come from
// keygen/testdata/kat_gen.py, an independent Python reference written from
// DESIGN.md §2 and §4.1 without reading this package. See
// keygen/testdata/README.md.
//
// Here they check the master: D's entries, the rows Issue computes, and
// that the keys issued derive the vectors' secrets, fingerprints and
// section keys. K itself is keygen's to show (keygen/kat_test.go); the
// fingerprint and section key are both HKDF-Expand(K, …).

func TestKAT(t *testing.T) {
	doc := kat.Load(t)

	var seed [32]byte
	copy(seed[:], kat.Hex(t, "inputs.seed", doc.Inputs.Seed, 32))
	var system [16]byte
	copy(system[:], kat.Hex(t, "inputs.system", doc.Inputs.System, 16))
	if want := "orderseal-v1-id:" + hex.EncodeToString(system[:]); doc.Inputs.IdentityDST != want {
		t.Errorf("inputs.identity_dst = %q, want %q", doc.Inputs.IdentityDST, want)
	}
	if len(doc.Inputs.Ks) != len(doc.Vectors) {
		t.Errorf("inputs.ks lists %d values, file holds %d vector sets", len(doc.Inputs.Ks), len(doc.Vectors))
	}

	var checked int
	for _, v := range doc.Vectors {
		t.Run("k="+strconv.Itoa(v.K), func(t *testing.T) {
			m, err := MasterFromSeed(keygen.Params{Suite: keygen.SuiteOS1, System: system, K: v.K}, seed)
			if err != nil {
				t.Fatalf("MasterFromSeed: %v", err)
			}

			// Master matrix entries.
			if want := min(3, v.K); len(v.Master.Row0First3) != want {
				t.Fatalf("D_row0_first3 has %d entries, want %d", len(v.Master.Row0First3), want)
			}
			for b, want := range v.Master.Row0First3 {
				if got := eltHex(m.entry(0, b)); got != want {
					t.Errorf("D[0][%d] = %s, want %s", b, got, want)
				}
				if got := eltHex(m.entry(b, 0)); got != want {
					t.Errorf("D[%d][0] = %s, want %s (symmetry)", b, got, want)
				}
				checked++
			}
			switch {
			case v.K >= 3 && v.Master.D12 == nil:
				t.Errorf("D_1_2 missing for k=%d", v.K)
			case v.K >= 3:
				if got := eltHex(m.entry(1, 2)); got != *v.Master.D12 {
					t.Errorf("D[1][2] = %s, want %s", got, *v.Master.D12)
				}
				if got := eltHex(m.entry(2, 1)); got != *v.Master.D12 {
					t.Errorf("D[2][1] = %s, want %s (symmetry)", got, *v.Master.D12)
				}
				checked++
			case v.Master.D12 != nil:
				t.Errorf("D_1_2 given for k=%d < 3", v.K)
			}

			// Identity points and rows.
			keys := make(map[string]*keygen.PartyKey, len(v.Identities))
			for _, id := range v.Identities {
				t.Run("id="+id.ID, func(t *testing.T) {
					x, err := keygen.IdentityPoint(system, id.ID)
					if err != nil {
						t.Fatalf("IdentityPoint: %v", err)
					}
					if got := eltHex(x); got != id.X {
						t.Errorf("x = %s, want %s", got, id.X)
					}
					pk, err := m.Issue(id.ID)
					if err != nil {
						t.Fatalf("Issue: %v", err)
					}
					keys[id.ID] = pk
					row := rowOf(t, pk)
					if len(row) != v.K {
						t.Fatalf("row has %d elements, want k=%d", len(row), v.K)
					}
					switch {
					case id.Row != nil:
						if len(id.Row) != v.K {
							t.Fatalf("vector row has %d elements, want k=%d", len(id.Row), v.K)
						}
						for a, want := range id.Row {
							if got := eltHex(row[a]); got != want {
								t.Errorf("r_%d = %s, want %s", a, got, want)
							}
						}
					case id.RowFirst4 != nil && id.RowSHA256 != "":
						if len(id.RowFirst4) != min(4, v.K) {
							t.Fatalf("row_first4 has %d elements", len(id.RowFirst4))
						}
						for a, want := range id.RowFirst4 {
							if got := eltHex(row[a]); got != want {
								t.Errorf("r_%d = %s, want %s", a, got, want)
							}
						}
						h := sha256.New()
						var b [fp.Size]byte
						for a := range row {
							field.Encode(b[:], &row[a])
							h.Write(b[:])
						}
						if got := hex.EncodeToString(h.Sum(nil)); got != id.RowSHA256 {
							t.Errorf("SHA-256(row) = %s, want %s", got, id.RowSHA256)
						}
					default:
						t.Fatalf("vector gives neither row nor row_first4+row_sha256")
					}
					checked++
				})
			}

			// Pairs, both directions.
			for _, p := range v.Pairs {
				t.Run("pair="+p.A+"|"+p.B, func(t *testing.T) {
					ka, kb := keys[p.A], keys[p.B]
					if ka == nil || kb == nil {
						t.Fatalf("pair names an identity with no issued key")
					}
					wantSection := strings.HasPrefix(p.A, "cardholder:") || strings.HasPrefix(p.B, "cardholder:")
					if wantSection != (p.Section != "") {
						t.Fatalf("%s present = %v, want %v", kat.SectionField, p.Section != "", wantSection)
					}
					for _, dir := range []struct {
						name string
						self *keygen.PartyKey
						peer string
					}{{"A→B", ka, p.B}, {"B→A", kb, p.A}} {
						if got := rawSecret(t, dir.self, dir.peer); got != p.S {
							t.Errorf("%s s = %s, want %s", dir.name, got, p.S)
						}
						pw, err := os1.Suite{}.Pairwise(dir.self, dir.peer)
						if err != nil {
							t.Fatalf("%s Pairwise: %v", dir.name, err)
						}
						if got := pw.Fingerprint(); got != p.Fingerprint {
							t.Errorf("%s fingerprint = %s, want %s", dir.name, got, p.Fingerprint)
						}
						if p.Section != "" {
							sk := pw.Expand(keygen.LabelSection, kat.SectionRole, kat.SectionOrder)
							if got := hex.EncodeToString(sk[:]); got != p.Section {
								t.Errorf("%s section key = %s, want %s", dir.name, got, p.Section)
							}
						}
					}
					checked++
				})
			}
		})
	}
	if checked == 0 {
		t.Fatal("no known-answer values were checked")
	}
	t.Logf("%d known-answer groups checked across %d parameter sets", checked, len(doc.Vectors))
}

// rawSecret is s(self, peer) = Σ r_a · x(peer)^a from the key's row, in
// math/big, as the lowercase hex of its canonical encoding.
func rawSecret(t *testing.T, self *keygen.PartyKey, peer string) string {
	t.Helper()
	xe, err := keygen.IdentityPoint(self.Params().System, peer)
	if err != nil {
		t.Fatal(err)
	}
	x, row := limbBig(&xe), rowOf(t, self)
	s := new(big.Int)
	for a := len(row) - 1; a >= 0; a-- {
		s.Mul(s, x)
		s.Add(s, limbBig(&row[a]))
		modp(s)
	}
	return eltHex(eltOf(s))
}
