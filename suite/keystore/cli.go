package keystore

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"orderseal/internal/cli"
	"orderseal/keygen"
	"orderseal/suite"
)

// Command is the `keys` command every receiving party's program has
// (merchant, issuer, carrier, merchant vault): new-epoch, entry, prune, list.
func Command(prog string, role keygen.Role, stdio cli.Stdio) cli.Command {
	p := prog + " keys"
	return cli.Command{Name: "keys", Summary: "new-epoch | entry | prune | list: the party's keys per epoch (OS2)", Run: func(args []string) error {
		code := cli.Dispatch(p, stdio, args, []cli.Command{
			{Name: "new-epoch", Summary: "install an epoch's party key, make its KEM key pair, write the request to sign", Run: func(a []string) error { return cmdNewEpoch(p, role, a, stdio) }},
			{Name: "entry", Summary: "check and install the key center's signed directory entry", Run: func(a []string) error { return cmdEntry(p, a, stdio) }},
			{Name: "prune", Summary: "destroy the KEM secrets of epochs past their grace", Run: func(a []string) error { return cmdPrune(p, a, stdio) }},
			{Name: "list", Summary: "list the keystore's epochs", Run: func(a []string) error { return cmdList(p, a, stdio) }},
		})
		if code != cli.ExitOK {
			return &cli.Error{Err: cli.ErrReported, Code: code}
		}
		return nil
	}}
}

func cmdNewEpoch(p string, role keygen.Role, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(p, "new-epoch", "-keys DIR -key ISSUED.key > request.json", stdio,
		p+" new-epoch -keys keys/ -key issuer.bank.example.key > request.json")
	dir := fs.String("keys", "", "the keystore directory (created 0700)")
	keyPath := fs.String("key", "", "the party key of the new epoch, as the key center issued it")
	if err := cli.Parse(fs, args, "keys", "key"); err != nil {
		return err
	}
	key, err := suite.LoadKey(*keyPath, role, time.Now())
	if err != nil {
		return cli.HintIs(err, keygen.ErrRole, "issue a "+string(role)+":… key with keygen issue -epoch")
	}
	defer key.Destroy()
	req, err := NewEpoch(*dir, key, rand.Reader)
	if err != nil {
		switch {
		case errors.Is(err, ErrExists):
			return cli.WithHint(err, "an epoch's KEM pair is made once; its entry is installed with '"+p+" entry'")
		case errors.Is(err, ErrNotEpochal):
			return cli.WithHint(err, "OS1 keys need no keystore: pass the key file itself as -key")
		}
		return err
	}
	data, err := os.ReadFile(req)
	if err != nil {
		return err
	}
	stdio.Out.Write(data)
	fmt.Fprintf(stdio.Err, "%s: request written to %s (and to stdout); the key center signs it: keygen directory sign -dir CENTER -request %s -out entry.json\n", p, req, req)
	fmt.Fprintf(stdio.Err, "%s: then install it: %s entry -keys %s -entry entry.json\n", p, p, *dir)
	return nil
}

func cmdEntry(p string, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(p, "entry", "-keys DIR -entry FILE", stdio, p+" entry -keys keys/ -entry entry.json")
	dir := fs.String("keys", "", "the keystore directory")
	entry := fs.String("entry", "", "the signed directory entry ('-' for stdin)")
	if err := cli.Parse(fs, args, "keys", "entry"); err != nil {
		return err
	}
	data, err := cli.ReadInput(stdio, *entry, 16<<10)
	if err != nil {
		return err
	}
	e, err := InstallEntry(*dir, data, time.Now())
	if err != nil {
		return cli.HintIs(err, ErrEntry, "the entry must certify the KEM key of this keystore's epoch, signed by its key center")
	}
	fmt.Fprintf(stdio.Err, "%s: entry of %s for %s installed (valid until %s)\n", p, e.Identity, e.Epoch, e.NotAfter.Format(time.RFC3339))
	return nil
}

func cmdPrune(p string, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(p, "prune", "-keys DIR", stdio, p+" prune -keys keys/")
	dir := fs.String("keys", "", "the keystore directory")
	if err := cli.Parse(fs, args, "keys"); err != nil {
		return err
	}
	pruned, err := Prune(*dir, time.Now())
	if err != nil {
		return err
	}
	for _, e := range pruned {
		fmt.Fprintln(stdio.Out, e)
	}
	fmt.Fprintf(stdio.Err, "%s: %d KEM secret(s) destroyed; their epochs' sections can no longer be opened by anyone\n", p, len(pruned))
	return nil
}

func cmdList(p string, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(p, "list", "-keys DIR [-json]", stdio, p+" list -keys keys/")
	dir := fs.String("keys", "", "the keystore directory")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := cli.Parse(fs, args, "keys"); err != nil {
		return err
	}
	rows, err := List(*dir, time.Now())
	if err != nil {
		return err
	}
	return cli.PrintJSONOrTable(stdio.Out, *asJSON, rows, "EPOCH\tKEY\tKEM\tENTRY UNTIL", "%s\t%s\t%s\t%s\n",
		func(r EpochStatus) []any { return []any{r.Epoch, r.Key, r.KEM, r.EntryUntil} })
}

// EpochStatus is one epoch of a keystore, as List reports it.
type EpochStatus struct {
	Epoch      string `json:"epoch"`
	Key        string `json:"key"`         // "usable", "over", or the reason it does not load
	KEM        string `json:"kem"`         // "present" or "pruned"
	EntryUntil string `json:"entry_until"` // the entry's not_after, or "-"
}

// List reports every epoch folder of dir at now.
func List(dir string, now time.Time) ([]EpochStatus, error) {
	names, err := epochDirs(dir)
	if err != nil {
		return nil, err
	}
	out := make([]EpochStatus, 0, len(names))
	for _, e := range names {
		st := EpochStatus{Epoch: e, Key: "usable", KEM: "pruned", EntryUntil: "-"}
		if k, err := suite.LoadKey(filepath.Join(dir, e, PartyKeyFile), "", now); err != nil {
			st.Key = "over"
			if !errors.Is(err, keygen.ErrEpochOver) {
				st.Key = err.Error()
			}
		} else {
			k.Destroy()
		}
		if _, err := os.Stat(filepath.Join(dir, e, KEMKeyFile)); err == nil {
			st.KEM = "present"
		}
		if en, err := readEntry(filepath.Join(dir, e, EntryFile)); err == nil {
			st.EntryUntil = en.NotAfter.Format(time.RFC3339)
		}
		out = append(out, st)
	}
	return out, nil
}

// Flags are the key flags of a party's daemon: -key (a key file or an OS2
// keystore directory) and, for the move from OS1, -os1-key with
// -accept-os1-until.
type Flags struct {
	key, os1Key, until *string
}

// AddFlags declares the key flags on fs; whose names the party ("the issuer's").
func AddFlags(fs *flag.FlagSet, whose string) *Flags {
	return &Flags{
		key:    fs.String("key", "", whose+" party key file, or its keystore directory (OS2: 'keys new-epoch')"),
		os1Key: fs.String("os1-key", "", whose+" OS1 key file, opened beside an OS2 keystore until -accept-os1-until"),
		until:  fs.String("accept-os1-until", "", "last day (YYYY-MM-DD, UTC) OS1 bundles and requests are accepted; OS1 is refused without it"),
	}
}

// Open opens the keystore the flags name, for role, at now.
func (f *Flags) Open(role keygen.Role, now time.Time) (*Keystore, error) {
	if (*f.os1Key == "") != (*f.until == "") {
		return nil, cli.Usagef("give -os1-key and -accept-os1-until together", "OS1 is accepted only with both -os1-key and -accept-os1-until")
	}
	ks, err := Open(*f.key, role, now)
	if err != nil {
		return nil, cli.HintIs(err, keygen.ErrRole, "issue a "+string(role)+":… key with keygen")
	}
	if *f.os1Key == "" {
		return ks, nil
	}
	day, err := time.Parse(time.DateOnly, *f.until)
	if err != nil {
		ks.Close()
		return nil, cli.Usagef("use -accept-os1-until 2027-03-31", "-accept-os1-until %.40q is not a date", *f.until)
	}
	legacy, err := keygen.LoadRoleKey(*f.os1Key, role)
	if err != nil {
		ks.Close()
		return nil, err
	}
	if err := ks.AcceptLegacy(legacy, day.AddDate(0, 0, 1)); err != nil {
		ks.Close()
		return nil, err
	}
	return ks, nil
}
