package center

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MinPassphrase is the shortest passphrase a new center or officer share
// takes, in characters: four common words and their spaces pass it.
const MinPassphrase = 12

// ErrWeakPassphrase is returned when a new passphrase is too short, common,
// or made of repeats, sequences or its owner's name. Its message never
// quotes the passphrase.
var ErrWeakPassphrase = errors.New("weak passphrase")

// commonPasswords is John the Ripper's password.lst (Openwall, public domain,
// from the Debian package john-data 1.9.0), lower-cased, entries of 4 or
// more characters: the passwords most often seen, most common first.
//
//go:embed common-passwords.txt
var commonPasswordsFile string

var commonPasswords = func() map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Split(commonPasswordsFile, "\n") {
		if l != "" && !strings.HasPrefix(l, "#!comment:") {
			m[l] = true
		}
	}
	return m
}()

// sequences are runs a passphrase must not be a piece of (forward or back):
// digits, the alphabet, keyboard rows.
var sequences = []string{
	"012345678901234567890123456789", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
	"qwertyuiopasdfghjklzxcvbnmqwertyuiop", "qwertzuiopasdfghjklyxcvbnm", "azertyuiopqsdfghjklmwxcvbn",
	"1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p", "1q2w3e4r5t6y7u8i9o0p", "!@#$%^&*()_+",
}

// leet undoes the usual digit and symbol stand-ins for letters.
var leet = strings.NewReplacer("0", "o", "1", "l", "3", "e", "4", "a", "5", "s", "7", "t", "@", "a", "$", "s", "!", "i")

// CheckPassphrase refuses a new passphrase that is shorter than
// MinPassphrase characters, on the list of common passwords (also with
// digits and symbols trimmed off its ends, its letters' stand-ins undone,
// or repeated), one short unit repeated, a run of a sequence, or little
// more than one of names (the officer's or center's own). Opening an
// existing center does not call it.
func CheckPassphrase(pass []byte, names ...string) error {
	if !utf8.Valid(pass) {
		return fmt.Errorf("%w: not UTF-8", ErrWeakPassphrase)
	}
	if n := utf8.RuneCount(pass); n < MinPassphrase {
		return fmt.Errorf("%w: %d characters, at least %d needed (four words will do)", ErrWeakPassphrase, n, MinPassphrase)
	}
	s := strings.ToLower(string(pass))
	if reason := weakness(s); reason != "" {
		return fmt.Errorf("%w: %s", ErrWeakPassphrase, reason)
	}
	for _, name := range names {
		name = strings.ToLower(name)
		if len(name) < 3 || !strings.Contains(s, name) {
			continue
		}
		rest := strings.ReplaceAll(s, name, "")
		if utf8.RuneCountInString(rest) < 8 || weakness(rest) != "" {
			return fmt.Errorf("%w: it is little more than the name %s", ErrWeakPassphrase, name)
		}
	}
	return nil
}

// weakness says why the lower-cased s is guessable, or "".
func weakness(s string) string {
	notLetter := func(r rune) bool { return !unicode.IsLetter(r) }
	trimmed := strings.TrimFunc(s, notLetter)
	squeezed := strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '-' || r == '_' || r == '.' {
			return -1
		}
		return r
	}, s)
	for _, v := range []string{s, squeezed, trimmed, leet.Replace(s), leet.Replace(squeezed),
		leet.Replace(strings.TrimFunc(squeezed, notLetter)), strings.TrimFunc(leet.Replace(squeezed), notLetter)} {
		if commonPasswords[v] || commonPasswords[unit(v)] {
			return "it is a common password"
		}
	}
	distinct := map[rune]bool{}
	for _, r := range squeezed {
		distinct[r] = true
	}
	if len(unit(squeezed)) < 5 || len(distinct) < 5 {
		return "it repeats a few characters"
	}
	for _, seq := range sequences {
		if len(squeezed) >= 4 && (strings.Contains(seq, squeezed) || strings.Contains(seq, reverse(squeezed))) {
			return "it is a run of a keyboard or alphabet sequence"
		}
	}
	return ""
}

// unit returns the shortest string s is a repetition of ("abab" → "ab").
func unit(s string) string {
	for n := 1; n <= len(s)/2; n++ {
		if len(s)%n == 0 && strings.Repeat(s[:n], len(s)/n) == s {
			return s[:n]
		}
	}
	return s
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}
