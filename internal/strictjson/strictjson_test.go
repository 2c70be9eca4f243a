package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
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

// refDecode is Decode as it was before check: three passes (a duplicate
// walk over the tokens, a generic decode walked against the type, then
// the decode). FuzzCheckAgainstPasses holds check to its verdicts.
func refDecode(data []byte, v any) error {
	if err := refDuplicates(data); err != nil {
		return err
	}
	var generic any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := refWalk(generic, reflect.TypeOf(v), ""); err != nil {
		return err
	}
	dec = json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data", ErrMalformed)
	}
	return nil
}

func refDuplicates(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		obj    bool
		keys   map[string]struct{}
		expKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if top != nil && top.obj {
					top.expKey = true
				}
				if len(stack) >= MaxDepth {
					return fmt.Errorf("%w: too deep", ErrMalformed)
				}
				stack = append(stack, &frame{obj: t == '{', keys: map[string]struct{}{}, expKey: t == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
		default:
			if top != nil && top.obj {
				if top.expKey {
					k, _ := t.(string)
					if _, dup := top.keys[k]; dup {
						return fmt.Errorf("%w: duplicate key %q", ErrMalformed, k)
					}
					top.keys[k] = struct{}{}
					top.expKey = false
				} else {
					top.expKey = true
				}
			}
		}
	}
}

func refWalk(v any, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || reflect.PointerTo(t).Implements(unmarshaler) {
		return nil
	}
	switch x := v.(type) {
	case map[string]any:
		switch t.Kind() {
		case reflect.Struct:
			fields := structFields(t)
			for k, sub := range x {
				ft, ok := fields[k]
				if !ok {
					return fmt.Errorf("%w: unknown field %q", ErrMalformed, path+k)
				}
				if err := refWalk(sub, ft, path+k+"."); err != nil {
					return err
				}
			}
		case reflect.Map:
			for k, sub := range x {
				if err := refWalk(sub, t.Elem(), path+k+"."); err != nil {
					return err
				}
			}
		}
	case []any:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for _, sub := range x {
				if err := refWalk(sub, t.Elem(), path); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// checkTypes are the shapes FuzzCheckAgainstPasses decodes into: nested
// structs, slices, arrays, maps, pointers, an embedded struct, an
// interface, and a type that decodes itself.
type (
	fzLeaf struct {
		A int    `json:"a"`
		B string `json:"b,omitempty"`
	}
	fzBase struct {
		ID string `json:"id"`
	}
	fzRoot struct {
		fzBase
		Leaf  fzLeaf               `json:"leaf"`
		Ptr   *fzLeaf              `json:"ptr"`
		List  []fzLeaf             `json:"list"`
		Pair  [2]*fzLeaf           `json:"pair"`
		ByKey map[string]fzLeaf    `json:"by_key"`
		Deep  map[string][]*fzLeaf `json:"deep"`
		Any   any                  `json:"any"`
		Self  *selfDecoder         `json:"self"`
		Plain int
		Skip  int `json:"-"`
	}
)

// FuzzCheckAgainstPasses: Decode's one-walk check accepts exactly what
// the three passes it replaced accepted, into a struct, a map and any.
func FuzzCheckAgainstPasses(f *testing.F) {
	for _, s := range []string{`{"id":"x","leaf":{"a":1},"list":[{"a":2,"b":"c"}],"pair":[null,{"a":3}]}`,
		`{"by_key":{"k":{"a":1},"K":{"a":2}},"deep":{"d":[{"a":1},null]}}`, `{"any":{"X":{"Y":1}},"Plain":2}`,
		`{"self":{"wire":"w"}}`, `{"self":{"Wire":"w"}}`, `{"ID":"x"}`, `{"leaf":{"A":1}}`, `{"list":[{"a":1,"a":2}]}`,
		`{"by_key":{"k":{"c":1}}}`, `{"deep":{"d":[{"A":1}]}}`, `{"plain":1}`, `{"Skip":1}`, `{"-":1}`,
		`{"leaf":[{"x":1}]}`, `{"list":{"x":1}}`, `{"id":"a"} {"id":"b","id":"c"}`, `[{"a":1,"a":1}]`, `{"a":{}}`,
		`{"by_key":{"\u006b":{"a":1},"k":{"a":2}}}`, "{\"\xff\":1,\"\xfe\":2}", `{"list":[{"a":1},{"b":"\"}\\"},{"c":2}]}`,
		` { "leaf" : { "a" : 1 , "a" : 2 } } `, `{"deep":{"x":[[{"a":1}]]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, mk := range []func() any{func() any { return new(fzRoot) }, func() any { return new(map[string]fzLeaf) }, func() any { return new(any) }} {
			got, want := Decode(data, mk(), 1<<16), refDecode(data, mk())
			if (got == nil) != (want == nil) {
				t.Fatalf("%T of %q: Decode %v, the three passes %v", mk(), data, got, want)
			}
		}
	})
}

// BenchmarkDecode: Decode of a document of 64 list items and 16 map
// entries into fzRoot, beside the three passes it replaced (refDecode).
func BenchmarkDecode(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"id":"order-1","leaf":{"a":1,"b":"x"},"list":[`)
	for i := range 64 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"a":%d,"b":"item %d"}`, i, i)
	}
	sb.WriteString(`],"by_key":{`)
	for i := range 16 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `"k%d":{"a":%d}`, i, i)
	}
	sb.WriteString(`},"self":{"wire":"w"}}`)
	data := []byte(sb.String())
	var ref time.Duration
	b.ReportAllocs()
	for b.Loop() {
		if err := Decode(data, new(fzRoot), 1<<16); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		t0 := time.Now()
		if err := refDecode(data, new(fzRoot)); err != nil {
			b.Fatal(err)
		}
		ref += time.Since(t0)
		b.StartTimer()
	}
	b.ReportMetric(float64(ref.Nanoseconds())/float64(b.N), "three-passes-ns/op")
}
