package center

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orderseal/internal/cli"
	"orderseal/keygen"
)

// The keygen command line: exit codes (0 ok, 1 failure, 2 usage), one-line
// "keygen: error:" messages on stderr, results on stdout.

type cliResult struct {
	code        int
	stdout, err string
}

func runCLI(t *testing.T, stdin string, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, cli.Stdio{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return cliResult{code: code, stdout: out.String(), err: errb.String()}
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.err)
}

// errorLines returns the "keygen: error:" lines of stderr.
func errorLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "keygen: error:") {
			out = append(out, l)
		}
	}
	return out
}

func TestCLI(t *testing.T) {
	t.Setenv(PassphraseEnv, testPassphrase)
	fastKDF(t)
	tmp := t.TempDir()
	center := filepath.Join(tmp, "center")
	merchantKey := filepath.Join(tmp, "shop.key")
	aliceKey := filepath.Join(tmp, "alice.key")
	const merchant, alice = "merchant:shop.example", "cardholder:alice@example.org"

	// Happy path first: the table below needs a center and keys.
	if r := runCLI(t, "", "init", "-dir", center, "-suite", keygen.SuiteOS1, "-k", "8"); r.code != 0 || !strings.Contains(r.err, "key center ready") || r.stdout != "" {
		t.Fatalf("init: %v", r)
	}
	if st, err := os.Stat(filepath.Join(center, MasterFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("master.json: %v, %v", st, err)
	}
	var mw masterWire
	if b, err := os.ReadFile(filepath.Join(center, MasterFile)); err != nil || json.Unmarshal(b, &mw) != nil {
		t.Fatalf("master.json unreadable: %v", err)
	}
	if mw.KDF != (KDF{Time: 1, Memory: 8 * 1024, Threads: 1}) || mw.K != 8 {
		t.Fatalf("ORDERSEAL_CENTER_KDF=fast / -k not honoured: %+v", mw)
	}
	for _, kf := range []struct{ id, path string }{{merchant, merchantKey}, {alice, aliceKey}} {
		r := runCLI(t, "", "issue", "-dir", center, "-id", kf.id, "-out", kf.path)
		if r.code != 0 || !strings.Contains(r.err, "issued "+kf.id) {
			t.Fatalf("issue %s: %v", kf.id, r)
		}
		k, err := keygen.LoadPartyKey(kf.path)
		if err != nil || k.Identity() != kf.id || k.Params().K != 8 {
			t.Fatalf("issued key %s: %v", kf.path, err)
		}
	}

	t.Run("fingerprint agrees on both sides", func(t *testing.T) {
		a := runCLI(t, "", "fingerprint", "-key", merchantKey, "-peer", alice)
		b := runCLI(t, "", "fingerprint", "-key", aliceKey, "-peer", merchant)
		if a.code != 0 || b.code != 0 {
			t.Fatalf("fingerprint: %v / %v", a, b)
		}
		fa, fb := strings.TrimSuffix(a.stdout, "\n"), strings.TrimSuffix(b.stdout, "\n")
		if fa != fb || !fingerprintRE.MatchString(fa) {
			t.Fatalf("fingerprints %q and %q", fa, fb)
		}
		mk, _ := keygen.LoadPartyKey(merchantKey)
		p := mustPairwise(t, mk, alice)
		if fa != p.Fingerprint() {
			t.Fatalf("CLI fingerprint %q, library %q", fa, p.Fingerprint())
		}
		other := runCLI(t, "", "fingerprint", "-key", merchantKey, "-peer", "carrier:parcel.example")
		if other.code != 0 || other.stdout == a.stdout {
			t.Fatalf("fingerprint for another peer: %v", other)
		}
	})

	t.Run("params", func(t *testing.T) {
		r := runCLI(t, "", "params", "-dir", center)
		if r.code != 0 {
			t.Fatalf("params: %v", r)
		}
		p, err := keygen.ParseParams([]byte(r.stdout))
		if err != nil {
			t.Fatalf("keygen.ParseParams(CLI output %q): %v", r.stdout, err)
		}
		want, err := ReadParams(center)
		if err != nil || !p.Equal(want) || p.K != 8 {
			t.Fatalf("params %+v, center has %+v (%v)", p, want, err)
		}
	})

	for _, tc := range []struct {
		name string
		args []string
		code int
		err  string // substring of stderr
	}{
		{"no args", nil, 2, "usage: keygen <command>"},
		{"help", []string{"help"}, 0, "commands:"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"issue without -dir", []string{"issue", "-id", merchant, "-out", "x.key"}, 2, "-dir is required"},
		{"issue neither single nor batch", []string{"issue", "-dir", center}, 2, "give -id with -out, or -ids with -out-dir"},
		{"issue both single and batch", []string{"issue", "-dir", center, "-id", merchant, "-out", "x", "-ids", "y"}, 2, "give -id with -out"},
		{"issue -id without -out", []string{"issue", "-dir", center, "-id", merchant}, 2, "-out is required"},
		{"issue -ids without -out-dir", []string{"issue", "-dir", center, "-ids", "y"}, 2, "-out-dir is required"},
		{"issue bad identity", []string{"issue", "-dir", center, "-id", "Merchant:Shop", "-out", filepath.Join(tmp, "bad.key")}, 1, "invalid identity"},
		{"issue over an existing file", []string{"issue", "-dir", center, "-id", "merchant:other", "-out", merchantKey}, 1, "already exists"},
		{"issue unknown flag", []string{"issue", "-bogus"}, 2, "flag provided but not defined"},
		{"init without -dir", []string{"init"}, 2, "-dir is required"},
		{"init existing center", []string{"init", "-dir", center, "-suite", keygen.SuiteOS1, "-k", "8"}, 1, "already initialised"},
		{"init k=0", []string{"init", "-dir", filepath.Join(tmp, "c0"), "-suite", keygen.SuiteOS1, "-k", "0"}, 1, "invalid parameters"},
		{"init stray argument", []string{"init", "-dir", filepath.Join(tmp, "c1"), "extra"}, 2, `unexpected argument "extra"`},
		{"params without -dir", []string{"params"}, 2, "-dir is required"},
		{"params of a missing center", []string{"params", "-dir", filepath.Join(tmp, "nowhere")}, 1, "keygen: error:"},
		{"fingerprint without -peer", []string{"fingerprint", "-key", merchantKey}, 2, "-peer is required"},
		{"fingerprint with oneself", []string{"fingerprint", "-key", merchantKey, "-peer", merchant}, 1, "pairwise key with oneself"},
		{"fingerprint bad peer", []string{"fingerprint", "-key", merchantKey, "-peer", "bank:x"}, 1, "invalid identity"},
		{"fingerprint missing key", []string{"fingerprint", "-key", filepath.Join(tmp, "none.key"), "-peer", alice}, 1, "keygen: error:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, "", tc.args...)
			if r.code != tc.code || !strings.Contains(r.err, tc.err) {
				t.Fatalf("want exit %d and stderr containing %q; got %v", tc.code, tc.err, r)
			}
			if tc.code != 0 && r.stdout != "" {
				t.Errorf("failure wrote to stdout: %q", r.stdout)
			}
			if tc.code == 1 {
				if lines := errorLines(r.err); len(lines) != 1 {
					t.Errorf("want one 'keygen: error:' line, got %q", r.err)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(tmp, "c0", MasterFile)); err == nil {
		t.Error("init -k 0 left a master file")
	}

	t.Run("subcommand -h prints usage", func(t *testing.T) {
		r := runCLI(t, "", "issue", "-h")
		if r.code != 0 || !strings.Contains(r.err, "usage: keygen issue") || !strings.Contains(r.err, "-out-dir") {
			t.Fatalf("issue -h: %v", r)
		}
	})

	t.Run("wrong passphrase", func(t *testing.T) {
		t.Setenv(PassphraseEnv, "not the passphrase")
		out := filepath.Join(tmp, "never.key")
		r := runCLI(t, "", "issue", "-dir", center, "-id", "issuer:bank.example", "-out", out)
		if r.code != 1 {
			t.Fatalf("want exit 1: %v", r)
		}
		lines := errorLines(r.err)
		if len(lines) != 1 || !strings.Contains(lines[0], "wrong passphrase") {
			t.Fatalf("want one 'keygen: error: … wrong passphrase …' line: %q", r.err)
		}
		for _, l := range strings.Split(strings.TrimSuffix(r.err, "\n"), "\n") {
			if !strings.HasPrefix(l, "keygen: ") {
				t.Errorf("stray stderr line %q", l)
			}
		}
		if strings.Contains(r.err, "not the passphrase") {
			t.Error("stderr echoes the passphrase")
		}
		if _, err := os.Stat(out); err == nil {
			t.Error("a key file was written with a wrong passphrase")
		}
	})

	t.Run("no passphrase and no terminal", func(t *testing.T) {
		t.Setenv(PassphraseEnv, "")
		os.Unsetenv(PassphraseEnv) // restored by t.Setenv's cleanup
		r := runCLI(t, "", "issue", "-dir", center, "-id", "issuer:bank.example", "-out", filepath.Join(tmp, "never.key"))
		if r.code != 1 || !strings.Contains(r.err, "no passphrase") || !strings.Contains(r.err, PassphraseEnv) {
			t.Fatalf("%v", r)
		}
	})

	t.Run("batch with a bad line", func(t *testing.T) {
		outDir := filepath.Join(tmp, "batch")
		ids := "# cardholders\n\ncardholder:bob@example.org\n  Cardholder:BAD\x1b[2J  \ncarrier:parcel.example\n"
		idsPath := filepath.Join(tmp, "ids.txt")
		if err := os.WriteFile(idsPath, []byte(ids), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runCLI(t, "", "issue", "-dir", center, "-ids", idsPath, "-out-dir", outDir)
		if r.code != 1 {
			t.Fatalf("want exit 1: %v", r)
		}
		for _, want := range []string{
			"issuing", // the progress bar
			"keygen: Cardholder:BAD?[2J: invalid identity", // per-identity error, control byte defused
			"issued 2 of 3 identities into " + outDir,
			"keygen: error: 1 identity failed",
		} {
			if !strings.Contains(r.err, want) {
				t.Errorf("stderr lacks %q:\n%s", want, r.err)
			}
		}
		if strings.ContainsRune(r.err, 0x1b) {
			t.Error("an identity line put an escape byte on the terminal")
		}
		for _, id := range []string{"cardholder:bob@example.org", "carrier:parcel.example"} {
			path := filepath.Join(outDir, keygen.KeyFileName(id))
			st, err := os.Stat(path)
			if err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("%s: %v %v", path, st, err)
			}
			k, err := keygen.LoadPartyKey(path)
			if err != nil || k.Identity() != id {
				t.Fatalf("%s: %v", path, err)
			}
		}
		entries, _ := os.ReadDir(outDir)
		if len(entries) != 2 {
			t.Errorf("out dir holds %d files, want 2", len(entries))
		}

		// Again from stdin: both keys exist now, so both fail, and the run says so.
		r = runCLI(t, "cardholder:bob@example.org\ncarrier:parcel.example\nissuer:bank.example\n",
			"issue", "-dir", center, "-ids", "-", "-out-dir", outDir)
		if r.code != 1 || !strings.Contains(r.err, "issued 1 of 3") || !strings.Contains(r.err, "file already exists") {
			t.Fatalf("second batch from stdin: %v", r)
		}
		if _, err := keygen.LoadPartyKey(filepath.Join(outDir, keygen.KeyFileName("issuer:bank.example"))); err != nil {
			t.Fatalf("stdin batch did not write the new key: %v", err)
		}
	})

	t.Run("batch of nothing", func(t *testing.T) {
		r := runCLI(t, "# only a comment\n\n", "issue", "-dir", center, "-ids", "-", "-out-dir", filepath.Join(tmp, "empty"))
		if r.code != 1 || !strings.Contains(r.err, "no identities") {
			t.Fatalf("%v", r)
		}
	})
}
