package center

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"orderseal/internal/cli"
	"orderseal/keygen"
	"orderseal/suite"
	"orderseal/suite/os2"
)

// PassphraseEnv names the variable the key center reads its passphrase from
// when no terminal is at hand.
const PassphraseEnv = "ORDERSEAL_CENTER_PASSPHRASE"

// maxIDsFile bounds a batch identities file.
const maxIDsFile = 256 << 20

// Main is the keygen command: key center set-up and party key issuance.
func Main(ctx context.Context, args []string, stdio cli.Stdio) int {
	return cli.Dispatch("keygen", stdio, args, []cli.Command{
		{Name: "init", Summary: "create a key center (encrypted master, params.json)", Run: func(a []string) error { return cmdInit(a, stdio) }},
		{Name: "issue", Summary: "issue party keys for one identity or a batch", Run: func(a []string) error { return cmdIssue(ctx, a, stdio) }},
		{Name: "params", Summary: "print the public parameters", Run: func(a []string) error { return cmdParams(a, stdio) }},
		{Name: "directory", Summary: "OS2: sign a party's KEM public key for an epoch (directory sign)", Run: func(a []string) error { return cmdDirectory(a, stdio) }},
		{Name: "ledger", Summary: "OS2: check the issuance ledger (ledger verify)", Run: func(a []string) error { return cmdLedger(a, stdio) }},
		{Name: "fingerprint", Summary: "print a short fingerprint of K(self, peer)", Run: func(a []string) error { return cmdFingerprint(a, stdio) }},
	})
}

func cmdInit(args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("keygen", "init", "-dir DIR [-k N] [-suite NAME] [-officers NAMES|N -threshold T [-epoch month|day] [-grace D]]", stdio,
		"ORDERSEAL_CENTER_PASSPHRASE=… keygen init -dir center -k 1024",
		"keygen init -dir center -officers alice,bob,carol -threshold 2 -epoch month -grace 168h",
		"ORDERSEAL_OFFICER_PASSPHRASES=$'alice=…\\nbob=…\\ncarol=…' keygen init -dir center -officers alice,bob,carol -threshold 2")
	dir := fs.String("dir", "", "key center directory (created 0700)")
	k := fs.Int("k", keygen.DefaultK, "coefficients per row: a coalition of k parties can rebuild the master (of one epoch, under OS2), k−1 learn nothing of others' keys")
	suiteName := fs.String("suite", suite.Default().Name(), "the suite the center's keys are for (-officers imply "+os2.Name+")")
	officers := fs.String("officers", "", "OS2: the officers who hold the master, by name (alice,bob,carol) or as a count N (officer1…officerN)")
	threshold := fs.Int("threshold", 0, "OS2: how many officers must come to issue (at least 2)")
	period := fs.String("epoch", keygen.PeriodMonth, "OS2: epoch period, month or day")
	grace := fs.Duration("grace", keygen.DefaultGrace, "OS2: how long past its epoch a key still opens orders in flight")
	if err := cli.Parse(fs, args, "dir"); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["officers"] && !set["suite"] {
		*suiteName = os2.Name
	}
	if _, err := suite.ByName(*suiteName); err != nil {
		return cli.WithHint(err, "known suites: "+strings.Join(suite.Names(), ", "))
	}
	if *suiteName == os2.Name {
		return initOfficers(stdio, *dir, *k, *officers, *threshold, &keygen.Epochs{Period: *period, Grace: *grace})
	}
	for _, f := range []string{"officers", "threshold", "epoch", "grace"} {
		if set[f] {
			return cli.Usagef("officers and epochs are for an epoch suite: -suite "+os2.Name, "-%s does not apply to suite %s", f, *suiteName)
		}
	}
	kdf, err := kdfFromEnv()
	if err != nil {
		return err
	}
	pass, err := passphrase(stdio, true)
	if err != nil {
		return err
	}
	defer clear(pass)
	c, err := Init(*dir, *k, pass, InitOptions{Suite: *suiteName, KDF: kdf})
	if errors.Is(err, ErrWeakPassphrase) {
		return cli.WithHint(err, passphraseHint)
	}
	if err != nil {
		return cli.HintIs(err, ErrCenterExists, "choose another -dir; a key center is never overwritten")
	}
	defer c.Close()
	fmt.Fprintf(stdio.Err, "keygen: key center ready in %s (system %s, k=%d; a coalition of %d parties can rebuild the master)\n",
		*dir, c.Params().SystemHex(), c.Params().K, c.Params().K)
	return nil
}

func cmdIssue(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("keygen", "issue", "-dir DIR [-epoch E] [-officers NAMES] (-id IDENTITY -out FILE | -ids FILE -out-dir DIR)", stdio,
		"keygen issue -dir center -id merchant:shop.example -out shop.key",
		"keygen issue -dir center -ids cardholders.txt -out-dir keys/",
		"keygen issue -dir center -epoch 2026-12 -officers alice,bob -ids cardholders.txt -out-dir keys-2026-12/")
	dir := fs.String("dir", "", "key center directory")
	id := fs.String("id", "", "identity to issue, role:name")
	out := fs.String("out", "", "key file to create (0600, never overwritten)")
	ids := fs.String("ids", "", "file of identities, one per line ('-' for stdin; # comments)")
	outDir := fs.String("out-dir", "", "directory for batch key files")
	epoch := fs.String("epoch", "", "OS2: the epoch to issue keys of (default: the current one)")
	present := fs.String("officers", "", "OS2: the officers who open the master (default: those in "+OfficerPassphrasesEnv+", or prompts)")
	if err := cli.Parse(fs, args, "dir"); err != nil {
		return err
	}
	single, batch := *id != "" || *out != "", *ids != "" || *outDir != ""
	switch {
	case single == batch:
		return cli.Usagef("give -id with -out, or -ids with -out-dir", "choose one of single or batch issuance")
	case single:
		if err := cli.Require(fs, "id", "out"); err != nil {
			return err
		}
		if err := keygen.ValidateIdentity(*id); err != nil {
			return cli.WithHint(err, "identities look like merchant:shop.example")
		}
		if _, err := os.Lstat(*out); err == nil {
			return cli.WithHint(fmt.Errorf("%s already exists", *out), "key files are never overwritten; remove it first or choose another -out")
		}
	default:
		if err := cli.Require(fs, "ids", "out-dir"); err != nil {
			return err
		}
	}
	c, err := openForIssue(stdio, *dir, *epoch, *present)
	if err != nil {
		return err
	}
	defer c.Close()
	if single {
		if err := c.IssueFile(*id, *out); err != nil {
			return ledgerHint(err)
		}
		fmt.Fprintf(stdio.Err, "keygen: issued %s to %s%s\n", *id, *out, epochNote(c))
		ledgerNote(stdio, c)
		return nil
	}
	return issueBatch(ctx, c, *ids, *outDir, stdio)
}

// openForIssue opens the center in dir: with its passphrase (OS1), or with
// its officers for the master of epoch (OS2; "" for the current one).
func openForIssue(stdio cli.Stdio, dir, epoch, present string) (*Center, error) {
	names, threshold, ok, err := CenterOfficers(dir)
	if err != nil {
		return nil, err
	}
	if !ok {
		if epoch != "" || present != "" {
			return nil, cli.Usagef("a center with one passphrase (OS1) has no epochs and no officers", "-epoch and -officers are for an OS2 center")
		}
		if _, err := os.Stat(filepath.Join(dir, MasterFile)); errors.Is(err, os.ErrNotExist) {
			return nil, cli.WithHint(fmt.Errorf("%s is not a key center: no %s or %s", dir, MasterFile, CenterFile), "create one with 'keygen init'")
		}
		pass, err := passphrase(stdio, false)
		if err != nil {
			return nil, err
		}
		defer clear(pass)
		return OpenCenter(dir, pass)
	}
	p, err := ReadParams(dir)
	if err != nil {
		return nil, err
	}
	if epoch == "" {
		epoch = p.Epochs.At(time.Now())
	}
	if _, _, err := p.Epochs.Span(epoch); err != nil {
		return nil, cli.WithHint(err, fmt.Sprintf("this center's epochs are %ss, such as %s", p.Epochs.Period, p.Epochs.At(time.Now())))
	}
	if err := p.Epochs.Usable(epoch, time.Now()); err != nil {
		return nil, cli.WithHint(err, "its keys would be refused at load; issue for "+p.Epochs.At(time.Now())+" or later")
	}
	root, err := openOfficers(stdio, dir, names, threshold, present)
	if err != nil {
		return nil, err
	}
	c, err := root.ForEpoch(epoch)
	if err != nil {
		root.Close()
	}
	return c, err
}

// openOfficers opens an OS2 center's root master with its officers'
// passphrases: those named in present (or all in the environment), or
// asked for on the terminal.
func openOfficers(stdio cli.Stdio, dir string, names []string, threshold int, present string) (*Center, error) {
	var want []string
	if present != "" {
		want = strings.Split(present, ",")
	}
	officers, err := officerPassphrases(stdio, names, want, threshold, false)
	if err != nil {
		return nil, err
	}
	defer clearOfficers(officers)
	return openOfficersWith(dir, officers, threshold)
}

func epochNote(c *Center) string {
	if e := c.Epoch(); e != "" {
		return " (epoch " + e + ")"
	}
	return ""
}

// ledgerNote prints the ledger's head after a command appended to it.
func ledgerNote(stdio cli.Stdio, c *Center) {
	if c.ledgerHead != "" {
		fmt.Fprintf(stdio.Err, "keygen: ledger: %d lines, head %s\n", c.ledgerLines, c.ledgerHead)
	}
}

func ledgerHint(err error) error {
	return cli.HintIs(err, ErrLedger, "run 'keygen ledger verify -dir DIR'; nothing is issued while the ledger is broken")
}

func issueBatch(ctx context.Context, c *Center, idsPath, outDir string, stdio cli.Stdio) error {
	data, err := cli.ReadInput(stdio, idsPath, maxIDsFile)
	if err != nil {
		return err
	}
	var list []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), 4096)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		list = append(list, line)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", idsPath, err)
	}
	if len(list) == 0 {
		return fmt.Errorf("%s: no identities", idsPath)
	}
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return err
	}
	bar := progressbar.NewOptions(len(list),
		progressbar.OptionSetWriter(stdio.Err),
		progressbar.OptionSetDescription("issuing"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("keys"),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(stdio.Err) }),
	)
	results, err := c.IssueBatchLogged(ctx, list, outDir, func(BatchResult) { bar.Add(1) })
	bar.Finish()
	if results == nil {
		return ledgerHint(err)
	}
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
			fmt.Fprintf(stdio.Err, "keygen: %s: %s\n", printable(r.Identity), r.Err)
		}
	}
	fmt.Fprintf(stdio.Err, "keygen: issued %d of %d identities into %s%s\n", len(list)-failed, len(list), outDir, epochNote(c))
	if err != nil {
		return ledgerHint(err)
	}
	ledgerNote(stdio, c)
	if failed > 0 {
		if failed == 1 {
			return errors.New("1 identity failed")
		}
		return fmt.Errorf("%d identities failed", failed)
	}
	return nil
}

// printable keeps a hostile identity line from smuggling control bytes into the terminal.
func printable(s string) string {
	s = truncate(s, 220)
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

func cmdParams(args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("keygen", "params", "-dir DIR", stdio, "keygen params -dir center > params.json")
	dir := fs.String("dir", "", "key center directory")
	if err := cli.Parse(fs, args, "dir"); err != nil {
		return err
	}
	p, err := ReadParams(*dir)
	if err != nil {
		return err
	}
	b, _ := p.MarshalJSON()
	fmt.Fprintf(stdio.Out, "%s\n", b)
	return nil
}

func cmdFingerprint(args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet("keygen", "fingerprint", "-key FILE -peer IDENTITY", stdio,
		"keygen fingerprint -key shop.key -peer issuer:bank.example")
	keyPath := fs.String("key", "", "your party key file")
	peer := fs.String("peer", "", "the other party's identity")
	if err := cli.Parse(fs, args, "key", "peer"); err != nil {
		return err
	}
	k, err := keygen.LoadPartyKey(*keyPath)
	if err != nil {
		return err
	}
	defer k.Destroy()
	p, err := suite.Pairwise(k, *peer)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdio.Out, p.Fingerprint())
	return nil
}

// passphrase reads the center passphrase from the environment or, on a
// terminal, from a prompt that does not echo (twice when confirm is set).
func passphrase(stdio cli.Stdio, confirm bool) ([]byte, error) {
	if v, ok := os.LookupEnv(PassphraseEnv); ok {
		return []byte(v), nil
	}
	f, ok := stdio.In.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, cli.WithHint(errors.New("no passphrase: stdin is not a terminal"), "set "+PassphraseEnv)
	}
	fmt.Fprint(stdio.Err, "key center passphrase: ")
	p, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stdio.Err)
	if err != nil {
		return nil, err
	}
	if confirm {
		fmt.Fprint(stdio.Err, "again: ")
		q, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stdio.Err)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(p, q) {
			return nil, errors.New("passphrases differ")
		}
	}
	return p, nil
}

const passphraseHint = "use at least 12 characters, e.g. four or more unrelated words; no common password, name or keyboard run"

// KDFEnv names the variable a test build reads its argon2id cost from:
// "fast" is FastKDF. Production binaries refuse it (see AllowFastKDF).
const KDFEnv = "ORDERSEAL_CENTER_KDF"

// FastKDF is the argon2id cost test centers use: far too cheap to protect
// a real master.
var FastKDF = KDF{Time: 1, Memory: 8 * 1024, Threads: 1}

// AllowFastKDF lets KDFEnv=fast choose FastKDF. Only tests set it, or a
// binary built with -tags orderseal_testkdf (the e2e and cluster
// harnesses' builds); a production binary leaves it false and refuses the
// variable, so no environment can make it seal a master cheaply.
var AllowFastKDF = false

// kdfFromEnv is DefaultKDF, or FastKDF for a test build asked for it.
func kdfFromEnv() (KDF, error) {
	v, ok := os.LookupEnv(KDFEnv)
	switch {
	case !ok:
		return DefaultKDF, nil
	case !AllowFastKDF:
		return KDF{}, cli.WithHint(fmt.Errorf("%s is honoured by test builds only; this binary seals with argon2id t=%d, %d MiB", KDFEnv, DefaultKDF.Time, DefaultKDF.Memory>>10),
			"unset "+KDFEnv)
	case v != "fast":
		return KDF{}, cli.WithHint(fmt.Errorf("%s=%.20q: unknown cost", KDFEnv, v), "the only value is fast")
	}
	return FastKDF, nil
}
