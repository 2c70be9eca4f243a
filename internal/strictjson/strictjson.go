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
// One walk over the bytes checks the keys (duplicates, and the exact
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

// CheckDuplicates fails on a repeated key within one object, nesting
// deeper than MaxDepth, or anything but one well-formed JSON value.
func CheckDuplicates(data []byte) error { return check(data, nil) }

// check fails on anything but one well-formed JSON value (saying where the
// syntax breaks), a repeated key within one object, nesting deeper than
// MaxDepth, and, when t is the type the value decodes into, an object key
// that is not the exact JSON name of a field of the struct it fills:
// encoding/json would accept "V" for "v", and here each value has one
// spelling on the wire. A type that decodes itself (json.Unmarshaler) is
// trusted to be as strict as it needs (keygen.DirectoryEntry) and not
// looked into.
func check(data []byte, t reflect.Type) error {
	if !json.Valid(data) {
		return syntaxError(data)
	}
	sc := scanner{data: data}
	return sc.value(checked(t), 0)
}

// syntaxError says why json.Valid refused data: where its first value
// breaks, or that more follows it.
func syntaxError(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	var first json.RawMessage
	if err := dec.Decode(&first); err != nil {
		return fmt.Errorf("%w: %s", ErrMalformed, describe(err))
	}
	return fmt.Errorf("%w: trailing data after the value", ErrMalformed)
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
