package collude_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cloudflare/circl/ecc/bls12381"

	"orderseal/keygen"
	"orderseal/order"
	"orderseal/suite"
	"orderseal/suite/os2"
	"orderseal/tstest/collude"
	"orderseal/tstest/keys"
)

// now is the clock of these tests: inside keys.Epoch, so that OS2 keys of
// the epoch are usable and its directory entries valid.
var now = time.Date(2026, time.December, 6, 10, 0, 0, 0, time.UTC)

// nextEpoch is the epoch after keys.Epoch.
const nextEpoch = "2027-01"

// world is one suite's deployment as the attack meets it: its test key
// center and how a receiving party's key becomes the keyring Open takes.
type world struct {
	kc *keys.KeyCenter
	// ring is the keyring of receiving party id around key (genuine or
	// forged). Under OS2 it holds id's genuine KEM secret of the epoch: the
	// attacker is handed it, so that only the SOK layer stands.
	ring func(t testing.TB, key *keygen.PartyKey, id string) order.Keyring
	dir  []*keygen.DirectoryEntry // the recipients' entries (OS2)
}

func os1World(t testing.TB) *world {
	return &world{kc: keys.Test(t), ring: func(t testing.TB, key *keygen.PartyKey, id string) order.Keyring {
		return suite.NewKeys(key, 4)
	}}
}

func os2World(t testing.TB) *world {
	kc := keys.OS2(t)
	return &world{kc: kc, dir: kc.Directory(t, keys.Shop, keys.Bank, keys.Parcel),
		ring: func(t testing.TB, key *keygen.PartyKey, id string) order.Keyring {
			return suite.WithKEM(suite.NewKeys(key, 4), kc.KEMKey(t, id))
		}}
}

// seal seals o for parties as the holder of key (genuine or forged) at now.
func (w *world) seal(t testing.TB, o *order.Order, key *keygen.PartyKey) *order.Bundle {
	t.Helper()
	b, err := order.Seal(o, suite.NewKeys(key, 4), parties, order.SealOptions{Now: now, Directory: w.dir})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (w *world) open(t testing.TB, b *order.Bundle, key *keygen.PartyKey, role order.Role) (*order.Section, error) {
	t.Helper()
	return order.Open(b, w.ring(t, key, key.Identity()), role, order.OpenOptions{Now: now.Add(time.Minute)})
}

// genuineSOK is the oracle the coalition lacks: the identity-based key the
// key center issued to id (computed with s). With it the forged key is
// the genuine one, which shows the rest of the forgery is right.
func genuineSOK(t testing.TB, kc *keys.KeyCenter) collude.SOK {
	return func(c *collude.Coalition, id string) ([]byte, error) { return kc.Party(t, id).SOK(), nil }
}

// rowOf is the Blom row and point of key as its key file holds them.
func rowOf(t testing.TB, key *keygen.PartyKey) string {
	t.Helper()
	s, err := collude.ShareOf(key)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(s.Point, s.Row)
}

// TestSameProgramBothSuites runs one attack program against OS1 and OS2
// side by side: k ordinary cardholders pool their keys, rebuild the
// matrix (of the epoch), forge the issuer's, merchant's and carrier's keys
// and try to read alice's sections, then forge alice's key and order on
// her card. Against OS1 it wins. Against OS2 the Blom layer falls the same
// way — the forged rows are the genuine ones — but for every SOK the
// coalition can compute, the forged keys fail the public check
// (os2.ErrSOKKey) and, even with the recipients' genuine KEM secrets
// handed over, open nothing and seal nothing the genuine issuer accepts
// (order.ErrAuth). Only the oracle row, the key center's s, wins.
func TestSameProgramBothSuites(t *testing.T) {
	os1w, os2w := os1World(t), os2World(t)
	var r bls12381.Scalar
	if err := r.Random(rand.Reader); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		w     *world
		sok   collude.SOK
		win   bool  // the attack reads alice's sections and orders as her
		check error // suite.Check of a forged key
	}{
		{"OS1", os1w, nil, true, nil},
		{"OS2 sok of a colluder", os2w, collude.MemberSOK(0), false, os2.ErrSOKKey},
		{"OS2 sok of another colluder", os2w, collude.MemberSOK(keys.K - 1), false, os2.ErrSOKKey},
		{"OS2 sum of the colluders' sok", os2w, collude.SumSOK(), false, os2.ErrSOKKey},
		{"OS2 H1 H2 of the victim", os2w, collude.HashSOK(), false, os2.ErrSOKKey},
		{"OS2 r·H1 r·H2 (a master of its own)", os2w, collude.ScaledSOK(&r), false, os2.ErrSOKKey},
		{"OS2 random points", os2w, collude.RandomSOK(rand.Reader), false, os2.ErrSOKKey},
		{"OS2 oracle: the genuine sok (needs s)", os2w, genuineSOK(t, os2w.kc), true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, kc := tc.w, tc.w.kc
			epoch := kc.Params().Epochs != nil
			c, err := collude.Collude(partyKeys(t, kc, colluders(keys.K))...)
			if err != nil {
				t.Fatalf("k cardholders do not rebuild the matrix: %v", err)
			}
			defer c.Destroy()
			if want := kc.Master().Epoch(); c.Epoch() != want {
				t.Fatalf("coalition of epoch %q, want %q", c.Epoch(), want)
			}
			forge := func(id string) *keygen.PartyKey {
				t.Helper()
				k, err := c.ForgeWith(id, tc.sok)
				if err != nil {
					t.Fatalf("forge %s: %v", id, err)
				}
				return k
			}
			// Forge alone makes a whole key under OS1 only.
			if _, err := c.Forge(keys.Bank); epoch != errors.Is(err, collude.ErrSOK) || (!epoch && err != nil) {
				t.Fatalf("Forge: %v (epoch suite %v)", err, epoch)
			}

			// (a) The Blom layer falls: every forged row is the genuine one.
			for _, id := range []string{keys.Bank, keys.Shop, keys.Parcel, keys.Alice} {
				forged, genuine := forge(id), kc.Party(t, id)
				if rowOf(t, forged) != rowOf(t, genuine) {
					t.Fatalf("the forged Blom row of %s is not the genuine one", id)
				}
				if forged.Epoch() != genuine.Epoch() {
					t.Fatalf("forged key of epoch %q", forged.Epoch())
				}
				if forged.Equal(genuine) != tc.win {
					t.Fatalf("the forged key of %s equals the genuine one: %v", id, !tc.win)
				}
			}

			// (b) The public check refuses the forged SOK key.
			bank := forge(keys.Bank)
			if err := suite.Check(bank, now); !errors.Is(err, tc.check) || (tc.check == nil && err != nil) {
				t.Fatalf("suite.Check of the forged issuer key: %v, want %v", err, tc.check)
			}
			if epoch {
				if err := (os2.Suite{}).CheckKey(bank, now); !errors.Is(err, tc.check) || (tc.check == nil && err != nil) {
					t.Fatalf("os2 CheckKey of the forged issuer key: %v, want %v", err, tc.check)
				}
			}

			// (c) alice's bundle, opened with the forged recipients' keys
			// (and, under OS2, their genuine KEM secrets).
			victim := w.seal(t, testOrder(t), kc.Party(t, keys.Alice))
			for _, p := range []struct {
				role order.Role
				id   string
			}{{order.RoleIssuer, keys.Bank}, {order.RoleMerchant, keys.Shop}, {order.RoleCarrier, keys.Parcel}} {
				// Control: the genuine key with the same keyring opens it.
				if _, err := w.open(t, victim, kc.Party(t, p.id), p.role); err != nil {
					t.Fatalf("the genuine %s does not open its section: %v", p.id, err)
				}
				s, err := w.open(t, victim, forge(p.id), p.role)
				switch {
				case tc.win && err != nil:
					t.Fatalf("the forged %s key does not open alice's %s section: %v", p.id, p.role, err)
				case !tc.win && !errors.Is(err, order.ErrAuth):
					t.Fatalf("the forged %s key on alice's %s section: %v, want ErrAuth", p.id, p.role, err)
				case tc.win && p.role == order.RoleIssuer && (s.Card == nil || s.Card.Number != aliceCard):
					t.Fatalf("the issuer section holds card %+v, want alice's", s.Card)
				}
			}

			// (d) A bundle sealed with a forged alice key, to the genuine
			// issuer and merchant.
			forged := w.seal(t, testOrder(t), forge(keys.Alice))
			if forged.Cardholder != keys.Alice {
				t.Fatalf("sealed as %s", forged.Cardholder)
			}
			for _, p := range []struct {
				role order.Role
				id   string
			}{{order.RoleIssuer, keys.Bank}, {order.RoleMerchant, keys.Shop}} {
				_, err := w.open(t, forged, kc.Party(t, p.id), p.role)
				switch {
				case tc.win && err != nil:
					t.Fatalf("the genuine %s refuses the forged alice's bundle: %v", p.id, err)
				case !tc.win && !errors.Is(err, order.ErrAuth):
					t.Fatalf("the genuine %s on the forged alice's bundle: %v, want ErrAuth", p.id, err)
				}
			}
		})
	}
}

// TestOS2EpochMatrix: k rows of one OS2 epoch rebuild that epoch's matrix
// and give the genuine row of any identity in it; rows of two epochs are
// of two matrices and do not combine, so the coalition needs k rows
// within one epoch, and its matrix says nothing of the next.
func TestOS2EpochMatrix(t *testing.T) {
	cur, next := keys.OS2(t), keys.OS2Center(t, nextEpoch)
	ids := colluders(2 * keys.K)
	of := func(kc *keys.KeyCenter, ids []string) []*keygen.PartyKey { return partyKeys(t, kc, ids) }
	cat := func(a ...[]*keygen.PartyKey) []*keygen.PartyKey {
		var out []*keygen.PartyKey
		for _, p := range a {
			out = append(out, p...)
		}
		return out
	}
	half := keys.K / 2
	tests := []struct {
		name  string
		pool  []*keygen.PartyKey
		epoch *keys.KeyCenter // whose rows the coalition must forge; nil with wantErr
		want  error
	}{
		{"k of E", of(cur, ids[:keys.K]), cur, nil},
		{"k of E+1", of(next, ids[:keys.K]), next, nil},
		{"more than k of E", of(cur, ids[:keys.K+3]), cur, nil},
		{"k − 1 of E", of(cur, ids[:keys.K-1]), nil, collude.ErrUnderdetermined},
		{"k − 1 of E and 1 of E+1", cat(of(cur, ids[:keys.K-1]), of(next, ids[keys.K-1:keys.K])), nil, collude.ErrEpochs},
		{"k/2 of each", cat(of(cur, ids[:half]), of(next, ids[half:keys.K])), nil, collude.ErrEpochs},
		{"k of E and one of OS1", cat(of(cur, ids[:keys.K]), of(keys.Test(t), ids[:1])), nil, collude.ErrParams},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := collude.Collude(tc.pool...)
			if tc.want != nil {
				if !errors.Is(err, tc.want) || c != nil {
					t.Fatalf("Collude: %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Destroy()
			other := next
			if tc.epoch == next {
				other = cur
			}
			for _, id := range []string{keys.Bank, keys.Alice, "cardholder:enrolled-later@example.org"} {
				forged, err := c.ForgeWith(id, collude.HashSOK())
				if err != nil {
					t.Fatal(err)
				}
				if rowOf(t, forged) != rowOf(t, tc.epoch.Party(t, id)) {
					t.Fatalf("the forged row of %s is not the genuine one of the epoch", id)
				}
				// The other epoch's matrix is another: at id's point there,
				// this matrix gives another row.
				x, err := keygen.IdentityPointIn(keys.System, id, other.Master().Epoch())
				if err != nil {
					t.Fatal(err)
				}
				g, err := collude.ShareOf(other.Party(t, id))
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(c.Matrix().RowAt(&x)) == fmt.Sprint(g.Row) {
					t.Fatalf("the matrix of %s gives %s's row of %s", c.Epoch(), id, other.Master().Epoch())
				}
			}
		})
	}

	// Past Collude's label check: rows of both epochs pooled as shares, each
	// at its own epoch's point or relabelled to E's, are not rows of one
	// matrix.
	shares := func(kc *keys.KeyCenter, ids []string) []collude.Share {
		out := make([]collude.Share, len(ids))
		for i, id := range ids {
			s, err := collude.ShareOf(kc.Party(t, id))
			if err != nil {
				t.Fatal(err)
			}
			out[i] = s
		}
		return out
	}
	relabelled := func(ss []collude.Share, ids []string) []collude.Share {
		out := append([]collude.Share(nil), ss...)
		for i, id := range ids {
			x, err := keygen.IdentityPointIn(keys.System, id, keys.Epoch)
			if err != nil {
				t.Fatal(err)
			}
			out[i].Point = x
		}
		return out
	}
	join := func(a ...[]collude.Share) []collude.Share {
		var out []collude.Share
		for _, s := range a {
			out = append(out, s...)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		shares []collude.Share
		want   error
	}{
		{"k of E (control)", shares(cur, ids[:keys.K]), nil},
		{"k − 1 of E and 1 of E+1", join(shares(cur, ids[:keys.K-1]), shares(next, ids[keys.K-1:keys.K])), collude.ErrInconsistent},
		{"k/2 of each", join(shares(cur, ids[:half]), shares(next, ids[half:keys.K])), collude.ErrInconsistent},
		{"k − 1 of each", join(shares(cur, ids[:keys.K-1]), shares(next, ids[keys.K:2*keys.K-1])), collude.ErrInconsistent},
		{"k of E and 1 of E+1 beyond", join(shares(cur, ids[:keys.K]), shares(next, ids[keys.K:keys.K+1])), collude.ErrInconsistent},
		{"k − 1 of E and 1 of E+1 at its point of E",
			join(shares(cur, ids[:keys.K-1]), relabelled(shares(next, ids[keys.K-1:keys.K]), ids[keys.K-1:keys.K])), collude.ErrInconsistent},
		{"an E+1 row of a member at its point of E",
			join(shares(cur, ids[:keys.K]), relabelled(shares(next, ids[:1]), ids[:1])), collude.ErrInconsistent},
	} {
		t.Run("shares/"+tc.name, func(t *testing.T) {
			m, err := collude.Rebuild(keys.K, tc.shares)
			if tc.want == nil && err != nil {
				t.Fatal(err)
			}
			if tc.want != nil && (!errors.Is(err, tc.want) || m != nil) {
				t.Fatalf("Rebuild: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestOS2SOKChoices checks what each SOK choice is: valid points (no
// choice fails on encoding, so refusals come from the pairing), not the
// genuine key, and, for the attacker's own master r, consistent in itself
// — e(d1, H2(id)) = e(H1(id), d2) — yet refused by the public check
// e(d1, g2) = e(H1(id), P).
func TestOS2SOKChoices(t *testing.T) {
	kc := keys.OS2(t)
	c, err := collude.Collude(partyKeys(t, kc, colluders(keys.K))...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy()
	var r bls12381.Scalar
	if err := r.Random(rand.Reader); err != nil {
		t.Fatal(err)
	}
	h1, h2 := os2.H1(keys.System, keys.Bank, keys.Epoch), os2.H2(keys.System, keys.Bank, keys.Epoch)
	genuine := kc.Party(t, keys.Bank).SOK()
	for _, tc := range []struct {
		name       string
		sok        collude.SOK
		consistent bool // e(d1, H2(id)) = e(H1(id), d2)
	}{
		{"member 0", collude.MemberSOK(0), false},
		{"sum", collude.SumSOK(), false},
		{"hash", collude.HashSOK(), true},
		{"scaled", collude.ScaledSOK(&r), true},
		{"random", collude.RandomSOK(rand.Reader), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.sok(c, keys.Bank)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(b) == fmt.Sprint(genuine) {
				t.Fatal("the choice is the genuine key")
			}
			d1, err := os2.DecodeG1(b[:os2.G1Size])
			if err != nil {
				t.Fatal(err)
			}
			d2, err := os2.DecodeG2(b[os2.G1Size:])
			if err != nil {
				t.Fatal(err)
			}
			e := bls12381.ProdPairFrac([]*bls12381.G1{d1, h1}, []*bls12381.G2{h2, d2}, []int{1, -1})
			if e.IsIdentity() != tc.consistent {
				t.Fatalf("e(d1, H2) = e(H1, d2): %v, want %v", e.IsIdentity(), tc.consistent)
			}
			key, err := c.ForgeWith(keys.Bank, tc.sok)
			if err != nil {
				t.Fatal(err)
			}
			if err := (os2.Suite{}).CheckKey(key, now); !errors.Is(err, os2.ErrSOKKey) {
				t.Fatalf("CheckKey: %v, want ErrSOKKey", err)
			}
		})
	}
	if _, err := collude.MemberSOK(keys.K)(c, keys.Bank); err == nil {
		t.Fatal("MemberSOK of a non-member")
	}
	os1, err := collude.Collude(partyKeys(t, keys.Test(t), colluders(keys.K))...)
	if err != nil {
		t.Fatal(err)
	}
	defer os1.Destroy()
	if _, err := os1.ForgeWith(keys.Bank, collude.HashSOK()); !errors.Is(err, collude.ErrParams) {
		t.Fatalf("an OS1 key with a SOK: %v, want ErrParams", err)
	}
}
