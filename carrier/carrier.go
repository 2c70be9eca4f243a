// Package carrier is the carrier of orderseal (DESIGN.md §6.6): it opens the delivery section and books shipments.
package carrier

import (
	"context"

	"orderseal/internal/cli"
	"orderseal/internal/partycli"
	"orderseal/order"
)

const prog = "carrier"

// Main is the carrier command.
func Main(ctx context.Context, args []string, stdio cli.Stdio) int {
	return cli.Dispatch(prog, stdio, args, []cli.Command{
		{Name: "open", Summary: "open the carrier section of a bundle read from stdin", Run: func(a []string) error {
			return partycli.Open(prog, order.RoleCarrier, a, stdio)
		}},
	})
}
