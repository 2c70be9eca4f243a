// Package strictjson decodes JSON the way orderseal's wire formats require:
// one value, no unknown fields, no duplicate object keys, bounded size.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
