package strictjson

import (
	"errors"
	"strings"
	"testing"
)

// selfDecoder has a wire form unlike its fields, and checks it itself.
type selfDecoder struct{ Value string }

func (d *selfDecoder) UnmarshalJSON(b []byte) error {
	var w struct {
		Wire string `json:"wire"`
	}
	if err := Decode(b, &w, 1024); err != nil {
		return err
	}
	d.Value = w.Wire
	return nil
}

func TestDecode(t *testing.T) {
	type inner struct {
		A int `json:"a"`
	}
	type outer struct {
		X string       `json:"x"`
		I inner        `json:"i"`
		L []inner      `json:"l"`
		S *selfDecoder `json:"s"`
	}
	cases := []struct {
		name string
		in   string
		ok   bool
	}{
		{"plain", `{"x":"1","i":{"a":2},"l":[{"a":1},{"a":1}]}`, true},
		{"duplicate top", `{"x":"1","x":"2"}`, false},
		{"duplicate nested", `{"i":{"a":1,"a":2}}`, false},
		{"duplicate in array item", `{"l":[{"a":1},{"a":1,"a":1}]}`, false},
		{"same key in siblings", `{"l":[{"a":1},{"a":2}],"i":{"a":3}}`, true},
		{"unknown field", `{"y":1}`, false},
		{"case variant key", `{"X":"1"}`, false},
		{"case variant nested", `{"i":{"A":2}}`, false},
		{"case variant in array", `{"l":[{"A":1}]}`, false},
		{"trailing", `{"x":"1"} {}`, false},
		{"wrong type", `{"x":1}`, false},
		{"syntax", `{"x":`, false},
		{"deep", strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), false},
		{"too large", `{"x":"` + strings.Repeat("a", 100) + `"}`, false},
		{"a type that decodes itself", `{"s":{"wire":"w"}}`, true},
		{"its own refusal", `{"s":{"other":"w"}}`, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var v outer
			err := Decode([]byte(c.in), &v, 64)
			if c.ok && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !c.ok && !errors.Is(err, ErrMalformed) {
				t.Fatalf("want ErrMalformed, got %v", err)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"a":{"b":[1,2,{"c":null}]}}`))
	f.Add([]byte(`{"a":1,"a":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		_ = Decode(data, &v, 1<<16)
	})
}
