// Package carrier is the carrier of orderseal (DESIGN.md §6.6): a daemon that
// opens the delivery section of a relayed bundle, books the shipment under an
// S10 tracking number, keeps only a vault token for the destination (an
// inline address is deposited in the vault first, as the carrier's own
// token), sends tracking events back to the merchant through a durable
// outbox, and prints labels by revealing the address from the vault for the
// moment of rendering — the image is written where the operator says and
// stored nowhere else.
package carrier

import (
	"context"

	"orderseal/internal/cli"
	"orderseal/keygen"
	"orderseal/order"
	"orderseal/order/opencli"
	"orderseal/suite/keystore"
)

const prog = "carrier"

// Main is the carrier command.
func Main(ctx context.Context, args []string, stdio cli.Stdio) int {
	command := cli.Bound(ctx, stdio)
	return cli.Dispatch(prog, stdio, args, []cli.Command{
		opencli.Command(prog, order.RoleCarrier, stdio),
		keystore.Command(prog, keygen.RoleCarrier, stdio),
		command("serve", "serve bookings on signed requests and deliver tracking events", cmdServe),
		command("event", "record a tracking event; the daemon delivers it to the merchant", cmdEvent),
		command("label", "print a shipping label (PNG, PDF or ZPL) with the address revealed by the vault", cmdLabel),
		command("shipments", "list shipments (no addresses: the carrier holds none)", cmdShipments),
		command("track", "show a shipment's events and whether each reached the merchant", cmdTrack),
	})
}
