package center

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"orderseal/internal/cli"
	"orderseal/internal/secfile"
	"orderseal/keygen"
	"orderseal/suite/keystore"
	"orderseal/suite/os2"
)

// OfficerPassphrasesEnv names the variable the key center reads officers'
// passphrases from when no terminal is at hand: one officer per line,
// "name=passphrase". The name ends at the first '='; the passphrase is
// the rest of the line, byte for byte ('=' and ',' included; no newline).
// Empty lines are skipped; a line without '=', a carriage return, an
// empty passphrase or an officer named twice is refused. In a shell:
//
//	ORDERSEAL_OFFICER_PASSPHRASES=$'alice=first passphrase\nbob=second one'
const OfficerPassphrasesEnv = "ORDERSEAL_OFFICER_PASSPHRASES"

// parseOfficerPassphrases reads OfficerPassphrasesEnv's value. Its errors
// name lines and officers, never a passphrase.
func parseOfficerPassphrases(s string) ([]Officer, error) {
	var out []Officer
	for i, line := range strings.Split(s, "\n") {
		if line == "" {
			continue
		}
		n := i + 1
		if strings.ContainsRune(line, '\r') {
			return nil, fmt.Errorf("%s line %d: carriage return (write one name=passphrase per line, \\n-separated)", OfficerPassphrasesEnv, n)
		}
		name, pass, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s line %d: no '=' between officer and passphrase", OfficerPassphrasesEnv, n)
		}
		if !ValidOfficerName(name) {
			return nil, fmt.Errorf("%s line %d: not an officer name before '='", OfficerPassphrasesEnv, n)
		}
		if pass == "" {
			return nil, fmt.Errorf("%s line %d: officer %s has an empty passphrase", OfficerPassphrasesEnv, n, name)
		}
		if slices.ContainsFunc(out, func(o Officer) bool { return o.Name == name }) {
			return nil, fmt.Errorf("%s line %d: officer %s given twice", OfficerPassphrasesEnv, n, name)
		}
		out = append(out, Officer{Name: name, Passphrase: []byte(pass)})
	}
	return out, nil
}

func clearOfficers(officers []Officer) {
	for _, o := range officers {
		clear(o.Passphrase)
	}
}

// officerPassphrases gathers officers' passphrases from the environment
// or, on a terminal, from prompts that do not echo. At init (confirm),
// every officer of names gives one, twice at a prompt. Otherwise the
// officers of want give theirs; with want empty, those in the environment,
// or at the prompts each officer in turn until threshold have.
func officerPassphrases(stdio cli.Stdio, names, want []string, threshold int, confirm bool) ([]Officer, error) {
	if confirm {
		want = names
	}
	for _, w := range want {
		if !slices.Contains(names, w) {
			return nil, cli.Usagef("the officers are "+strings.Join(names, ", "), "%.40q is not an officer of this center", w)
		}
	}
	if v, ok := os.LookupEnv(OfficerPassphrasesEnv); ok {
		all, err := parseOfficerPassphrases(v)
		if err != nil {
			return nil, err
		}
		if len(want) == 0 {
			return all, nil
		}
		var out []Officer
		for _, w := range want {
			i := slices.IndexFunc(all, func(o Officer) bool { return o.Name == w })
			if i < 0 {
				clearOfficers(all)
				return nil, cli.WithHint(fmt.Errorf("%s has no passphrase for officer %s", OfficerPassphrasesEnv, w),
					"one line name=passphrase per officer")
			}
			out = append(out, all[i])
		}
		return out, nil
	}
	f, ok := stdio.In.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, cli.WithHint(errors.New("no officer passphrases: stdin is not a terminal"),
			"set "+OfficerPassphrasesEnv+" to one line name=passphrase per officer")
	}
	ask := func(prompt string) ([]byte, error) {
		fmt.Fprint(stdio.Err, prompt)
		p, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stdio.Err)
		return p, err
	}
	var out []Officer
	if len(want) > 0 {
		for _, w := range want {
			p, err := ask("passphrase of officer " + w + ": ")
			if err != nil {
				clearOfficers(out)
				return nil, err
			}
			if confirm {
				q, err := ask("again, officer " + w + ": ")
				if err != nil {
					clearOfficers(out)
					return nil, err
				}
				same := bytes.Equal(p, q)
				clear(q)
				if !same {
					clearOfficers(out)
					return nil, fmt.Errorf("officer %s: passphrases differ", w)
				}
			}
			out = append(out, Officer{Name: w, Passphrase: p})
		}
		return out, nil
	}
	fmt.Fprintf(stdio.Err, "keygen: %d of the officers %s must give their passphrases\n", threshold, strings.Join(names, ", "))
	for _, n := range names {
		if len(out) == threshold {
			break
		}
		p, err := ask("passphrase of officer " + n + " (empty if absent): ")
		if err != nil {
			clearOfficers(out)
			return nil, err
		}
		if len(p) > 0 {
			out = append(out, Officer{Name: n, Passphrase: p})
		}
	}
	return out, nil
}

// officerNames reads -officers at init: names, or a count N for officer1…officerN.
func officerNames(s string) ([]string, error) {
	if s == "" {
		return nil, cli.Usagef("for example -officers alice,bob,carol -threshold 2", "an OS2 center needs -officers and -threshold")
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < MinThreshold || n > MaxOfficers {
			return nil, cli.Usagef("the master is split among 2 to 32 officers", "-officers %d is out of range", n)
		}
		out := make([]string, n)
		for i := range out {
			out[i] = "officer" + strconv.Itoa(i+1)
		}
		return out, nil
	}
	return strings.Split(s, ","), nil
}

func initOfficers(stdio cli.Stdio, dir string, k int, officersFlag string, threshold int, ep *keygen.Epochs) error {
	names, err := officerNames(officersFlag)
	if err != nil {
		return err
	}
	if threshold == 0 {
		return cli.Usagef(fmt.Sprintf("for example -threshold %d: that many of the %d officers must come to issue", len(names)/2+1, len(names)), "-threshold is required with -officers")
	}
	// Check names and threshold before anyone types a passphrase.
	probe := make([]Officer, len(names))
	for i, n := range names {
		probe[i] = Officer{Name: n, Passphrase: []byte("Kq7#vT2m@pL9zR4w")} // strong, so only names and threshold are judged
	}
	if err := checkOfficers(probe, threshold); err != nil {
		return cli.WithHint(err, "officers are named like alice,bob,carol; the threshold is between 2 and their number")
	}
	officers, err := officerPassphrases(stdio, names, nil, threshold, true)
	if err != nil {
		return err
	}
	defer clearOfficers(officers)
	kdf, err := kdfFromEnv()
	if err != nil {
		return err
	}
	c, err := InitOfficers(dir, k, officers, threshold, InitOptions{KDF: kdf, Epochs: ep})
	if errors.Is(err, ErrWeakPassphrase) {
		return cli.WithHint(err, passphraseHint)
	}
	if err != nil {
		if errors.Is(err, ErrCenterExists) {
			return cli.WithHint(err, "choose another -dir; a key center is never overwritten")
		}
		return cli.HintIs(err, keygen.ErrParams, "-epoch is month or day; -grace at most "+keygen.MaxGrace.String())
	}
	defer c.Close()
	p := c.Params()
	fmt.Fprintf(stdio.Err, "keygen: key center ready in %s (suite %s, system %s, k=%d per %s, grace %s)\n",
		dir, p.Suite, p.SystemHex(), p.K, p.Epochs.Period, p.Epochs.Grace)
	fmt.Fprintf(stdio.Err, "keygen: the master is split among %s; %d of them must come to issue; each keeps %s\n",
		strings.Join(names, ", "), threshold, OfficerFile("NAME"))
	return nil
}

func cmdDirectory(args []string, stdio cli.Stdio) error {
	if len(args) == 0 || args[0] != "sign" {
		hint := "usage: keygen directory sign -dir DIR -id IDENTITY -epoch E -public-key FILE -out ENTRY.json"
		if len(args) == 0 {
			return cli.Usagef(hint, "keygen directory needs a subcommand: sign")
		}
		return cli.Usagef(hint, "unknown directory command %.32q", args[0])
	}
	fs := cli.FlagSet("keygen", "directory sign", "-dir DIR (-request KEM.PUB.JSON | -id IDENTITY [-epoch E] -public-key FILE) -out ENTRY.json [-not-after RFC3339] [-officers NAMES]", stdio,
		"keygen directory sign -dir center -request keys/2026-12/kem.pub.json -out shop-2026-12.entry.json",
		"keygen directory sign -dir center -id merchant:shop.example -epoch 2026-12 -public-key shop-2026-12.pub -out shop-2026-12.entry.json")
	dir := fs.String("dir", "", "key center directory (OS2)")
	id := fs.String("id", "", "the receiving party's identity, role:name")
	epoch := fs.String("epoch", "", "the epoch the key is for (default: the current one)")
	pkPath := fs.String("public-key", "", "the party's X-Wing public key: 1216 bytes, or their base64 ('-' for stdin)")
	reqPath := fs.String("request", "", "the party's request, as '<role> keys new-epoch' writes it: identity, epoch and public key in one file")
	out := fs.String("out", "", "entry file to create (never overwritten; '-' for stdout)")
	notAfter := fs.String("not-after", "", "RFC 3339 time the entry expires (default: the epoch's end plus grace)")
	present := fs.String("officers", "", "the officers who open the master (default: those in "+OfficerPassphrasesEnv+", or prompts)")
	if err := cli.Parse(fs, args[1:], "dir", "out"); err != nil {
		return err
	}
	var reqKey []byte
	switch {
	case *reqPath != "" && (*id != "" || *pkPath != "" || *epoch != ""):
		return cli.Usagef("give -request alone, or -id, -epoch and -public-key", "-request names the identity, epoch and key itself")
	case *reqPath != "":
		data, err := cli.ReadInput(stdio, *reqPath, 16<<10)
		if err != nil {
			return err
		}
		req, pk, err := keystore.ParseRequest(data)
		if err != nil {
			return cli.WithHint(fmt.Errorf("%s: %w", *reqPath, err), "the request is the kem.pub.json that '<role> keys new-epoch' wrote")
		}
		*id, *epoch, reqKey = req.Identity, req.Epoch, pk
	case *id == "" || *pkPath == "":
		return cli.Usagef("give -request FILE, or -id and -public-key", "the entry needs the party's identity and public key")
	}
	if err := keygen.ValidateIdentity(*id); err != nil {
		return cli.WithHint(err, "identities look like merchant:shop.example")
	}
	names, threshold, ok, err := CenterOfficers(*dir)
	if err != nil {
		return err
	}
	if !ok {
		return cli.WithHint(fmt.Errorf("%s has no directory: not an OS2 center", *dir), "directory entries are signed by a center made with 'keygen init -officers …'")
	}
	p, err := ReadParams(*dir)
	if err != nil {
		return err
	}
	now := time.Now()
	if *epoch == "" {
		*epoch = p.Epochs.At(now)
	}
	_, end, err := p.Epochs.Span(*epoch)
	if err != nil {
		return cli.WithHint(err, fmt.Sprintf("this center's epochs are %ss, such as %s", p.Epochs.Period, p.Epochs.At(now)))
	}
	limit := end.Add(p.Epochs.Grace).UTC().Truncate(time.Second)
	na := limit
	if *notAfter != "" {
		if na, err = time.Parse(time.RFC3339, *notAfter); err != nil {
			return cli.Usagef("for example -not-after "+limit.Format(time.RFC3339), "-not-after: not an RFC 3339 time")
		}
		na = na.UTC()
		if na.After(limit) {
			return cli.WithHint(fmt.Errorf("-not-after %s is past epoch %s's end plus grace (%s)", na.Format(time.RFC3339), *epoch, limit.Format(time.RFC3339)),
				"parties destroy an epoch's KEM secret after its grace; an entry cannot outlive it")
		}
	}
	if !na.After(now) {
		return cli.WithHint(fmt.Errorf("the entry would expire at %s, in the past", na.Format(time.RFC3339)), "sign for the current epoch or a later one")
	}
	pk := reqKey
	if pk == nil {
		if pk, err = readKEMPublicKey(stdio, *pkPath); err != nil {
			return err
		}
	}
	if *out != "-" {
		if _, err := os.Lstat(*out); err == nil {
			return cli.WithHint(fmt.Errorf("%s already exists", *out), "entry files are never overwritten; choose another -out")
		}
	}
	var want []string
	if *present != "" {
		want = strings.Split(*present, ",")
	}
	officers, err := officerPassphrases(stdio, names, want, threshold, false)
	if err != nil {
		return err
	}
	c, err := openOfficersWith(*dir, officers, threshold)
	clearOfficers(officers)
	if err != nil {
		return err
	}
	defer c.Close()
	e, err := c.SignEntry(*id, *epoch, pk, na)
	if err != nil {
		return ledgerHint(cli.HintIs(err, os2.ErrKEMKey, "the public key must be an X-Wing public key (1216 bytes)"))
	}
	b, _ := json.Marshal(e)
	b = append(b, '\n')
	if *out == "-" {
		stdio.Out.Write(b)
	} else if err := secfile.WriteNewMode(*out, b, 0o644); err != nil {
		return fmt.Errorf("entry signed and recorded, but not written: %w", err)
	}
	fmt.Fprintf(stdio.Err, "keygen: signed the directory entry of %s for epoch %s, until %s\n", *id, *epoch, na.Format(time.RFC3339))
	ledgerNote(stdio, c)
	return nil
}

// openOfficersWith is openOfficers for passphrases already gathered.
func openOfficersWith(dir string, officers []Officer, threshold int) (*Center, error) {
	c, err := OpenOfficers(dir, officers)
	if err == nil {
		return c, nil
	}
	switch {
	case errors.Is(err, ErrSharePassphrase):
		return nil, cli.WithHint(err, "that officer's passphrase is wrong, or the share file was altered")
	case errors.Is(err, ErrOfficers):
		return nil, cli.WithHint(err, fmt.Sprintf("give %d officers' passphrases in %s (name=passphrase, one per line) or at the prompts", threshold, OfficerPassphrasesEnv))
	case errors.Is(err, ErrForeignShare), errors.Is(err, ErrShare):
		return nil, cli.WithHint(err, "each officer's file must be the one 'keygen init' wrote for this center")
	}
	return nil, err
}

// readKEMPublicKey reads an X-Wing public key: its 1216 bytes, or their
// base64 (standard or URL alphabet, padded or not) with surrounding space.
// The two cannot be confused: the base64 of 1216 bytes is 1622 characters
// or more.
func readKEMPublicKey(stdio cli.Stdio, path string) ([]byte, error) {
	data, err := cli.ReadInput(stdio, path, 4096)
	if err != nil {
		return nil, err
	}
	if len(data) == os2.KEMPublicKey {
		return data, nil
	}
	text := strings.TrimSpace(string(data))
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if b, err := enc.Strict().DecodeString(text); err == nil && len(b) == os2.KEMPublicKey {
			return b, nil
		}
	}
	return nil, cli.WithHint(fmt.Errorf("%s: not an X-Wing public key", path), "give the key's 1216 bytes, or their base64")
}

func cmdLedger(args []string, stdio cli.Stdio) error {
	if len(args) == 0 || args[0] != "verify" {
		hint := "usage: keygen ledger verify -dir DIR"
		if len(args) == 0 {
			return cli.Usagef(hint, "keygen ledger needs a subcommand: verify")
		}
		return cli.Usagef(hint, "unknown ledger command %.32q", args[0])
	}
	fs := cli.FlagSet("keygen", "ledger verify", "-dir DIR [-json]", stdio, "keygen ledger verify -dir center")
	dir := fs.String("dir", "", "key center directory (OS2)")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	if err := cli.Parse(fs, args[1:], "dir"); err != nil {
		return err
	}
	s, err := VerifyLedger(*dir)
	if err != nil {
		return cli.HintIs(err, ErrLedger, "the ledger was altered, cut or left unsigned; compare it with a copy, and its head with one recorded before")
	}
	head := hex.EncodeToString(s.Head[:])
	if *asJSON {
		b, _ := json.Marshal(map[string]any{"lines": s.Lines, "issued": s.Issued, "directory": s.Directory,
			"checkpoints": s.Checkpoints, "head": head, "last": s.Last.Format(time.RFC3339Nano)})
		fmt.Fprintf(stdio.Out, "%s\n", b)
		return nil
	}
	fmt.Fprintf(stdio.Out, "ledger ok: %d lines (%d keys issued, %d directory entries, %d checkpoints), last %s\nhead %s\n",
		s.Lines, s.Issued, s.Directory, s.Checkpoints, s.Last.Format(time.RFC3339), head)
	return nil
}
