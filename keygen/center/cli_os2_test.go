package center

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderseal/keygen"
	"orderseal/suite"
	"orderseal/suite/keystore"
	"orderseal/suite/os2"
)

// The keygen command line of an OS2 center: init with officers, issue with
// T of them, directory sign, ledger verify.

func officerEnv(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString(n + "=" + string(officerPass(n)) + "\n")
	}
	return b.String()
}

func TestCLIOfficers(t *testing.T) {
	fastKDF(t)
	t.Setenv(OfficerPassphrasesEnv, officerEnv(testOfficers...))
	tmp := t.TempDir()
	center := filepath.Join(tmp, "center")
	if r := runCLI(t, "", "init", "-dir", center, "-officers", "alice,bob,carol", "-threshold", "2", "-k", "8", "-epoch", "month", "-grace", "168h"); r.code != 0 ||
		!strings.Contains(r.err, "key center ready") || !strings.Contains(r.err, "2 of them must come") || r.stdout != "" {
		t.Fatalf("init: %v", r)
	}
	p, err := ReadParams(center)
	if err != nil || p.Suite != os2.Name || p.Epochs == nil || p.Epochs.Grace != 168*time.Hour || p.K != 8 {
		t.Fatalf("params %+v, %v", p, err)
	}
	epoch := p.Epochs.At(time.Now())
	keys := filepath.Join(tmp, "keys")
	os.Mkdir(keys, 0o700)
	const shop = "merchant:shop.example"

	t.Setenv(OfficerPassphrasesEnv, officerEnv("bob", "carol"))
	r := runCLI(t, "", "issue", "-dir", center, "-id", shop, "-out", filepath.Join(keys, "shop.key"))
	if r.code != 0 || !strings.Contains(r.err, "issued "+shop) || !strings.Contains(r.err, "(epoch "+epoch+")") || !strings.Contains(r.err, "ledger: 3 lines, head ") {
		t.Fatalf("issue: %v", r)
	}
	k, err := suite.LoadKey(filepath.Join(keys, "shop.key"), keygen.RoleMerchant, time.Now())
	if err != nil || k.Epoch() != epoch {
		t.Fatalf("issued key: %v", err)
	}
	next, _ := p.Epochs.Next(epoch)
	ids := filepath.Join(tmp, "ids.txt")
	os.WriteFile(ids, []byte("issuer:bank.example\ncardholder:alice@example.org\n"), 0o600)
	r = runCLI(t, "", "issue", "-dir", center, "-epoch", next, "-ids", ids, "-out-dir", filepath.Join(keys, next))
	if r.code != 0 || !strings.Contains(r.err, "issued 2 of 2 identities") || !strings.Contains(r.err, "ledger: 6 lines") {
		t.Fatalf("batch: %v", r)
	}
	bank, err := keygen.LoadPartyKey(filepath.Join(keys, next, keygen.KeyFileName("issuer:bank.example")))
	if err != nil || bank.Epoch() != next || suite.Check(bank, time.Now()) != nil {
		t.Fatalf("batch key: %v", err)
	}

	// A directory entry, from the key's bytes and from its base64.
	kem, _ := os2.KEMKeyFromSeed(bytes.Repeat([]byte{4}, os2.KEMSecretSize))
	pkRaw := filepath.Join(tmp, "shop.pub")
	os.WriteFile(pkRaw, kem.PublicKey(), 0o644)
	entry := filepath.Join(tmp, "shop.entry.json")
	r = runCLI(t, "", "directory", "sign", "-dir", center, "-id", shop, "-epoch", epoch, "-public-key", pkRaw, "-out", entry)
	if r.code != 0 || !strings.Contains(r.err, "signed the directory entry of "+shop) {
		t.Fatalf("directory sign: %v", r)
	}
	data, _ := os.ReadFile(entry)
	var e keygen.DirectoryEntry
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatal(err)
	}
	_, end, _ := p.Epochs.Span(epoch)
	if err := (os2.Suite{}).VerifyEntry(p, &e, time.Now()); err != nil || !e.NotAfter.Equal(end.Add(p.Epochs.Grace)) {
		t.Fatalf("entry %v until %s: %v", e.Identity, e.NotAfter, err)
	}
	r = runCLI(t, base64.StdEncoding.EncodeToString(kem.PublicKey())+"\n", "directory", "sign", "-dir", center, "-id", "vault:vault.example",
		"-public-key", "-", "-out", "-", "-not-after", end.Format(time.RFC3339))
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &e) != nil || !e.NotAfter.Equal(end) || e.Epoch != epoch {
		t.Fatalf("directory sign to stdout: %v", r)
	}

	r = runCLI(t, "", "ledger", "verify", "-dir", center)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ledger ok: 10 lines (3 keys issued, 2 directory entries, 5 checkpoints)") {
		t.Fatalf("ledger verify: %v", r)
	}
	r = runCLI(t, "", "ledger", "verify", "-dir", center, "-json")
	var sum struct{ Lines, Issued int }
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &sum) != nil || sum.Lines != 10 || sum.Issued != 3 {
		t.Fatalf("ledger verify -json: %v", r)
	}

	broken := copyDir(t, center)
	lines := ledgerLines(t, broken)
	writeLedger(t, broken, append(lines[:3:3], lines[4:]...))

	counted := filepath.Join(tmp, "counted")
	for _, tc := range []struct {
		name string
		env  *string // ORDERSEAL_OFFICER_PASSPHRASES; nil: unset
		args []string
		code int
		err  string
	}{
		{"one officer", ptrTo(officerEnv("alice")), []string{"issue", "-dir", center, "-id", "merchant:x", "-out", filepath.Join(tmp, "x.key")}, 1,
			"needs 2 of the officers alice, bob, carol; given 1: alice"},
		{"wrong passphrase", ptrTo("alice=" + string(officerPass("alice")) + "\nbob=not bob's\n"), []string{"issue", "-dir", center, "-id", "merchant:x", "-out", filepath.Join(tmp, "x.key")}, 1,
			"officer bob: "},
		{"chosen officers", ptrTo(officerEnv(testOfficers...)), []string{"issue", "-dir", center, "-officers", "alice,dave", "-id", "merchant:x", "-out", filepath.Join(tmp, "x.key")}, 2,
			`"dave" is not an officer`},
		{"chosen officer without passphrase", ptrTo(officerEnv("alice", "bob")), []string{"issue", "-dir", center, "-officers", "alice,carol", "-id", "merchant:x", "-out", filepath.Join(tmp, "x.key")}, 1,
			"no passphrase for officer carol"},
		{"no passphrases, no terminal", nil, []string{"issue", "-dir", center, "-id", "merchant:x", "-out", filepath.Join(tmp, "x.key")}, 1,
			"no officer passphrases"},
		{"ambiguous env", ptrTo("alice=one passphrase\nalice=another one\n"), []string{"issue", "-dir", center, "-id", "merchant:x", "-out", filepath.Join(tmp, "x.key")}, 1,
			"line 2: officer alice given twice"},
		{"env line without =", ptrTo("alice\n"), []string{"issue", "-dir", center, "-id", "merchant:x", "-out", filepath.Join(tmp, "x.key")}, 1,
			"line 1: no '='"},
		{"env with CR", ptrTo("alice=one passphrase\r\nbob=x\r\n"), []string{"issue", "-dir", center, "-id", "merchant:x", "-out", filepath.Join(tmp, "x.key")}, 1,
			"carriage return"},
		{"epoch over", ptrTo(officerEnv("alice", "bob")), []string{"issue", "-dir", center, "-epoch", "2020-01", "-id", "merchant:x", "-out", filepath.Join(tmp, "x.key")}, 1,
			"epoch is over"},
		{"epoch malformed", ptrTo(officerEnv("alice", "bob")), []string{"issue", "-dir", center, "-epoch", "2027-1", "-id", "merchant:x", "-out", filepath.Join(tmp, "x.key")}, 1,
			"is not a month"},
		{"broken ledger", ptrTo(officerEnv("alice", "bob")), []string{"issue", "-dir", broken, "-id", "merchant:x", "-out", filepath.Join(tmp, "x.key")}, 1,
			"ledger.jsonl line 4"},
		{"ledger verify broken", nil, []string{"ledger", "verify", "-dir", broken}, 1, "ledger.jsonl line 4: seq 5, want 4"},
		{"ledger without verb", nil, []string{"ledger"}, 2, "needs a subcommand: verify"},
		{"directory without verb", nil, []string{"directory", "list"}, 2, `unknown directory command "list"`},
		{"directory bad key", ptrTo(officerEnv("alice", "bob")), []string{"directory", "sign", "-dir", center, "-id", shop, "-public-key", ids, "-out", filepath.Join(tmp, "e.json")}, 1,
			"not an X-Wing public key"},
		{"directory past grace", ptrTo(officerEnv("alice", "bob")), []string{"directory", "sign", "-dir", center, "-id", shop, "-public-key", pkRaw, "-out", filepath.Join(tmp, "e.json"),
			"-not-after", end.Add(p.Epochs.Grace + time.Second).Format(time.RFC3339)}, 1, "past epoch"},
		{"directory over an existing file", ptrTo(officerEnv("alice", "bob")), []string{"directory", "sign", "-dir", center, "-id", shop, "-public-key", pkRaw, "-out", entry}, 1,
			"already exists"},
		{"init: no threshold", ptrTo(officerEnv(testOfficers...)), []string{"init", "-dir", filepath.Join(tmp, "c2"), "-officers", "alice,bob,carol"}, 2, "-threshold is required"},
		{"init: threshold 1", ptrTo(officerEnv(testOfficers...)), []string{"init", "-dir", filepath.Join(tmp, "c2"), "-officers", "alice,bob,carol", "-threshold", "1"}, 1, "threshold must be between 2"},
		{"init: threshold above n", ptrTo(officerEnv(testOfficers...)), []string{"init", "-dir", filepath.Join(tmp, "c2"), "-officers", "alice,bob", "-threshold", "3"}, 1, "threshold must be between 2"},
		{"init: bad name", ptrTo(officerEnv(testOfficers...)), []string{"init", "-dir", filepath.Join(tmp, "c2"), "-officers", "alice,Bob", "-threshold", "2"}, 1, "bad officer name"},
		{"init: an officer without passphrase", ptrTo(officerEnv("alice", "bob")), []string{"init", "-dir", filepath.Join(tmp, "c2"), "-officers", "alice,bob,carol", "-threshold", "2"}, 1,
			"no passphrase for officer carol"},
		{"init: OS1 with officers' flags", nil, []string{"init", "-dir", filepath.Join(tmp, "c2"), "-suite", keygen.SuiteOS1, "-threshold", "2"}, 2, "-threshold does not apply"},
		{"init: bad period", ptrTo(officerEnv(testOfficers...)), []string{"init", "-dir", filepath.Join(tmp, "c2"), "-officers", "alice,bob,carol", "-threshold", "2", "-epoch", "week"}, 1, "epoch period"},
		{"init: existing", ptrTo(officerEnv(testOfficers...)), []string{"init", "-dir", center, "-officers", "alice,bob,carol", "-threshold", "2"}, 1, "already initialised"},
		{"init: counted officers", ptrTo(officerEnv("officer1", "officer2", "officer3")), []string{"init", "-dir", counted, "-officers", "3", "-threshold", "2", "-k", "4", "-epoch", "day"}, 0,
			"split among officer1, officer2, officer3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env == nil {
				t.Setenv(OfficerPassphrasesEnv, "")
				os.Unsetenv(OfficerPassphrasesEnv)
			} else {
				t.Setenv(OfficerPassphrasesEnv, *tc.env)
			}
			r := runCLI(t, "", tc.args...)
			if r.code != tc.code || !strings.Contains(r.err, tc.err) {
				t.Fatalf("want exit %d and stderr containing %q; got %v", tc.code, tc.err, r)
			}
			if tc.code != 0 && r.stdout != "" {
				t.Errorf("failure wrote to stdout: %q", r.stdout)
			}
			if tc.code == 1 && len(errorLines(r.err)) != 1 {
				t.Errorf("want one 'keygen: error:' line: %q", r.err)
			}
			if strings.Contains(r.err, "not bob's") || strings.Contains(r.err, string(officerPass("alice"))) {
				t.Error("stderr echoes a passphrase")
			}
		})
	}
	if _, err := os.Stat(filepath.Join(tmp, "x.key")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a failed issue wrote its key")
	}
	if _, err := os.Stat(counted); err != nil {
		return // the case that makes it did not run (-run)
	}
	if names, th, ok, err := CenterOfficers(counted); err != nil || !ok || th != 2 || strings.Join(names, ",") != "officer1,officer2,officer3" {
		t.Errorf("counted officers: %v %d %v %v", names, th, ok, err)
	}
}

func ptrTo(s string) *string { return &s }

// The round trip a receiving party makes each epoch: keys new-epoch writes
// a request, directory sign -request certifies it, the keystore installs
// the entry.
func TestCLIDirectoryRequest(t *testing.T) {
	fastKDF(t)
	t.Setenv(OfficerPassphrasesEnv, officerEnv(testOfficers...))
	tmp := t.TempDir()
	center := filepath.Join(tmp, "center")
	if r := runCLI(t, "", "init", "-dir", center, "-officers", "alice,bob,carol", "-threshold", "2", "-k", "8"); r.code != 0 {
		t.Fatalf("init: %v", r)
	}
	const bank = "issuer:bank.example"
	issued := filepath.Join(tmp, "bank.key")
	if r := runCLI(t, "", "issue", "-dir", center, "-id", bank, "-out", issued); r.code != 0 {
		t.Fatalf("issue: %v", r)
	}
	key, err := suite.LoadKey(issued, keygen.RoleIssuer, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(tmp, "keys")
	req, err := keystore.NewEpoch(store, key, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	entry := filepath.Join(tmp, "entry.json")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-request", req, "-id", bank, "-out", entry}, 2, "-request names the identity"},
		{[]string{"-out", entry}, 2, "needs the party's identity and public key"},
		{[]string{"-request", issued, "-out", entry}, 1, "kem.pub.json"},
		{[]string{"-request", req, "-out", entry}, 0, "signed the directory entry of " + bank},
	} {
		r := runCLI(t, "", append([]string{"directory", "sign", "-dir", center}, c.args...)...)
		if r.code != c.code || !strings.Contains(r.err, c.want) {
			t.Errorf("directory sign %v: %v, want exit %d and %q", c.args, r, c.code, c.want)
		}
	}
	data, err := os.ReadFile(entry)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keystore.InstallEntry(store, data, time.Now()); err != nil {
		t.Fatalf("install the signed entry: %v", err)
	}
	ks, err := keystore.Open(store, keygen.RoleIssuer, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	if e, ok := ks.Entry(key.Epoch()); !ok || e.Identity != bank {
		t.Fatalf("keystore entry %v %v", e, ok)
	}
}
