// Package opencli is the offline "open" command that merchant, issuer and
// carrier share: read a bundle, open this party's section, print it.
package opencli

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"orderseal/internal/cli"
	"orderseal/keygen"
	"orderseal/order"
	"orderseal/suite/keystore"
)

// Command is the "open" subcommand of prog, for role's command table.
func Command(prog string, role order.Role, stdio cli.Stdio) cli.Command {
	return cli.Command{Name: "open", Summary: "open the " + string(role) + " section of a bundle read from stdin", Run: func(a []string) error {
		return Open(prog, role, a, stdio)
	}}
}

// Open runs "<prog> open -key FILE [-in FILE]" for role.
func Open(prog string, role order.Role, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "open", "-key FILE [-in BUNDLE.json]", stdio,
		prog+" open -key "+string(role)+".key < bundle.json")
	keyPath := fs.String("key", "", "your party key file, or your keystore directory (OS2)")
	in := fs.String("in", "-", "bundle JSON ('-' for stdin)")
	fields := fs.Bool("fields", false, "print only the names of the fields this party can read")
	if err := cli.Parse(fs, args, "key"); err != nil {
		return err
	}
	key, err := keystore.Open(*keyPath, "", time.Now())
	if err != nil {
		return err
	}
	defer key.Close()
	if keygen.RoleOf(key.Identity()) != role {
		return cli.WithHint(fmt.Errorf("%s is the key of %s, which has no %s section to open", *keyPath, key.Identity(), role),
			"use the key the key center issued to this "+string(role))
	}
	data, err := cli.ReadInput(stdio, *in, order.MaxBundleSize)
	if err != nil {
		return err
	}
	b, err := order.ParseBundle(data)
	if err != nil {
		return err
	}
	s, err := order.Open(b, key, role, order.OpenOptions{})
	if err != nil {
		return err
	}
	if *fields {
		return printFields(stdio, s)
	}
	hH := b.HeaderHash()
	out, err := json.MarshalIndent(struct {
		OrderID    string         `json:"order_id"`
		Cardholder string         `json:"cardholder"`
		HeaderHash string         `json:"header_hash"`
		Section    *order.Section `json:"section"`
	}{b.OrderID, b.Cardholder, fmt.Sprintf("%x", hH[:]), s}, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "%s\n", out)
	return nil
}

// printFields lists the content fields present in a section, one line, sorted.
func printFields(stdio cli.Stdio, s *order.Section) error {
	raw, err := json.Marshal(s)
	if err != nil {
		return err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	names := make([]string, 0, len(m))
	for k := range m {
		if k != "role" && k != "salt" && k != "order_id" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	fmt.Fprintln(stdio.Out, strings.Join(names, " "))
	return nil
}
