package api

import (
	"errors"
	"testing"
)

// Check digits computed by hand: weighted sum (8 6 4 2 3 5 9 7), then
// 11 − sum mod 11, with 10 → 0 and 11 → 5.
func TestS10CheckDigit(t *testing.T) {
	tests := []struct {
		serial string
		sum    int // for the reader
		want   byte
	}{
		{"12345678", 204, '5'}, // 204 mod 11 = 6 → 5
		{"47312482", 200, '9'}, // UPU's own example, RB 47312482 9 GB
		{"00000001", 7, '4'},
		{"00000010", 9, '2'},
		{"10000000", 8, '3'},
		{"00000003", 21, '1'},  // 21 mod 11 = 10 → 1
		{"00000008", 56, '0'},  // 56 mod 11 = 1 → 10 → 0
		{"00000015", 44, '5'},  // 44 mod 11 = 0 → 11 → 5
		{"00000000", 0, '5'},   // likewise
		{"99999999", 396, '5'}, // 396 = 36·11 → 5
		{"24680135", 147, '7'},
	}
	for _, tt := range tests {
		got, err := S10CheckDigit(tt.serial)
		if err != nil || got != tt.want {
			t.Errorf("S10CheckDigit(%s) = %c, %v; want %c", tt.serial, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "1234567", "123456789", "1234567a", "１2345678"} {
		if _, err := S10CheckDigit(bad); !errors.Is(err, ErrTracking) {
			t.Errorf("S10CheckDigit(%q): %v", bad, err)
		}
	}
}

func TestValidateTracking(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"OS123456785DE", true},
		{"RB473124829GB", true},
		{"OS000000085FR", false}, // check digit of 00000008 is 0
		{"OS000000080FR", true},
		{"OS123456784DE", false}, // wrong check digit
		{"os123456785DE", false}, // lower case
		{"OS123456785de", false},
		{"OS12345678DE", false}, // no check digit
		{"OS123456785DEX", false},
		{"O5123456785DE", false},
		{"OS12345678XDE", false},
		{"OS1234567a5DE", false},
		{"", false},
	}
	for _, tt := range tests {
		err := ValidateTracking(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateTracking(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrTracking) {
			t.Errorf("ValidateTracking(%q) = %v, not ErrTracking", tt.in, err)
		}
	}
}

func TestFormatTracking(t *testing.T) {
	got, err := FormatTracking("OS", "12345678", "DE")
	if err != nil || got != "OS123456785DE" {
		t.Fatalf("FormatTracking = %q, %v", got, err)
	}
	for _, c := range [][3]string{{"os", "12345678", "DE"}, {"OS", "12345678", "D"}, {"OS", "1234567", "DE"}, {"O1", "12345678", "DE"}} {
		if _, err := FormatTracking(c[0], c[1], c[2]); !errors.Is(err, ErrTracking) {
			t.Errorf("FormatTracking%q: %v", c, err)
		}
	}
}

// FuzzValidateTracking: whatever ValidateTracking accepts is rebuilt
// exactly by FormatTracking from its parts, and nothing panics.
func FuzzValidateTracking(f *testing.F) {
	seeds := []string{"OS123456785DE", "RB473124829GB", "OS000000080FR", "OS123456784DE", "", "OS\x0012345678DE", "ＯＳ123456785DE"}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := ValidateTracking(s); err != nil {
			if !errors.Is(err, ErrTracking) {
				t.Fatalf("error %v is not ErrTracking", err)
			}
			return
		}
		again, err := FormatTracking(s[:2], s[2:10], s[11:])
		if err != nil || again != s {
			t.Fatalf("%q validates but formats back as %q, %v", s, again, err)
		}
	})
}
