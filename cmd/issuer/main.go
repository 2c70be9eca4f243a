// Command issuer is orderseal's issuer program.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"orderseal/internal/cli"
	"orderseal/issuer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := issuer.Main(ctx, os.Args[1:], cli.OS())
	stop()
	os.Exit(code)
}
