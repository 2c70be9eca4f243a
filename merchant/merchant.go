// Package merchant is the merchant node of orderseal (DESIGN.md §6.4): it opens its own section and relays the others.
package merchant

import (
	"context"

	"orderseal/internal/cli"
	"orderseal/internal/partycli"
	"orderseal/order"
	"orderseal/vault"
)

const prog = "merchant"

// Main is the merchant command.
func Main(ctx context.Context, args []string, stdio cli.Stdio) int {
	return cli.Dispatch(prog, stdio, args, []cli.Command{
		{Name: "open", Summary: "open the merchant section of a bundle read from stdin", Run: func(a []string) error {
			return partycli.Open(prog, order.RoleMerchant, a, stdio)
		}},
		{Name: "vault", Summary: "run and administer the token vault (a separate process)", Run: func(a []string) error {
			return vault.Command(ctx, prog, a, stdio)
		}},
	})
}
