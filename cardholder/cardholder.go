// Package cardholder is the cardholder's side of orderseal (DESIGN.md §6):
// compose an order, preview who sees what, seal it for the parties.
// It never imports a web framework or a database.
package cardholder

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"orderseal/internal/cli"
	"orderseal/keygen"
	merchantapi "orderseal/merchant/api"
	"orderseal/order"
	"orderseal/suite"
)

const prog = "cardholder"

// Main is the cardholder command.
func Main(ctx context.Context, args []string, stdio cli.Stdio) int {
	return cli.Dispatch(prog, stdio, args, []cli.Command{
		{Name: "seal", Summary: "seal an order for merchant, issuer and carrier (bundle on stdout)", Run: func(a []string) error { return cmdSeal(a, stdio) }},
		{Name: "preview", Summary: "show which party will see which field of an order", Run: func(a []string) error { return cmdPreview(a, stdio) }},
		{Name: "order", Summary: "order from a merchant: compose, seal, submit and follow to a final status; order cancel ORDER before shipment", Run: func(a []string) error { return cmdOrder(ctx, a, stdio) }},
		{Name: "status", Summary: "show an order's status and timeline", Run: func(a []string) error { return cmdStatus(ctx, a, stdio) }},
		{Name: "assisted", Summary: "login|logout|status: a phone consultant's session with a merchant", Run: func(a []string) error { return cmdAssisted(ctx, a, stdio) }},
		{Name: "address", Summary: "register, list and show your entries in the vault", Run: func(a []string) error { return cmdAddress(ctx, a, stdio) }},
	})
}

func loadPolicy(stdio cli.Stdio, path string) (*order.Policy, error) {
	if path == "" {
		return order.DefaultPolicy(), nil
	}
	data, err := cli.ReadInput(stdio, path, order.MaxPolicySize)
	if err != nil {
		return nil, err
	}
	return order.ParsePolicy(data)
}

func loadOrder(stdio cli.Stdio, path string) (*order.Order, error) {
	data, err := cli.ReadInput(stdio, path, order.MaxOrderSize)
	if err != nil {
		return nil, err
	}
	defer clear(data)
	o, err := order.ParseOrder(data)
	if err != nil {
		return nil, err
	}
	return o, nil
}

func cmdSeal(args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "seal", "-key FILE -order ORDER.json -merchant ID -issuer ID -carrier ID [-vault ID]", stdio,
		"cardholder seal -key alice.key -order order/testdata/order.json -merchant merchant:shop.example -issuer issuer:bank.example -carrier carrier:parcel.example > bundle.json")
	keyPath := fs.String("key", "", "your cardholder key file")
	orderPath := fs.String("order", "", "order JSON ('-' for stdin)")
	merchant := fs.String("merchant", "", "merchant identity")
	issuer := fs.String("issuer", "", "card issuer identity")
	carrier := fs.String("carrier", "", "carrier identity")
	vault := fs.String("vault", "", "vault identity (required when the order ships to a vault token)")
	policyPath := fs.String("policy", "", "section policy JSON (default: DESIGN.md §3)")
	orderID := fs.String("order-id", "", "order id (default: fresh random)")
	life := fs.Duration("lifetime", order.DefaultLifetime, "how long the bundle stays valid")
	var dirPaths cli.Strings
	fs.Var(&dirPaths, "directory", "OS2: a file of recipients' directory entries: one entry, a JSON array of them, or an order form (repeatable)")
	if err := cli.Parse(fs, args, "key", "order", "merchant", "issuer", "carrier"); err != nil {
		return err
	}
	var dir []*keygen.DirectoryEntry
	for _, p := range dirPaths {
		entries, err := loadDirectory(stdio, p)
		if err != nil {
			return err
		}
		dir = append(dir, entries...)
	}
	policy, err := loadPolicy(stdio, *policyPath)
	if err != nil {
		return err
	}
	key, err := suite.LoadKey(*keyPath, "", time.Now())
	if err != nil {
		return err
	}
	defer key.Destroy()
	o, err := loadOrder(stdio, *orderPath)
	if err != nil {
		return err
	}
	b, err := order.Seal(o, suite.NewKeys(key, 4), order.Parties{Merchant: *merchant, Issuer: *issuer, Carrier: *carrier, Vault: *vault},
		order.SealOptions{Policy: policy, OrderID: *orderID, Lifetime: *life, Directory: dir})
	if err != nil {
		if o.ShipTo.Token != "" && *vault == "" {
			return cli.WithHint(err, "add -vault vault:… for an order shipped to a vault token")
		}
		return err
	}
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "%s\n", out)
	fmt.Fprintf(stdio.Err, "%s: sealed order %s for %d parties, valid until %s\n", prog, b.OrderID, len(b.Parties), b.ExpiresAt().Format(time.RFC3339))
	return nil
}

func cmdPreview(args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "preview", "-order ORDER.json [-policy FILE]", stdio,
		"cardholder preview -order order/testdata/order.json")
	orderPath := fs.String("order", "", "order JSON ('-' for stdin)")
	policyPath := fs.String("policy", "", "section policy JSON (default: DESIGN.md §3)")
	if err := cli.Parse(fs, args, "order"); err != nil {
		return err
	}
	policy, err := loadPolicy(stdio, *policyPath)
	if err != nil {
		return err
	}
	o, err := loadOrder(stdio, *orderPath)
	if err != nil {
		return err
	}
	if err := o.Validate(time.Now()); err != nil {
		return err
	}
	order.WritePreview(stdio.Out, policy.Preview(o))
	if o.ShipTo.Token != "" {
		fmt.Fprintln(stdio.Out, "vault: the ship-to token, merchant, carrier and order id (a grant for this carrier to print this label)")
	}
	return nil
}

// loadDirectory reads directory entries for an offline seal: one entry, a
// JSON array of them, or an order form carrying them.
func loadDirectory(stdio cli.Stdio, path string) ([]*keygen.DirectoryEntry, error) {
	data, err := cli.ReadInput(stdio, path, 1<<20)
	if err != nil {
		return nil, err
	}
	var one keygen.DirectoryEntry
	if err := json.Unmarshal(data, &one); err == nil {
		return []*keygen.DirectoryEntry{&one}, nil
	}
	var entries []*keygen.DirectoryEntry
	if err := json.Unmarshal(data, &entries); err == nil {
		return entries, nil
	}
	var form merchantapi.OrderForm
	if err := json.Unmarshal(data, &form); err != nil || form.Directory == nil {
		return nil, cli.WithHint(fmt.Errorf("%s holds no directory entries", path), "give an entry file from 'keygen directory sign', a JSON array of entries, or an order form")
	}
	return form.Directory, nil
}
