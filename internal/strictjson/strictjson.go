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
)

// ErrMalformed is wrapped by every error this package returns.
var ErrMalformed = errors.New("malformed json")

// MaxDepth bounds nesting so hostile input cannot exhaust the stack.
const MaxDepth = 32

// Decode parses data into v. It refuses input longer than max bytes, unknown
// fields, duplicate keys at any depth, excessive nesting and trailing data.
func Decode(data []byte, v any, max int) error {
	if max > 0 && len(data) > max {
		return fmt.Errorf("%w: %d bytes exceeds the limit of %d", ErrMalformed, len(data), max)
	}
	if err := CheckDuplicates(data); err != nil {
		return err
	}
	if err := checkExactKeys(data, reflect.TypeOf(v)); err != nil {
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
func CheckDuplicates(data []byte) error {
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
			return fmt.Errorf("%w: %s", ErrMalformed, describe(err))
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
					return fmt.Errorf("%w: nested deeper than %d", ErrMalformed, MaxDepth)
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

// checkExactKeys refuses object keys that match a struct field only when
// case is ignored (encoding/json would accept "V" for "v"), so each value
// has one spelling on the wire.
func checkExactKeys(data []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		return fmt.Errorf("%w: %s", ErrMalformed, describe(err))
	}
	return walk(generic, t, "")
}

// unmarshaler is json.Unmarshaler: a type that decodes itself is trusted to
// be as strict as it needs (keygen.DirectoryEntry), and not walked.
var unmarshaler = reflect.TypeFor[json.Unmarshaler]()

func walk(v any, t reflect.Type, path string) error {
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
			fields := fieldTypes(t)
			for k, sub := range x {
				ft, ok := fields[k]
				if !ok {
					return fmt.Errorf("%w: unknown field %q", ErrMalformed, path+k)
				}
				if err := walk(sub, ft, path+k+"."); err != nil {
					return err
				}
			}
		case reflect.Map:
			for k, sub := range x {
				if err := walk(sub, t.Elem(), path+k+"."); err != nil {
					return err
				}
			}
		}
	case []any:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for _, sub := range x {
				if err := walk(sub, t.Elem(), path); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// fieldTypes maps each exact JSON name of struct t (embedded structs
// flattened) to its field type.
func fieldTypes(t reflect.Type) map[string]reflect.Type {
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
				for k, v := range fieldTypes(et) {
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
