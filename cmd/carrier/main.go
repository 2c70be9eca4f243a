// Command carrier is orderseal's carrier program.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"orderseal/carrier"
	"orderseal/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := carrier.Main(ctx, os.Args[1:], cli.OS())
	stop()
	os.Exit(code)
}
