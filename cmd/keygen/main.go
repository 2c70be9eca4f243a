// Command keygen is orderseal's key center.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"orderseal/internal/cli"
	"orderseal/keygen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := keygen.Main(ctx, os.Args[1:], cli.OS())
	stop()
	os.Exit(code)
}
