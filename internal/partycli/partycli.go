// Package partycli is the offline "open" command that merchant, issuer and
// carrier share: read a bundle, open this party's section, print it.
package partycli

import (
	"encoding/json"
	"fmt"

	"orderseal/internal/cli"
	"orderseal/keygen"
	"orderseal/order"
)

// Open runs "<prog> open -key FILE [-in FILE]" for role.
func Open(prog string, role order.Role, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "open", "-key FILE [-in BUNDLE.json]", stdio,
		prog+" open -key "+string(role)+".key < bundle.json")
	keyPath := fs.String("key", "", "your party key file")
	in := fs.String("in", "-", "bundle JSON ('-' for stdin)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if err := cli.Require(fs, "key"); err != nil {
		return err
	}
	key, err := keygen.LoadPartyKey(*keyPath)
	if err != nil {
		return err
	}
	defer key.Destroy()
	if keygen.RoleOf(key.Identity()) != string(role) {
		return cli.WithHint(fmt.Errorf("%s is a %s key, not a %s key", *keyPath, keygen.RoleOf(key.Identity()), role),
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
