// Package strictjson decodes JSON the way orderseal's wire formats require:
// one value, no unknown fields, no duplicate object keys, bounded size.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// ErrMalformed is wrapped by every error this package returns.
var ErrMalformed = errors.New("malformed json")

// MaxDepth bounds nesting so hostile input cannot exhaust the stack.
const MaxDepth = 32

// Decode parses data into v. It refuses input longer than max bytes, unknown
// fields, duplicate keys at any depth, excessive nesting and trailing data.
// One walk over the tokens checks the keys (duplicates, and the exact
// spelling of v's fields) before the decoder fills v.
func Decode(data []byte, v any, max int) error {
	if max > 0 && len(data) > max {
		return fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrMalformed, len(data), max)
	}
	if err := check(data, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s", ErrMalformed, describe(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data after the value", ErrMalformed)
	}
	return nil
}

// describe keeps decoder errors short and free of input bytes.
func describe(err error) string {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		if ute.Field != "" {
			return fmt.Sprintf("field %q has the wrong type", ute.Field)
		}
		return "value has the wrong type"
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	return err.Error()
}

// CheckDuplicates walks data token by token and fails on a repeated key
// within one object or nesting deeper than MaxDepth.
func CheckDuplicates(data []byte) error { return check(data, nil) }

// frame is one open object or array of check's walk.
type frame struct {
	obj    bool
	expKey bool     // an object's next string token is a key
	keys   []string // an object's keys so far (objects are small: a scan beats a map)
	// typ is the Go type the container decodes into, when its keys are
	// checked: a struct (fields are its exact JSON names) or a map, for an
	// object; a slice or array, for an array. Nil: nothing below is checked.
	typ    reflect.Type
	fields map[string]reflect.Type
	path   string       // the object's place, "a.b." (arrays add nothing)
	next   reflect.Type // an object's: the type of the value after its last key
}

// check walks data token by token. It fails on a repeated key within one
// object, on nesting deeper than MaxDepth, and, when t is the type the
// first value decodes into, on an object key that is not the exact JSON
// name of a field of the struct it fills: encoding/json would accept "V"
// for "v", and here each value has one spelling on the wire. A type that
// decodes itself (json.Unmarshaler) is trusted to be as strict as it needs
// (keygen.DirectoryEntry) and not looked into.
//
// A document json.Valid accepts is walked by scan, over its bytes; any
// other by walkTokens, which finds the same problems and says where the
// syntax breaks.
func check(data []byte, t reflect.Type) error {
	if json.Valid(data) {
		sc := scanner{data: data}
		return sc.value(checked(t), 0)
	}
	return walkTokens(data, t)
}

// walkTokens is check over encoding/json's tokens.
func walkTokens(data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var stack []frame
	root := checked(t)
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %s", ErrMalformed, describe(err))
		}
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		if top != nil && top.obj && top.expKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			k, _ := tok.(string)
			if slices.Contains(top.keys, k) {
				return fmt.Errorf("%w: duplicate key %q", ErrMalformed, k)
			}
			top.keys = append(top.keys, k)
			top.expKey = false
			switch {
			case top.fields != nil:
				ft, ok := top.fields[k]
				if !ok {
					return fmt.Errorf("%w: unknown field %q", ErrMalformed, top.path+k)
				}
				top.next = checked(ft)
			case top.typ != nil: // a map
				top.next = checked(top.typ.Elem())
			}
			continue
		}
		// A value: its type, where it is checked, and its path.
		var vt reflect.Type
		path := ""
		switch {
		case top == nil:
			vt, root = root, nil // later values are trailing data, refused by Decode
		case top.obj:
			vt, path = top.next, top.path+top.keys[len(top.keys)-1]+"."
			top.expKey, top.next = true, nil
		default:
			if top.typ != nil {
				vt = checked(top.typ.Elem())
			}
			path = top.path
		}
		d, ok := tok.(json.Delim)
		if !ok {
			continue
		}
		if d == ']' {
			stack = stack[:len(stack)-1]
			continue
		}
		if len(stack) >= MaxDepth {
			return fmt.Errorf("%w: nested deeper than %d", ErrMalformed, MaxDepth)
		}
		f := frame{obj: d == '{', expKey: d == '{', path: path}
		if vt != nil {
			switch k := vt.Kind(); {
			case f.obj && k == reflect.Struct:
				f.typ, f.fields = vt, fieldTypes(vt)
			case f.obj && k == reflect.Map, !f.obj && (k == reflect.Slice || k == reflect.Array):
				f.typ = vt
			}
		}
		stack = append(stack, f)
	}
}

// scanner is check's walk over a document json.Valid accepted: one value,
// well formed, so it looks only at what it needs: the keys, and where each
// value starts and ends.
type scanner struct {
	data []byte
	i    int
	keys [][]byte // the keys of every open object, innermost last
	path [][]byte // the keys leading to the value being walked, for errors
}

func (s *scanner) ws() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value walks the value at s.i, decoding into t (nil: unchecked), inside
// depth open containers.
func (s *scanner) value(t reflect.Type, depth int) error {
	s.ws()
	switch s.data[s.i] {
	case '{':
		return s.object(t, depth)
	case '[':
		if depth >= MaxDepth {
			return fmt.Errorf("%w: nested deeper than %d", ErrMalformed, MaxDepth)
		}
		s.i++
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = checked(t.Elem())
		}
		for {
			s.ws()
			if s.data[s.i] == ']' {
				s.i++
				return nil
			}
			if err := s.value(elem, depth+1); err != nil {
				return err
			}
			s.ws()
			if s.data[s.i] == ',' {
				s.i++
			}
		}
	case '"':
		s.str()
	default: // a number, true, false or null
		for s.i < len(s.data) {
			switch s.data[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return nil
			}
			s.i++
		}
	}
	return nil
}

func (s *scanner) object(t reflect.Type, depth int) error {
	if depth >= MaxDepth {
		return fmt.Errorf("%w: nested deeper than %d", ErrMalformed, MaxDepth)
	}
	s.i++
	var fields map[string]reflect.Type
	isMap := false
	if t != nil {
		switch t.Kind() {
		case reflect.Struct:
			fields = fieldTypes(t)
		case reflect.Map:
			isMap = true
		}
	}
	open := len(s.keys)
	defer func() { s.keys = s.keys[:open] }()
	for {
		s.ws()
		if s.data[s.i] == '}' {
			s.i++
			return nil
		}
		if s.data[s.i] == ',' {
			s.i++
			s.ws()
		}
		k := s.key()
		for _, prev := range s.keys[open:] {
			if bytes.Equal(prev, k) {
				return fmt.Errorf("%w: duplicate key %q", ErrMalformed, k)
			}
		}
		s.keys = append(s.keys, k)
		var next reflect.Type
		switch {
		case fields != nil:
			ft, ok := fields[string(k)]
			if !ok {
				return fmt.Errorf("%w: unknown field %q", ErrMalformed, s.place(k))
			}
			next = checked(ft)
		case isMap:
			next = checked(t.Elem())
		}
		s.ws()
		s.i++ // the colon
		s.path = append(s.path, k)
		err := s.value(next, depth+1)
		s.path = s.path[:len(s.path)-1]
		if err != nil {
			return err
		}
	}
}

// str skips the string at s.i and answers its raw contents.
func (s *scanner) str() (raw []byte, escaped bool) {
	s.i++
	start := s.i
	for {
		switch c := s.data[s.i]; {
		case c == '"':
			raw = s.data[start:s.i]
			s.i++
			return raw, escaped
		case c == '\\':
			escaped = true
			s.i += 2
		default:
			s.i++
		}
	}
}

// key reads the key at s.i as encoding/json decodes it: escapes resolved,
// invalid UTF-8 replaced.
func (s *scanner) key() []byte {
	start := s.i
	raw, escaped := s.str()
	if !escaped && utf8.Valid(raw) {
		return raw
	}
	var k string
	_ = json.Unmarshal(s.data[start:s.i], &k) // valid: json.Valid passed
	return []byte(k)
}

// place is the path of key k below the value being walked, as "a.b.k"
// (arrays add nothing).
func (s *scanner) place(k []byte) string {
	var b strings.Builder
	for _, p := range s.path {
		b.Write(p)
		b.WriteByte('.')
	}
	b.Write(k)
	return b.String()
}

// unmarshaler is json.Unmarshaler.
var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

// checked is t without its pointers, or nil when t is nil or decodes
// itself.
func checked(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || reflect.PointerTo(t).Implements(unmarshaler) {
		return nil
	}
	return t
}

// fieldCache holds fieldTypes' answers by struct type.
var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

// fieldTypes maps each exact JSON name of struct t (embedded structs
// flattened) to its field type; the map is shared and never changed.
func fieldTypes(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m, _ := fieldCache.LoadOrStore(t, structFields(t))
	return m.(map[string]reflect.Type)
}

// structFields maps each exact JSON name of struct t (embedded structs
// flattened) to its field type.
func structFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				for k, v := range structFields(et) {
					if _, dup := out[k]; !dup {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
