package cardholder

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"text/tabwriter"
	"time"

	"orderseal/internal/cli"
	"orderseal/keygen"
	"orderseal/order"
	"orderseal/order/address"
	"orderseal/suite"
	"orderseal/vault/api"
)

// cmdAddress is "cardholder address add|list|show": the cardholder's own
// entries in the vault (DESIGN.md §6.2).
func cmdAddress(ctx context.Context, args []string, stdio cli.Stdio) error {
	sub := cli.Dispatch(prog+" address", stdio, args, []cli.Command{
		{Name: "add", Summary: "register an address (or phone, email, id) in the vault and print its token", Run: func(a []string) error { return addressAdd(ctx, a, stdio) }},
		{Name: "list", Summary: "list your tokens with their labels (no personal data)", Run: func(a []string) error { return addressList(ctx, a, stdio) }},
		{Name: "show", Summary: "reveal one of your own tokens", Run: func(a []string) error { return addressShow(ctx, a, stdio) }},
	})
	if sub != cli.ExitOK {
		return &cli.Error{Err: cli.ErrReported, Code: sub}
	}
	return nil
}

// vaultFlags are shared by the address subcommands.
type vaultFlags struct{ key, url, id *string }

func addVaultFlags(fs interface {
	String(name, value, usage string) *string
}) vaultFlags {
	return vaultFlags{
		key: fs.String("key", "", "your cardholder key file"),
		url: fs.String("vault-url", "", "vault base URL, e.g. http://127.0.0.1:8443"),
		id:  fs.String("vault", "", "vault identity, e.g. vault:vault.shop.example"),
	}
}

func (v vaultFlags) client() (*api.Client, *keygen.PartyKey, error) {
	key, err := suite.LoadKey(*v.key, "", time.Now())
	if err != nil {
		return nil, nil, err
	}
	c, err := api.NewClient(suite.NewKeys(key, 4), *v.url, *v.id, &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		key.Destroy()
		return nil, nil, err
	}
	return c, key, nil
}

func addressAdd(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "address add", "-key FILE -vault-url URL -vault ID -label LABEL (-file ADDRESS.json | -type phn -value V)", stdio,
		"cardholder address add -key alice.key -vault-url http://127.0.0.1:8443 -vault vault:vault.shop.example -label home -file home.json",
		"cardholder address add ... -label mobile -type phn -value +4915112345678",
		"cardholder address add ... -label mobile -type phn -value 010-1234-5678 -region KR")
	vf := addVaultFlags(fs)
	label := fs.String("label", "", "your name for this entry (not personal data)")
	file := fs.String("file", "", "address JSON ('-' for stdin): name, line1, line2, city, region, postal_code, country")
	typ := fs.String("type", api.TypeAddress, "adr (address), phn (phone), eml (email), nid (national id)")
	value := fs.String("value", "", "the value, for types other than adr")
	shareable := fs.Bool("shareable", false, "let other cardholders ship to this token (a gift address)")
	region := fs.String("region", "", "the country (ISO 3166-1, e.g. KR) a phone number without +CC is read in")
	if err := cli.Parse(fs, args, "key", "vault-url", "vault", "label"); err != nil {
		return err
	}
	var raw []byte
	switch {
	case *typ == api.TypeAddress && *file != "":
		data, err := cli.ReadInput(stdio, *file, api.MaxValueSize)
		if err != nil {
			return err
		}
		raw = data
	case *typ == api.TypePhone && *value != "":
		// National forms are read in -region's plan here; the vault takes E.164.
		p, err := address.Phone(*value, *region)
		if err != nil {
			return cli.WithHint(err, "give the number with its country code (+82 10-1234-5678) or pass -region")
		}
		raw = []byte(p)
	case *typ != api.TypeAddress && *value != "":
		raw = []byte(*value)
	default:
		return cli.Usagef("addresses come from -file, other types from -value", "nothing to register")
	}
	norm, err := api.Normalize(*typ, raw)
	clear(raw)
	if err != nil {
		if code := address.CodeOf(err); code != "" {
			return cli.WithHint(fmt.Errorf("%s (%s)", err, code), addressHint(code))
		}
		return err
	}
	defer clear(norm)
	c, key, err := vf.client()
	if err != nil {
		return err
	}
	defer key.Destroy()
	res, err := c.Register(ctx, *typ, *label, *shareable, norm)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdio.Out, res.Token)
	if !res.Created {
		fmt.Fprintf(stdio.Err, "%s: already registered: the vault returned your existing token\n", prog)
	}
	return nil
}

// addressHint says how to fix an address the country's rules refuse.
func addressHint(code string) string {
	switch code {
	case address.CodePostcodeInvalid, address.CodePostcodeMissing, address.CodePostcodeForeign:
		return "postal_code must be the destination country's format; check country and postal_code"
	case address.CodeRegionMissing, address.CodeRegionUnknown:
		return "region must name the prefecture, province or state (e.g. 東京都, 서울특별시, CA)"
	case address.CodePhoneInvalid:
		return "give the number with its country code (+82 10-1234-5678) or pass -region"
	}
	return "the file needs name, line1, city and country (ISO 3166-1, e.g. KR), without control characters"
}

func addressList(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "address list", "-key FILE -vault-url URL -vault ID [-json]", stdio)
	vf := addVaultFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := cli.Parse(fs, args, "key", "vault-url", "vault"); err != nil {
		return err
	}
	c, key, err := vf.client()
	if err != nil {
		return err
	}
	defer key.Destroy()
	entries, err := c.List(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		out, _ := json.MarshalIndent(entries, "", "  ")
		fmt.Fprintf(stdio.Out, "%s\n", out)
		return nil
	}
	tw := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOKEN\tTYPE\tLABEL\tSHAREABLE\tCREATED\tREPLACED BY")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\n", e.Token, e.Type, e.Label, e.Shareable, e.Created, e.ReplacedBy)
	}
	return tw.Flush()
}

func addressShow(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "address show", "-key FILE -vault-url URL -vault ID -token TOKEN", stdio)
	vf := addVaultFlags(fs)
	token := fs.String("token", "", "one of your tokens")
	if err := cli.Parse(fs, args, "key", "vault-url", "vault", "token"); err != nil {
		return err
	}
	c, key, err := vf.client()
	if err != nil {
		return err
	}
	defer key.Destroy()
	v, err := c.RevealOwn(ctx, *token)
	if err != nil {
		return err
	}
	defer clear(v)
	var a order.Address
	if json.Unmarshal(v, &a) == nil && a.Line1 != "" {
		out, _ := json.MarshalIndent(a, "", "  ")
		fmt.Fprintf(stdio.Out, "%s\n", out)
		return nil
	}
	fmt.Fprintf(stdio.Out, "%s\n", v)
	return nil
}
