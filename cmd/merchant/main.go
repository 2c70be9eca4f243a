// Command merchant is orderseal's merchant program.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"orderseal/internal/cli"
	"orderseal/merchant"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := merchant.Main(ctx, os.Args[1:], cli.OS())
	stop()
	os.Exit(code)
}
