package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters. They are stored with each hash,
// so raising them later leaves older hashes verifiable.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultParams follow OWASP's password storage guidance for argon2id
// (19 MiB, two passes, one lane).
var DefaultParams = Params{Memory: 19 << 10, Time: 2, Threads: 1}

// Bounds of a password and of the parameters a stored hash may ask for: a
// tampered row must not make a login cost a gigabyte.
const (
	MinPassword = 12
	MaxPassword = 1024
	maxMemory   = 1 << 20 // KiB: 1 GiB
	maxTime     = 16
	saltLen     = 16
	keyLen      = 32
)

// Password errors.
var (
	ErrPasswordShort = fmt.Errorf("dashboard: a password has at least %d characters", MinPassword)
	ErrPasswordLong  = fmt.Errorf("dashboard: a password has at most %d bytes", MaxPassword)
	ErrPasswordText  = errors.New("dashboard: a password is UTF-8 text without control characters")
	ErrHashFormat    = errors.New("dashboard: not an argon2id hash in PHC form")
)

// CheckPasswordRules refuses a password too short, too long or not text.
func CheckPasswordRules(pw string) error {
	switch {
	case len(pw) > MaxPassword:
		return ErrPasswordLong
	case !utf8.ValidString(pw) || strings.ContainsFunc(pw, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return ErrPasswordText
	case utf8.RuneCountInString(pw) < MinPassword:
		return ErrPasswordShort
	}
	return nil
}

// HashPassword hashes pw with argon2id under p and a fresh salt, in PHC
// form: $argon2id$v=19$m=…,t=…,p=…$salt$hash.
func HashPassword(pw string, p Params) (string, error) {
	if err := CheckPasswordRules(pw); err != nil {
		return "", err
	}
	salt := make([]byte, saltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
	b64 := base64.RawStdEncoding.EncodeToString
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads, b64(salt), b64(key)), nil
}

// parseHash reads a PHC argon2id hash within the bounds above.
func parseHash(h string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(h, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, nil, nil, ErrHashFormat
	}
	var threads uint32
	if n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &threads); err != nil || n != 3 ||
		fmt.Sprintf("m=%d,t=%d,p=%d", p.Memory, p.Time, threads) != parts[3] {
		return p, nil, nil, ErrHashFormat
	}
	if p.Memory < 8 || p.Memory > maxMemory || p.Time < 1 || p.Time > maxTime || threads < 1 || threads > 255 || p.Memory < 8*threads {
		return p, nil, nil, ErrHashFormat
	}
	p.Threads = uint8(threads)
	if salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil || len(salt) < 8 || len(salt) > 64 {
		return p, nil, nil, ErrHashFormat
	}
	if key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, ErrHashFormat
	}
	return p, salt, key, nil
}

// VerifyPassword reports whether pw matches the stored hash h, comparing
// in constant time. A hash it cannot read is ErrHashFormat.
func VerifyPassword(h, pw string) (bool, error) {
	p, salt, key, err := parseHash(h)
	if err != nil {
		return false, err
	}
	if len(pw) > MaxPassword {
		return false, nil
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// dummyHash is verified when no account has the name given, so a login
// takes as long whether or not the account exists.
var dummyHash = sync.OnceValue(func() string {
	h, err := HashPassword("no account has this password", DefaultParams)
	if err != nil {
		panic(err)
	}
	return h
})
