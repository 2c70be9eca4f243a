package os2

import (
	"errors"
	"testing"
)

// The parsed-key cache parses each encoding once, never keeps a failure,
// and stays within its bound.
func TestParsedKeys(t *testing.T) {
	c := parsedKeys[int, string]{max: 2}
	parses := 0
	parse := func(v string, err error) func() (string, error) {
		return func() (string, error) { parses++; return v, err }
	}
	bad := errors.New("malformed")
	for range 2 {
		if _, err := c.get(1, parse("", bad)); !errors.Is(err, bad) {
			t.Fatalf("failed parse: %v", err)
		}
	}
	if parses != 2 {
		t.Fatalf("a failed parse was kept: %d parses, want 2", parses)
	}
	for range 3 {
		if v, err := c.get(1, parse("one", nil)); err != nil || v != "one" {
			t.Fatalf("get(1) = %q, %v", v, err)
		}
	}
	if parses != 3 {
		t.Fatalf("%d parses for three gets of one key, want 3", parses)
	}
	for i := 2; i < 10; i++ {
		if _, err := c.get(i, parse("n", nil)); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.m) > c.max {
		t.Fatalf("%d keys kept, bound %d", len(c.m), c.max)
	}
}
