package order

import (
	"errors"
	"strings"
	"testing"

	"orderseal/suite"
	"orderseal/suite/os1"
	"orderseal/tstest/keys"
)

const testSession = "ses_abcdefghijklmnopqrstuvwxyz"

func TestSessionIDs(t *testing.T) {
	id, err := NewSessionID(nil)
	if err != nil || !ValidSession(id) {
		t.Fatalf("NewSessionID = %q, %v", id, err)
	}
	for _, bad := range []string{"", "ses_", "ord_abcdefghijklmnopqrstuvwxyz", "ses_ABCDEFGHIJKLMNOPQRSTUVWXYZ", "ses_abcdefghijklmnopqrstuvwxy1", testSession + "a", " " + testSession} {
		if ValidSession(bad) {
			t.Errorf("ValidSession(%q) = true", bad)
		}
	}
}

// A consultant's bundle names its session in the merchant and issuer
// sections, and nowhere else.
func TestAssistedSealCarriesSession(t *testing.T) {
	vc := vectorKeys(t)
	ck := vc.Party(t, keys.Carol)
	b, err := Seal(loadOrder(t, "order.json"), suite.NewKeys(ck, 4), threeParties, SealOptions{Now: sealNow, Session: testSession})
	if err != nil {
		t.Fatal(err)
	}
	if b.Cardholder != keys.Carol {
		t.Fatalf("cardholder = %s", b.Cardholder)
	}
	cases := []struct {
		role Role
		key  string
		want string
	}{
		{RoleMerchant, keys.Shop, testSession},
		{RoleIssuer, keys.Bank, testSession},
		{RoleCarrier, keys.Parcel, ""},
	}
	for _, c := range cases {
		s, err := openAt(b, vc.Keys(t, c.key), c.role)
		if err != nil {
			t.Fatalf("%s: %v", c.role, err)
		}
		if s.Session != c.want {
			t.Errorf("%s section session = %q, want %q", c.role, s.Session, c.want)
		}
	}
	// An online order never names one.
	s, err := openAt(sealOrder(t, "order.json", "ord-online"), vc.Keys(t, keys.Bank), RoleIssuer)
	if err != nil || s.Session != "" {
		t.Fatalf("online issuer section: session %q, %v", s.Session, err)
	}
}

func TestAssistedSealRefuses(t *testing.T) {
	vc := vectorKeys(t)
	ck := vc.Party(t, keys.Carol)
	o := loadOrder(t, "order.json")
	cases := []struct {
		name    string
		key     Keyring
		session string
	}{
		{"consultant without a session", suite.NewKeys(ck, 4), ""},
		{"consultant with a malformed session", suite.NewKeys(ck, 4), "ses_short"},
		{"cardholder naming a session", vc.Keys(t, keys.Alice), testSession},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Seal(o, c.key, threeParties, SealOptions{Now: sealNow, Session: c.session}); !errors.Is(err, ErrSealer) {
				t.Fatalf("got %v, want ErrSealer", err)
			}
		})
	}
}

// A section whose session does not fit its sealer is refused on Open, even
// when it authenticates: the bundle code, not the recipient, enforces it.
func TestAssistedSectionBody(t *testing.T) {
	vc := vectorKeys(t)
	ck := vc.Keys(t, keys.Carol)
	salt := strings.Repeat("A", 43)
	cases := []struct {
		name   string
		sealer Keyring
		pt     string
	}{
		{"consultant bundle without session", ck, `{"role":"issuer","salt":"` + salt + `","order_id":"ord-as"}`},
		{"consultant bundle with a malformed session", ck, `{"role":"issuer","salt":"` + salt + `","order_id":"ord-as","session":"ses_x"}`},
		{"cardholder bundle with a session", vc.Keys(t, keys.Alice), `{"role":"issuer","salt":"` + salt + `","order_id":"ord-as","session":"` + testSession + `"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opt := SealOptions{Now: sealNow, OrderID: "ord-as"}
			if c.sealer == Keyring(ck) {
				opt.Session = testSession
			}
			b, err := Seal(loadOrder(t, "order.json"), c.sealer, threeParties, opt)
			if err != nil {
				t.Fatal(err)
			}
			b.Commitments[RoleIssuer] = commit([]byte(c.pt))
			aead, _ := sectionAEAD(os1.Suite{}, c.sealer, keys.Bank, b, RoleIssuer, nil)
			s := b.Sections[RoleIssuer]
			s.CT = aead.Seal(nil, s.Nonce[:], []byte(c.pt), aad(b.HeaderHash(), RoleIssuer))
			b.Sections[RoleIssuer] = s
			if _, err := openAt(b, vc.Keys(t, keys.Bank), RoleIssuer); !errors.Is(err, ErrSectionBody) {
				t.Fatalf("got %v, want ErrSectionBody", err)
			}
		})
	}
}
