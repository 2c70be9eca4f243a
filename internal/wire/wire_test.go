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
		{"AA\nEC", false}, // encoding/base64 would skip the line break
		{"AAEC\r\n", false},
		{"\nAAEC", false},
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
	// 32 characters are the length of 24 bytes, but two of them are line
	// breaks: without the check this decoded to 22 bytes and no error.
	if b, err := UnB64Len("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\r", 24); err == nil {
		t.Fatalf("UnB64Len accepted line breaks and returned %d bytes", len(b))
	}
}
