package address

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"orderseal/order"
)

func readVectors(t testing.TB, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

type normalizeCase struct {
	Name string         `json:"name"`
	In   order.Address  `json:"in"`
	Want *order.Address `json:"want"`
	Code string         `json:"code"`
}

func normalizeCases(t testing.TB) []normalizeCase {
	var v struct{ Cases []normalizeCase }
	readVectors(t, "normalize.json", &v)
	if len(v.Cases) < 20 {
		t.Fatalf("only %d normalize vectors", len(v.Cases))
	}
	return v.Cases
}

func TestNormalize(t *testing.T) {
	for _, c := range normalizeCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			got, err := Normalize(c.In)
			if c.Code != "" {
				if CodeOf(err) != c.Code {
					t.Fatalf("err %v (code %q), want code %q", err, CodeOf(err), c.Code)
				}
				if !errors.Is(err, ErrInvalid) || !errors.Is(err, order.ErrInvalidOrder) {
					t.Errorf("%v matches neither ErrInvalid nor order.ErrInvalidOrder", err)
				}
				if got != (order.Address{}) {
					t.Errorf("refused address came back as %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != *c.Want {
				t.Fatalf("got  %+v\nwant %+v", got, *c.Want)
			}
			again, err := Normalize(got)
			if err != nil || again != got {
				t.Fatalf("not idempotent: %+v, %v", again, err)
			}
		})
	}
}

// TestErrorsHoldNoInput: a refusal's text names fields and rules, never
// what was typed (it ends up in logs and problem+json answers).
func TestErrorsHoldNoInput(t *testing.T) {
	for _, c := range normalizeCases(t) {
		if c.Code == "" {
			continue
		}
		_, err := Normalize(c.In)
		for _, v := range []string{c.In.Name, c.In.Line1, c.In.City, c.In.PostalCode} {
			if len(v) > 3 && contains(err.Error(), v) {
				t.Errorf("%s: error %q repeats the input %q", c.Name, err, v)
			}
		}
	}
}

func contains(s, sub string) bool { return len(sub) > 0 && len(s) >= len(sub) && indexOf(s, sub) >= 0 }

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestFoldKey(t *testing.T) {
	a := order.Address{Name: "Erika Mustermann", Line1: "Hauptstraße 5", City: "Berlin", PostalCode: "10115", Country: "DE"}
	same := []order.Address{
		{Name: "ERIKA MUSTERMANN", Line1: "HAUPTSTRASSE 5", City: "BERLIN", PostalCode: "10115", Country: "DE"},
		{Name: "erika  mustermann", Line1: " hauptstraße 5", City: "berlin", PostalCode: "10115", Country: "DE"},
		{Name: "Ｅｒｉｋａ Mustermann", Line1: "Hauptstraße ５", City: "Berlin", PostalCode: "１０１１５", Country: "DE"},
	}
	for _, b := range same {
		if string(FoldKey(a)) != string(FoldKey(b)) {
			t.Errorf("%+v and %+v fold apart:\n%s\n%s", a, b, FoldKey(a), FoldKey(b))
		}
	}
	other := a
	other.Line1 = "Hauptstraße 6"
	if string(FoldKey(a)) == string(FoldKey(other)) {
		t.Error("different houses fold together")
	}
	// NFD and NFC Hangul are the same place.
	var nfd, nfc order.Address
	for _, c := range normalizeCases(t) {
		if c.Name == "NFD Hangul composes" {
			nfd, nfc = c.In, *c.Want
		}
	}
	if nfd.Name == nfc.Name {
		t.Fatal("the NFD vector is not in NFD")
	}
	if string(FoldKey(nfd)) != string(FoldKey(nfc)) {
		t.Error("NFD and NFC Hangul fold apart")
	}
}

func TestLayout(t *testing.T) {
	var v struct {
		Cases []struct {
			Name, Origin, Recipient string
			Address                 order.Address
			Lines                   []string
			NameLine                int `json:"name_line"`
		}
	}
	readVectors(t, "layout.json", &v)
	if len(v.Cases) < 8 {
		t.Fatalf("only %d layout vectors", len(v.Cases))
	}
	for _, c := range v.Cases {
		t.Run(c.Name, func(t *testing.T) {
			got := Layout(c.Address, c.Recipient, c.Origin)
			if !reflect.DeepEqual(got.Lines, c.Lines) || got.Name != c.NameLine {
				t.Fatalf("got  %q (name %d)\nwant %q (name %d)", got.Lines, got.Name, c.Lines, c.NameLine)
			}
		})
	}
}

func TestPhone(t *testing.T) {
	var v struct {
		Cases []struct{ Raw, Region, Want, Code string }
	}
	readVectors(t, "phone.json", &v)
	if len(v.Cases) < 10 {
		t.Fatalf("only %d phone vectors", len(v.Cases))
	}
	for _, c := range v.Cases {
		got, err := Phone(c.Raw, c.Region)
		if c.Code != "" {
			if CodeOf(err) != c.Code || got != "" {
				t.Errorf("Phone(%q, %q) = %q, %v; want code %s", c.Raw, c.Region, got, err, c.Code)
			}
			continue
		}
		if err != nil || got != c.Want {
			t.Errorf("Phone(%q, %q) = %q, %v; want %s", c.Raw, c.Region, got, err, c.Want)
		}
	}
	if r := PhoneRegion("+821012345678"); r != "KR" {
		t.Errorf("PhoneRegion = %q, want KR", r)
	}
}

func TestOrderPhones(t *testing.T) {
	o := &order.Order{}
	o.Buyer.Phone, o.Recipient.Phone = "+82 10-1234-5678", "010-9876-5432"
	o.ShipTo.Address = &order.Address{Country: "KR"}
	if whose, err := OrderPhones(o); err != nil || o.Buyer.Phone != "+821012345678" || o.Recipient.Phone != "+821098765432" {
		t.Fatalf("OrderPhones = %q, %v; phones %q, %q", whose, err, o.Buyer.Phone, o.Recipient.Phone)
	}
	// The buyer's number has no destination to be national in.
	o.Buyer.Phone, o.Recipient.Phone = "010-1234-5678", "010-9876-5432"
	if whose, err := OrderPhones(o); whose != "buyer" || CodeOf(err) != CodePhoneInvalid || o.Recipient.Phone != "010-9876-5432" {
		t.Errorf("national buyer phone: OrderPhones = %q, %v; recipient %q", whose, err, o.Recipient.Phone)
	}
	// Nor has the recipient's, when the parcel goes to a token.
	o.Buyer.Phone, o.ShipTo.Address = "+821012345678", nil
	if whose, err := OrderPhones(o); whose != "recipient" || CodeOf(err) != CodePhoneInvalid {
		t.Errorf("national recipient phone to a token: OrderPhones = %q, %v", whose, err)
	}
}
