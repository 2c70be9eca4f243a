// Package issuer is the card issuer of orderseal (DESIGN.md §6.5): it opens the card section and authorizes.
package issuer

import (
	"context"

	"orderseal/internal/cli"
	"orderseal/internal/partycli"
	"orderseal/order"
)

const prog = "issuer"

// Main is the issuer command.
func Main(ctx context.Context, args []string, stdio cli.Stdio) int {
	return cli.Dispatch(prog, stdio, args, []cli.Command{
		{Name: "open", Summary: "open the issuer section of a bundle read from stdin", Run: func(a []string) error {
			return partycli.Open(prog, order.RoleIssuer, a, stdio)
		}},
	})
}
