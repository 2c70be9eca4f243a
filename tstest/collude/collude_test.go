package collude_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"testing"

	fp "github.com/cloudflare/circl/math/fp25519"

	"orderseal/keygen"
	"orderseal/order"
	"orderseal/suite"
	"orderseal/tstest/collude"
	"orderseal/tstest/keys"
)

// aliceCard is the card number of the test order (../../order/testdata/order.json).
const aliceCard = "4111111111111111"

// colluders are n ordinary cardholders of the test center, none of them a
// party of the tests' orders.
func colluders(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("cardholder:colluder-%02d@example.org", i)
	}
	return ids
}

// partyKeys are the keys of ids from kc, as the key center issued them.
func partyKeys(t testing.TB, kc *keys.KeyCenter, ids []string) []*keygen.PartyKey {
	t.Helper()
	out := make([]*keygen.PartyKey, len(ids))
	for i, id := range ids {
		out[i] = kc.Party(t, id)
	}
	return out
}

// elt is a field element drawn from label, canonical.
func elt(label string) fp.Elt {
	e := fp.Elt(sha256.Sum256([]byte(label)))
	fp.Modp(&e)
	return e
}

func point(t testing.TB, id string) fp.Elt {
	t.Helper()
	x, err := keygen.IdentityPoint(keys.System, id)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func TestInterpolate(t *testing.T) {
	for _, n := range []int{1, 2, 3, 16, 40} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			coef := make([]fp.Elt, n)
			xs, ys := make([]fp.Elt, n), make([]fp.Elt, n)
			for i := range n {
				coef[i] = elt(fmt.Sprint("c", n, i))
				xs[i] = elt(fmt.Sprint("x", n, i))
			}
			for i := range n {
				// ys[i] = Σ coef[a]·xs[i]^a by Horner.
				var y fp.Elt
				for a := n - 1; a >= 0; a-- {
					fp.Mul(&y, &y, &xs[i])
					fp.Add(&y, &y, &coef[a])
				}
				fp.Modp(&y)
				ys[i] = y
			}
			got, err := collude.Interpolate(xs, ys)
			if err != nil {
				t.Fatal(err)
			}
			for a := range coef {
				if got[a] != coef[a] {
					t.Fatalf("coefficient %d: got %v, want %v", a, got[a], coef[a])
				}
			}
			if n > 1 {
				xs[n-1] = xs[0]
				if _, err := collude.Interpolate(xs, ys); !errors.Is(err, collude.ErrUnderdetermined) {
					t.Fatalf("two equal points: %v, want ErrUnderdetermined", err)
				}
			}
		})
	}
}

// TestCollude pools keys of the test center (K = 16) and forges the keys
// of identities none of the pool holds, checked against the center's own.
func TestCollude(t *testing.T) {
	kc := keys.Test(t)
	mixed := []string{keys.Shop, keys.Parcel, keys.Vault, keys.Carol, keys.CallCenter, keys.OtherShop, keys.OtherCarrier,
		"issuer:other-bank.example"}
	mixed = append(mixed, colluders(keys.K-len(mixed))...)
	k := func(ids ...string) []*keygen.PartyKey { return partyKeys(t, kc, ids) }
	tests := []struct {
		name    string
		pool    []*keygen.PartyKey
		wantErr error
	}{
		{"k cardholders", k(colluders(keys.K)...), nil},
		{"k of mixed roles", k(mixed...), nil},
		{"more than k", k(colluders(keys.K + 5)...), nil},
		{"k − 1 cardholders", k(colluders(keys.K - 1)...), collude.ErrUnderdetermined},
		{"k with one twice", append(k(colluders(keys.K-1)...), kc.Party(t, colluders(1)[0])), collude.ErrUnderdetermined},
		{"none", nil, collude.ErrUnderdetermined},
		{"an impostor's key among k", append(k(colluders(keys.K-1)...), keys.Rogue(t).Party(t, keys.Bob)), collude.ErrInconsistent},
		{"an impostor's key beyond k", append(k(colluders(keys.K)...), keys.Rogue(t).Party(t, keys.Bob)), collude.ErrInconsistent},
		{"two keys of one identity", append(k(colluders(keys.K)...), keys.Rogue(t).Party(t, colluders(4)[3])), collude.ErrInconsistent},
		{"a key of another system", append(k(colluders(keys.K-1)...), keys.Foreign(t).Party(t, keys.Bob)), collude.ErrParams},
	}
	// Victims: parties outside every pool, the pool's own members, and an
	// identity the center issues only after the attack, to compare.
	victims := []string{keys.Bank, keys.Alice, keys.Bob, keys.Shop, colluders(1)[0], "cardholder:enrolled-later@example.org"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := collude.Collude(tc.pool...)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Collude: %v, want %v", err, tc.wantErr)
				}
				if c != nil {
					t.Fatal("a coalition came with the error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Destroy()
			m := c.Matrix()
			for a := range m.K() {
				for b := range a {
					if m.At(a, b) != m.At(b, a) {
						t.Fatalf("D[%d][%d] ≠ D[%d][%d]", a, b, b, a)
					}
				}
			}
			for _, id := range victims {
				forged, err := c.Forge(id)
				if err != nil {
					t.Fatalf("forge %s: %v", id, err)
				}
				if genuine := kc.Party(t, id); !forged.Equal(genuine) {
					t.Errorf("the forged key of %s is not the one the center issues", id)
				}
			}
		})
	}
}

// TestRebuildShares runs the algebra without keygen's keys: rows of a
// random symmetric matrix at arbitrary points, as a suite whose identity
// points are computed otherwise (one epoch of OS2) would give them.
func TestRebuildShares(t *testing.T) {
	const k = 9
	d := make([]fp.Elt, k*k)
	for a := range k {
		for b := a; b < k; b++ {
			d[a*k+b] = elt(fmt.Sprint("d", a, b))
			d[b*k+a] = d[a*k+b]
		}
	}
	row := func(x fp.Elt) []fp.Elt {
		r := make([]fp.Elt, k)
		var v, t fp.Elt
		for a := range k {
			fp.SetOne(&v)
			for b := range k {
				fp.Mul(&t, &d[a*k+b], &v)
				fp.Add(&r[a], &r[a], &t)
				fp.Mul(&v, &v, &x)
			}
			fp.Modp(&r[a])
		}
		return r
	}
	shares := make([]collude.Share, k)
	for i := range shares {
		x := elt(fmt.Sprint("epoch-point", i))
		shares[i] = collude.Share{Point: x, Row: row(x)}
	}
	m, err := collude.Rebuild(k, shares)
	if err != nil {
		t.Fatal(err)
	}
	for a := range k {
		for b := range k {
			if m.At(a, b) != d[a*k+b] {
				t.Fatalf("D[%d][%d] not rebuilt", a, b)
			}
		}
	}
	y := elt("someone else")
	if got, want := m.RowAt(&y), row(y); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatal("the row of a non-member is not D·v(y)")
	}
	if _, err := collude.Rebuild(k, shares[:k-1]); !errors.Is(err, collude.ErrUnderdetermined) {
		t.Fatalf("k − 1 shares: %v, want ErrUnderdetermined", err)
	}
	// A row read at the wrong point (another suite's hash) is caught.
	bad := append([]collude.Share(nil), shares...)
	bad[2].Point = elt("not the point of this row")
	if _, err := collude.Rebuild(k, bad); !errors.Is(err, collude.ErrInconsistent) {
		t.Fatalf("a row at the wrong point: %v, want ErrInconsistent", err)
	}
	// So is one altered element.
	bad = append([]collude.Share(nil), shares...)
	bad[5].Row = append([]fp.Elt(nil), shares[5].Row...)
	fp.Add(&bad[5].Row[3], &bad[5].Row[3], &fp.Elt{1})
	if _, err := collude.Rebuild(k, bad); !errors.Is(err, collude.ErrInconsistent) {
		t.Fatalf("an altered row: %v, want ErrInconsistent", err)
	}
}

// testOrder is the test order of package order, with alice's card.
func testOrder(t testing.TB) *order.Order {
	t.Helper()
	data, err := os.ReadFile("../../order/testdata/order.json")
	if err != nil {
		t.Fatal(err)
	}
	o, err := order.ParseOrder(data)
	if err != nil {
		t.Fatal(err)
	}
	if o.Card.Number != aliceCard {
		t.Fatalf("the test order's card is %s, want %s", o.Card.Number, aliceCard)
	}
	return o
}

var parties = order.Parties{Merchant: keys.Shop, Issuer: keys.Bank, Carrier: keys.Parcel}

// seal seals o for parties as the holder of key.
func seal(t testing.TB, o *order.Order, key *keygen.PartyKey) *order.Bundle {
	t.Helper()
	b, err := order.Seal(o, suite.NewKeys(key, 4), parties, order.SealOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func open(b *order.Bundle, key *keygen.PartyKey, role order.Role) (*order.Section, error) {
	return order.Open(b, suite.NewKeys(key, 4), role, order.OpenOptions{})
}

// TestOpenVictimSections: k ordinary cardholders forge the issuer's,
// merchant's and carrier's keys and read every section alice sealed.
func TestOpenVictimSections(t *testing.T) {
	kc := keys.Test(t)
	victim := seal(t, testOrder(t), kc.Party(t, keys.Alice))

	c, err := collude.Collude(partyKeys(t, kc, colluders(keys.K))...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy()
	for _, tc := range []struct {
		role  order.Role
		party string
		check func(*order.Section) error
	}{
		{order.RoleIssuer, keys.Bank, func(s *order.Section) error {
			if s.Card == nil || s.Card.Number != aliceCard || s.Card.Expiry != "2031-12" {
				return fmt.Errorf("card %+v, want alice's", s.Card)
			}
			return nil
		}},
		{order.RoleMerchant, keys.Shop, func(s *order.Section) error {
			if s.BuyerEmail != "alice@example.org" || len(s.Items) != 2 {
				return fmt.Errorf("buyer %q, %d items", s.BuyerEmail, len(s.Items))
			}
			return nil
		}},
		{order.RoleCarrier, keys.Parcel, func(s *order.Section) error {
			if s.ShipTo == nil || s.ShipTo.Line1 != "Musterstraße 12" {
				return fmt.Errorf("ship-to %+v", s.ShipTo)
			}
			return nil
		}},
	} {
		t.Run(string(tc.role), func(t *testing.T) {
			// An impostor's key of the party (right parameters, no matrix)
			// does not open it: success below is the forgery's doing.
			if _, err := open(victim, keys.Rogue(t).Party(t, tc.party), tc.role); !errors.Is(err, order.ErrAuth) {
				t.Fatalf("an impostor's key: %v, want ErrAuth", err)
			}
			forged, err := c.Forge(tc.party)
			if err != nil {
				t.Fatal(err)
			}
			s, err := open(victim, forged, tc.role)
			if err != nil {
				t.Fatalf("the forged %s key does not open alice's %s section: %v", tc.party, tc.role, err)
			}
			if err := tc.check(s); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTooFewColluders: k − 1 cardholders cannot rebuild the matrix, and
// their best guess at the issuer's row — one symmetric matrix agreeing
// with everything they hold, for each value of its free element — opens
// alice's section only for the one true value, which they cannot tell
// from the p − 1 others.
func TestTooFewColluders(t *testing.T) {
	kc := keys.Test(t)
	victim := seal(t, testOrder(t), kc.Party(t, keys.Alice))
	pool := partyKeys(t, kc, colluders(keys.K-1))
	if c, err := collude.Collude(pool...); !errors.Is(err, collude.ErrUnderdetermined) || c != nil {
		t.Fatalf("Collude with k − 1 keys: %v, want ErrUnderdetermined", err)
	}
	shares := make([]collude.Share, len(pool))
	for i, key := range pool {
		s, err := collude.ShareOf(key)
		if err != nil {
			t.Fatal(err)
		}
		shares[i] = s
	}
	bank := point(t, keys.Bank)
	// The true value, read from the issuer's genuine key: the oracle the
	// coalition lacks, used only to show the truth is one of the guesses.
	genuine, err := collude.ShareOf(kc.Party(t, keys.Bank))
	if err != nil {
		t.Fatal(err)
	}
	truth := genuine.Row[keys.K-1]
	var one, minusOne fp.Elt
	fp.SetOne(&one)
	fp.Neg(&minusOne, &one)
	fp.Modp(&minusOne)
	guesses := []struct {
		name  string
		t     fp.Elt
		right bool
	}{
		{"zero (lowest degree)", fp.Elt{}, false},
		{"one", one, false},
		{"p − 1", minusOne, false},
		{"random a", elt("guess a"), false},
		{"random b", elt("guess b"), false},
		{"truth", truth, true},
	}
	for _, g := range guesses {
		t.Run(g.name, func(t *testing.T) {
			row, err := collude.Complete(keys.K, shares, &bank, &g.t)
			if err != nil {
				t.Fatal(err)
			}
			// The guess is a whole matrix consistent with the coalition's rows.
			m, err := collude.Rebuild(keys.K, append(append([]collude.Share(nil), shares...), collude.Share{Point: bank, Row: row}))
			if err != nil {
				t.Fatalf("the completed shares do not rebuild: %v", err)
			}
			for i := range shares {
				if fmt.Sprint(m.RowAt(&shares[i].Point)) != fmt.Sprint(shares[i].Row) {
					t.Fatalf("the guessed matrix disagrees with colluder %d's row", i)
				}
			}
			key, err := keygen.NewPartyKey(kc.Params(), keys.Bank, row)
			if err != nil {
				t.Fatal(err)
			}
			_, err = open(victim, key, order.RoleIssuer)
			switch {
			case g.right && err != nil:
				t.Fatalf("the true completion does not open: %v", err)
			case !g.right && !errors.Is(err, order.ErrAuth):
				t.Fatalf("a guessed issuer key: %v, want ErrAuth", err)
			}
			if g.right != key.Equal(kc.Party(t, keys.Bank)) {
				t.Fatalf("guess %s: equal to the genuine key is %v", g.name, !g.right)
			}
		})
	}
	if _, err := collude.Complete(keys.K, shares[:keys.K-2], &bank, &one); err == nil {
		t.Fatal("Complete took k − 2 shares")
	}
}

// TestImpersonateCardholder: the coalition reads alice's card from a
// bundle she sealed, then seals a new order as alice with her card; the
// genuine issuer and merchant open it as hers — the issuer would approve
// it on her card, which is enrolled to her identity.
func TestImpersonateCardholder(t *testing.T) {
	kc := keys.Test(t)
	c, err := collude.Collude(partyKeys(t, kc, colluders(keys.K))...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy()

	forgedBank, err := c.Forge(keys.Bank)
	if err != nil {
		t.Fatal(err)
	}
	sec, err := open(seal(t, testOrder(t), kc.Party(t, keys.Alice)), forgedBank, order.RoleIssuer)
	if err != nil {
		t.Fatal(err)
	}
	stolen := *sec.Card

	forgedAlice, err := c.Forge(keys.Alice)
	if err != nil {
		t.Fatal(err)
	}
	o := &order.Order{
		Buyer: order.Buyer{Name: "Alice Example", Phone: "+4915112345678", Email: "alice@example.org"},
		Card:  order.Card{Number: stolen.Number, Expiry: stolen.Expiry},
		Items: []order.Item{{SKU: "CAMERA-X100", Name: "Compact camera X100", Qty: 1, UnitPrice: 129900}},
		Total: 129900, Currency: "EUR", Plan: order.Plan{Installments: 1},
		ShipTo:    order.ShipTo{Address: &order.Address{Name: "Mallory Drop", Line1: "Elsewhere 1", City: "Hamburg", PostalCode: "20095", Country: "DE"}},
		Recipient: order.Recipient{Name: "Mallory Drop", Phone: "+4917600000000"},
	}

	// Control: an impostor's key for alice (no matrix) is refused.
	if _, err := open(seal(t, o, keys.Rogue(t).Party(t, keys.Alice)), kc.Party(t, keys.Bank), order.RoleIssuer); !errors.Is(err, order.ErrAuth) {
		t.Fatalf("the genuine issuer on an impostor's bundle: %v, want ErrAuth", err)
	}

	forged := seal(t, o, forgedAlice)
	if forged.Cardholder != keys.Alice {
		t.Fatalf("sealed as %s", forged.Cardholder)
	}
	is, err := open(forged, kc.Party(t, keys.Bank), order.RoleIssuer)
	if err != nil {
		t.Fatalf("the genuine issuer refuses the forged bundle: %v", err)
	}
	if is.Card == nil || is.Card.Number != aliceCard || is.Total == nil || is.Total.Amount != 129900 {
		t.Fatalf("issuer section %+v", is)
	}
	if _, err := open(forged, kc.Party(t, keys.Shop), order.RoleMerchant); err != nil {
		t.Fatalf("the genuine merchant refuses the forged bundle: %v", err)
	}
}

// BenchmarkRebuild1024 rebuilds the matrix of a key center of the default
// k (keygen.DefaultK = 1024) from 1024 rows: what breaking a deployment of
// OS1 costs a coalition of ordinary cardholders.
func BenchmarkRebuild1024(b *testing.B) {
	const k = keygen.DefaultK
	kc := keys.Center(b, [32]byte{0x15}, keys.System, k)
	ids := colluders(k)
	pool, err := kc.Master().IssueMany(ids)
	if err != nil {
		b.Fatal(err)
	}
	shares := make([]collude.Share, k)
	for i, key := range pool {
		if shares[i], err = collude.ShareOf(key); err != nil {
			b.Fatal(err)
		}
	}
	victim, err := kc.Master().Issue(keys.Bank)
	if err != nil {
		b.Fatal(err)
	}
	bank := point(b, keys.Bank)
	b.ResetTimer()
	for b.Loop() {
		m, err := collude.Rebuild(k, shares)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		forged, err := keygen.NewPartyKey(kc.Params(), keys.Bank, m.RowAt(&bank))
		if err != nil || !forged.Equal(victim) {
			b.Fatalf("the forged issuer key is not the genuine one (%v)", err)
		}
		b.StartTimer()
	}
}
