// Command cardholder is orderseal's cardholder program.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"orderseal/cardholder"
	"orderseal/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cardholder.Main(ctx, os.Args[1:], cli.OS())
	stop()
	os.Exit(code)
}
