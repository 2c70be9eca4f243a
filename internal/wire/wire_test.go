package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestLP(t *testing.T) {
	if got := LP16(nil, []byte("ab")); !bytes.Equal(got, []byte{0, 2, 'a', 'b'}) {
		t.Fatalf("LP16 = %x", got)
	}
	if got := LP32([]byte{9}, []byte("a")); !bytes.Equal(got, []byte{9, 0, 0, 0, 1, 'a'}) {
		t.Fatalf("LP32 = %x", got)
	}
}

func TestUnB64(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{"AAEC", true},
		{"AAE", true},  // 2 bytes
		{"AAF", false}, // non-zero trailing bits
		{"AAE=", false},
		{"AA+C", false},
		{"AA/C", false},
		{"A", false},
		{"", true},
	}
	for _, c := range cases {
		_, err := UnB64(c.in)
		if c.ok != (err == nil) {
			t.Errorf("UnB64(%q) err=%v", c.in, err)
		}
		if err != nil && !errors.Is(err, ErrBase64) {
			t.Errorf("UnB64(%q) wrong error %v", c.in, err)
		}
	}
	if _, err := UnB64Len("AAEC", 2); err == nil {
		t.Fatal("length not enforced")
	}
}
