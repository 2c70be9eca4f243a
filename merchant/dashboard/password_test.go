package dashboard

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestPasswordVectors: hashes made by the reference implementation verify,
// and a wrong password or a hash with one field changed does not.
func TestPasswordVectors(t *testing.T) {
	b, err := os.ReadFile("testdata/argon2id.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Vectors []struct{ Password, Hash string }
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) == 0 {
		t.Fatal("no vectors loaded")
	}
	for _, v := range f.Vectors {
		if ok, err := VerifyPassword(v.Hash, v.Password); !ok || err != nil {
			t.Errorf("%s: %v %v", v.Hash, ok, err)
		}
		if ok, _ := VerifyPassword(v.Hash, v.Password+"x"); ok {
			t.Errorf("%s: a wrong password verifies", v.Hash)
		}
		parts := strings.Split(v.Hash, "$")
		for i, tamper := range map[int]string{3: strings.Replace(parts[3], "t=", "t=1", 1), 4: "AAAA" + parts[4][4:], 5: "AAAA" + parts[5][4:]} {
			p := append([]string{}, parts...)
			p[i] = tamper
			if ok, _ := VerifyPassword(strings.Join(p, "$"), v.Password); ok {
				t.Errorf("field %d changed to %q still verifies", i, tamper)
			}
		}
	}
}

func TestHashPassword(t *testing.T) {
	h, err := HashPassword("a long enough passphrase", Params{Memory: 64, Time: 1, Threads: 1})
	if err != nil || !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("%q %v", h, err)
	}
	h2, _ := HashPassword("a long enough passphrase", Params{Memory: 64, Time: 1, Threads: 1})
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no fresh salt")
	}
	if ok, err := VerifyPassword(h, "a long enough passphrase"); !ok || err != nil {
		t.Fatalf("own hash: %v %v", ok, err)
	}
	for _, tc := range []struct {
		pw   string
		want error
	}{
		{"short", ErrPasswordShort},
		{"elevenchars", ErrPasswordShort},
		{"ümläüteümläü", nil}, // twelve characters, more bytes
		{strings.Repeat("x", MaxPassword+1), ErrPasswordLong},
		{"tab\tin the middle", ErrPasswordText},
		{"invalid \xff utf-8 text", ErrPasswordText},
	} {
		if err := CheckPasswordRules(tc.pw); !errors.Is(err, tc.want) {
			t.Errorf("%.20q: %v, want %v", tc.pw, err, tc.want)
		}
	}
}

// TestHashBounds: a stored hash that asks for absurd work, or is not PHC
// argon2id, is refused before any hashing.
func TestHashBounds(t *testing.T) {
	for _, h := range []string{
		"",
		"$argon2i$v=19$m=19456,t=2,p=1$b3JkZXJzZWFsLXNhbHQtMDE$M1Gr312ADGHs1DgqYpA0Rcnf6HVUPlzxY6BfLIzd2cY",
		"$argon2id$v=16$m=19456,t=2,p=1$b3JkZXJzZWFsLXNhbHQtMDE$M1Gr312ADGHs1DgqYpA0Rcnf6HVUPlzxY6BfLIzd2cY",
		"$argon2id$v=19$m=4194304,t=2,p=1$b3JkZXJzZWFsLXNhbHQtMDE$M1Gr312ADGHs1DgqYpA0Rcnf6HVUPlzxY6BfLIzd2cY",
		"$argon2id$v=19$m=19456,t=1000,p=1$b3JkZXJzZWFsLXNhbHQtMDE$M1Gr312ADGHs1DgqYpA0Rcnf6HVUPlzxY6BfLIzd2cY",
		"$argon2id$v=19$m=19456,t=2,p=0$b3JkZXJzZWFsLXNhbHQtMDE$M1Gr312ADGHs1DgqYpA0Rcnf6HVUPlzxY6BfLIzd2cY",
		"$argon2id$v=19$m=019456,t=2,p=1$b3JkZXJzZWFsLXNhbHQtMDE$M1Gr312ADGHs1DgqYpA0Rcnf6HVUPlzxY6BfLIzd2cY",
		"$argon2id$v=19$m=19456,t=2,p=1$$M1Gr312ADGHs1DgqYpA0Rcnf6HVUPlzxY6BfLIzd2cY",
		"$argon2id$v=19$m=19456,t=2,p=1$b3JkZXJzZWFsLXNhbHQtMDE$M1Gr",
		"$argon2id$v=19$m=19456,t=2,p=1$b3JkZXJzZWFsLXNhbHQtMDE$M1Gr312ADGHs1DgqYpA0Rcnf6HVUPlzxY6BfLIzd2cY$",
	} {
		if _, err := VerifyPassword(h, "correct horse battery staple"); !errors.Is(err, ErrHashFormat) {
			t.Errorf("%q: %v, want ErrHashFormat", h, err)
		}
	}
}
