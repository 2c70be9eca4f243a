package center

import (
	"errors"
	"os"
	"testing"
)

func TestKDFFromEnv(t *testing.T) {
	t.Setenv(KDFEnv, "")
	os.Unsetenv(KDFEnv)
	if k, err := kdfFromEnv(); err != nil || k != DefaultKDF {
		t.Fatalf("unset: kdfFromEnv() = %v, %v; want DefaultKDF", k, err)
	}
	fastKDF(t)
	if k, err := kdfFromEnv(); err != nil || k != FastKDF {
		t.Fatalf("test build: kdfFromEnv() = %v, %v; want FastKDF", k, err)
	}
	t.Setenv(KDFEnv, "cheap")
	if _, err := kdfFromEnv(); err == nil {
		t.Fatal("an unknown cost was taken")
	}
}

func TestCheckPassphrase(t *testing.T) {
	for _, ok := range []string{testPassphrase, "passphrase of alice", "Tr0ub4dor&3-horse", "twelve chars", "ünïcödé wörds hère"} {
		if err := CheckPassphrase([]byte(ok), "alice"); err != nil {
			t.Errorf("CheckPassphrase(%q) = %v", ok, err)
		}
	}
	for _, weak := range []string{"", "short", "sunshine1234", "Sunshine!!!!", "1q2w3e4r5t6y", "zyxwvutsrqpo", "0987654321098", "monkey monkey", "alice alice alice", "iloveyou2023"} {
		if err := CheckPassphrase([]byte(weak), "alice"); !errors.Is(err, ErrWeakPassphrase) {
			t.Errorf("CheckPassphrase(%q) = %v, want ErrWeakPassphrase", weak, err)
		}
	}
	if len(commonPasswords) < 3000 || !commonPasswords["123456"] || !commonPasswords["password"] {
		t.Fatalf("the embedded list holds %d passwords", len(commonPasswords))
	}
}
