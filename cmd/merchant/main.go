// Command merchant is orderseal's merchant program: the web node (package
// merchant) and, as "merchant vault", the token vault (package vault), which
// runs as a process of its own.
package main

import (
	"context"

	"orderseal/internal/cli"
	"orderseal/merchant"
	"orderseal/vault"
)

func main() {
	cli.Main(func(ctx context.Context, args []string, stdio cli.Stdio) int {
		return merchant.Main(ctx, args, stdio, cli.Command{Name: "vault",
			Summary: "run and administer the token vault (a separate process)",
			Run:     func(a []string) error { return vault.Command(ctx, "merchant", a, stdio) }})
	})
}
