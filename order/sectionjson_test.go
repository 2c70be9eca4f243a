package order

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"orderseal/tstest/keys"
)

// fillSection sets the fields of v, recursively: for each pointer, slice,
// string and integer, pick decides whether it is set; strings take str and
// integers n. A field of a kind it does not know fails the test, so a field
// added to Section or Content cannot escape TestSectionJSON unnoticed.
func fillSection(t testing.TB, v reflect.Value, pick func() bool, str string, n int64) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fillSection(t, v.Field(i), pick, str, n)
			}
		}
	case reflect.Pointer:
		if pick() {
			v.Set(reflect.New(v.Type().Elem()))
			fillSection(t, v.Elem(), pick, str, n)
		}
	case reflect.Slice:
		if pick() {
			v.Set(reflect.MakeSlice(v.Type(), 2, 2))
			fillSection(t, v.Index(0), pick, str, n)
			fillSection(t, v.Index(1), pick, str+"2", -n)
		}
	case reflect.String:
		if pick() {
			v.SetString(str)
		}
	case reflect.Int, reflect.Int64:
		if pick() {
			v.SetInt(n)
		}
	default:
		t.Fatalf("fillSection: %s is a %s; teach appendSection and this test about it", v.Type(), v.Kind())
	}
}

func checkSectionJSON(t testing.TB, s *Section) {
	t.Helper()
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendSection(nil, s); !bytes.Equal(got, want) {
		t.Fatalf("appendSection differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
}

// TestSectionJSON: appendSection writes the bytes json.Marshal writes for
// sealed sections, for fully and sparsely set sections, and for strings
// that need escaping.
func TestSectionJSON(t *testing.T) {
	always := func() bool { return true }
	alternate := func() func() bool {
		n := 0
		return func() bool { n++; return n%2 == 0 }
	}
	cases := []struct {
		name string
		fill func(*Section)
	}{
		{"zero", func(*Section) {}},
		{"every field", func(s *Section) { fillSection(t, reflect.ValueOf(s).Elem(), always, "x", 7) }},
		{"every other field", func(s *Section) { fillSection(t, reflect.ValueOf(s).Elem(), alternate(), "y", -3) }},
		{"empty objects", func(s *Section) {
			s.Card, s.Recipient, s.Plan, s.Total, s.ShipTo, s.Grant = &Card{}, &Recipient{}, &Plan{}, &Money{}, &Address{}, &VaultGrant{}
			s.Items = []Item{{}}
		}},
		{"empty items", func(s *Section) { s.Items = []Item{} }},
		{"escapes", func(s *Section) {
			s.GiftNote = "<b>\"hi\" & \\bye\\</b>\b\f\n\r\t\x00\x1f\x7f\u2028\u2029\u00e9\U0001F600\xff\xc3(\xed\xa0\x80"
			s.BuyerName = strings.Repeat("é", 300)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s Section
			c.fill(&s)
			checkSectionJSON(t, &s)
		})
	}
	// The sections Seal writes for the example orders, under every role.
	for _, name := range []string{"order.json", "order_token.json"} {
		o := exampleOrder(t, name)
		for _, r := range Roles {
			t.Run(name+"/"+string(r), func(t *testing.T) {
				s := Section{Role: r, Salt: "c2FsdA", OrderID: "ord_x", Content: DefaultPolicy().Project(o, r)}
				if r == RoleVault {
					s.Grant = &VaultGrant{Token: o.ShipTo.Token, Merchant: keys.Shop, Carrier: keys.Parcel,
						Expires: sealNow.Add(time.Hour).Format(time.RFC3339)}
				}
				if carriesSession(r) {
					s.Session = "ses_aaaaaaaaaaaaaaaaaaaaaaaaaa"
				}
				checkSectionJSON(t, &s)
			})
		}
	}
}

func FuzzSectionJSON(f *testing.F) {
	f.Add([]byte{0xff, 0xff}, "Alice Example", int64(1299))
	f.Add([]byte{0x55}, "<&>\u2028\xff\"\\\n", int64(-1))
	f.Add([]byte{}, "", int64(0))
	f.Fuzz(func(t *testing.T, picks []byte, str string, n int64) {
		i := 0
		pick := func() bool { // the bits of picks, then all set
			if i >= 8*len(picks) {
				return true
			}
			i++
			return picks[(i-1)/8]&(1<<((i-1)%8)) != 0
		}
		var s Section
		fillSection(t, reflect.ValueOf(&s).Elem(), pick, str, n)
		checkSectionJSON(t, &s)
	})
}
