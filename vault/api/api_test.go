package api

import (
	"bytes"
	"errors"
	"testing"

	"orderseal/tstest/keys"
)

func TestNormalize(t *testing.T) {
	cases := []struct {
		name, typ, in, want string
		ok                  bool
	}{
		{"address folded", TypeAddress, `{"name":" Bob  Beispiel ","line1":"Musterstraße   12","city":"Berlin","postal_code":"10115 ","country":"DE"}`,
			`{"name":"Bob Beispiel","line1":"Musterstraße 12","city":"Berlin","postal_code":"10115","country":"DE"}`, true},
		{"address lower country", TypeAddress, `{"name":"B","line1":"L","city":"C","postal_code":"10115","country":"de"}`, `{"name":"B","line1":"L","city":"C","postal_code":"10115","country":"DE"}`, true},
		{"address generic country without postcode", TypeAddress, `{"name":"B","line1":"L","city":"C","country":"ie"}`, `{"name":"B","line1":"L","city":"C","country":"IE"}`, true},
		{"address NFD Hangul", TypeAddress, "{\"name\":\"\u1100\u1175\u11b7\",\"line1\":\"L 1\",\"city\":\"강남구\",\"region\":\"서울\",\"postal_code\":\"06236\",\"country\":\"KR\"}",
			`{"name":"김","line1":"L 1","city":"강남구","region":"서울특별시","postal_code":"06236","country":"KR"}`, true},
		{"address KR postcode of 4 digits", TypeAddress, `{"name":"B","line1":"L","city":"강남구","region":"서울","postal_code":"0623","country":"KR"}`, "", false},
		{"address bad country", TypeAddress, `{"name":"B","line1":"L","city":"C","country":"XX"}`, "", false},
		{"address unknown field", TypeAddress, `{"name":"B","line1":"L","city":"C","country":"DE","x":1}`, "", false},
		{"address no line1", TypeAddress, `{"name":"B","city":"C","country":"DE"}`, "", false},
		{"phone spaced", TypePhone, "+49 151 1234-5678", "+4915112345678", true},
		{"phone no plus", TypePhone, "015112345678", "", false},
		{"phone not a number", TypePhone, "+49 1", "", false},
		{"email case", TypeEmail, " Alice@Example.ORG ", "alice@example.org", true},
		{"email no at", TypeEmail, "alice.example.org", "", false},
		{"national id", TypeNationalID, "l01x 00t47", "L01X00T47", true},
		{"national id short", TypeNationalID, "ab", "", false},
		{"unknown type", "xyz", "v", "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Normalize(c.typ, []byte(c.in))
			if c.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if !c.ok {
				if !errors.Is(err, ErrValue) {
					t.Fatalf("want ErrValue, got %v", err)
				}
				return
			}
			if string(got) != c.want {
				t.Fatalf("got %s want %s", got, c.want)
			}
		})
	}
}

func TestSealRoundTrips(t *testing.T) {
	alice, vault, carrier := keys.Keys(t, keys.Alice), keys.Keys(t, keys.Vault), keys.Keys(t, keys.Parcel)
	value := []byte(`{"line1":"secret"}`)

	req := &RegisterRequest{Type: TypeAddress, Label: "home"}
	if err := SealRegister(alice, keys.Vault, req, value); err != nil {
		t.Fatal(err)
	}
	if got, err := OpenRegister(vault, keys.Alice, req); err != nil || !bytes.Equal(got, value) {
		t.Fatalf("register round trip: %q %v", got, err)
	}
	for name, mutate := range map[string]func(r *RegisterRequest){
		"label":     func(r *RegisterRequest) { r.Label = "work" },
		"type":      func(r *RegisterRequest) { r.Type = TypePhone },
		"shareable": func(r *RegisterRequest) { r.Shareable = true },
		"nonce": func(r *RegisterRequest) { // a different first character, whatever the random nonce starts with
			r.Value.Nonce = map[bool]string{true: "B", false: "A"}[r.Value.Nonce[0] == 'A'] + r.Value.Nonce[1:]
		},
	} {
		r := *req
		mutate(&r)
		if _, err := OpenRegister(vault, keys.Alice, &r); !errors.Is(err, ErrSeal) {
			t.Errorf("%s altered: %v", name, err)
		}
	}
	if _, err := OpenRegister(vault, "cardholder:bob@example.org", req); !errors.Is(err, ErrSeal) {
		t.Errorf("other owner: %v", err)
	}

	s, err := SealReveal(vault, keys.Parcel, "tok_x_adr", "ord-1", value)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := OpenReveal(carrier, keys.Vault, "tok_x_adr", "ord-1", s); err != nil || !bytes.Equal(got, value) {
		t.Fatalf("reveal round trip: %q %v", got, err)
	}
	if _, err := OpenReveal(carrier, keys.Vault, "tok_x_adr", "ord-2", s); !errors.Is(err, ErrSeal) {
		t.Errorf("other order: %v", err)
	}
	if _, err := OpenReveal(alice, keys.Vault, "tok_x_adr", "ord-1", s); !errors.Is(err, ErrSeal) {
		t.Errorf("other reader: %v", err)
	}
}

func FuzzNormalize(f *testing.F) {
	seeds := []struct{ typ, v string }{
		{TypeAddress, `{"name":"B","line1":"L","city":"C","country":"DE"}`},
		{TypePhone, "+4915112345678"},
		{TypeEmail, "a@b.example"},
		{TypeNationalID, "L01X00T47"},
	}
	for _, s := range seeds {
		f.Add(s.typ, []byte(s.v))
	}
	f.Fuzz(func(t *testing.T, typ string, raw []byte) {
		n, err := Normalize(typ, raw)
		if err != nil {
			return
		}
		again, err := Normalize(typ, n)
		if err != nil || !bytes.Equal(again, n) {
			t.Fatalf("normal form is not stable: %q → %q (%v)", n, again, err)
		}
	})
}
