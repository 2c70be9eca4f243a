package center

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Issue 16 item 9: ORDERSEAL_CENTER_KDF=fast worked in the production
// binary. A binary built without the test tag refuses the variable, says
// why, and creates nothing.
func TestFastKDFRefusedInProduction(t *testing.T) {
	t.Setenv(PassphraseEnv, testPassphrase)
	t.Setenv(OfficerPassphrasesEnv, officerEnv(testOfficers...))
	for _, v := range []string{"fast", "slow", ""} {
		t.Setenv("ORDERSEAL_CENTER_KDF", v)
		for _, args := range [][]string{{"init", "-k", "8", "-suite", "OS1-BLOM25519-HKDFSHA256-XCHACHA20POLY1305"}, {"init", "-k", "8", "-officers", strings.Join(testOfficers, ","), "-threshold", "2"}} {
			dir := filepath.Join(t.TempDir(), "center")
			r := runCLI(t, "", append(args, "-dir", dir)...)
			if r.code == 0 || !strings.Contains(r.err, "ORDERSEAL_CENTER_KDF is honoured by test builds only") || !strings.Contains(r.err, "hint: unset ORDERSEAL_CENTER_KDF") {
				t.Errorf("ORDERSEAL_CENTER_KDF=%q %v:\n%s", v, args, r)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused init left %s (%v)", dir, err)
			}
		}
	}
}

// Issue 16 item 9: passphrases of 8 characters passed. The center's and
// every officer's new passphrase is held to CheckPassphrase.
func TestWeakPassphrasesRefused(t *testing.T) {
	fastKDF(t)
	officers := func(alice string) string {
		return "alice=" + alice + "\nbob=" + string(officerPass("bob")) + "\ncarol=" + string(officerPass("carol"))
	}
	for _, tc := range []struct{ name, center, alice string }{
		{"8 characters", "k3#Vb9!q", ""},
		{"11 characters", "k3#Vb9!qZ2x", ""},
		{"a common password", "iloveyou1234!", ""},
		{"a common password with digits", "password123456", ""},
		{"a common password in leet", "p@ssw0rd2024!", ""},
		{"a common password twice", "dragondragon", ""},
		{"repeats", "abcabcabcabc", ""},
		{"few characters", "aaaaaaaaaaab", ""},
		{"a digit run", "123456789012", ""},
		{"a keyboard run", "qwertyuiopas", ""},
		{"an officer's name", "", "alice-alice-2024"},
		{"an officer's 11 characters", "", "Zq8#mv!2kLp"},
		{"an officer's common password", "", "letmein12345"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "center")
			var r cliResult
			if tc.center != "" {
				t.Setenv(PassphraseEnv, tc.center)
				r = runCLI(t, "", "init", "-dir", dir, "-k", "8", "-suite", "OS1-BLOM25519-HKDFSHA256-XCHACHA20POLY1305")
			} else {
				t.Setenv(OfficerPassphrasesEnv, officers(tc.alice))
				r = runCLI(t, "", "init", "-dir", dir, "-k", "8", "-officers", "alice,bob,carol", "-threshold", "2")
			}
			if r.code == 0 || !strings.Contains(r.err, "weak passphrase") || !strings.Contains(r.err, "hint:") {
				t.Fatalf("accepted or unclear:\n%s", r)
			}
			for _, secret := range []string{tc.center, tc.alice} {
				if secret != "" && strings.Contains(r.err, secret) {
					t.Fatalf("the refusal quotes the passphrase:\n%s", r)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, MasterFile)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused init left a master (%v)", err)
			}
		})
	}
}
