// Package merchant is the merchant web node of orderseal (DESIGN.md §6.3–6.4):
// it publishes an order form, takes sealed bundles, opens its own section,
// checks it against the catalog and relays the issuer's and the carrier's
// sections through a durable outbox, asking the vault for the carrier's
// address grant in between. It stores tokens, never card numbers or addresses.
package merchant

import (
	"context"

	"orderseal/internal/cli"
	"orderseal/keygen"
	"orderseal/order"
	"orderseal/order/opencli"
	"orderseal/suite/keystore"
)

const prog = "merchant"

// Main is the merchant command; extra are commands of other packages the
// program also offers (cmd/merchant adds "vault", which runs as a process
// of its own and shares nothing with the web node).
func Main(ctx context.Context, args []string, stdio cli.Stdio, extra ...cli.Command) int {
	command := cli.Bound(ctx, stdio)
	return cli.Dispatch(prog, stdio, args, append([]cli.Command{
		command("serve", "run the web node: order form, intake, status, relays", cmdServe),
		command("catalog", "catalog add|import|list: the products the order form offers", cmdCatalog),
		command("orders", "list orders and their state from the merchant database", cmdOrders),
		command("outbox", "list relay jobs (pending, failed for good, done) with attempts, next attempt and last error; retry re-drives dead letters", cmdOutbox),
		command("capture", "capture ORDER AMOUNT: capture part of an order's authorization (a split shipment), through the outbox", cmdCapture),
		command("refund", "refund ORDER AMOUNT: refund part or all of what was captured, through the outbox", cmdRefund),
		command("audit", "audit order ID | audit consultant ID: who keyed an order, in which session, on which device", cmdAudit),
		command("operator", "operator add|list|remove|unlock: the dashboard's accounts (argon2id passwords, roles viewer and admin)", cmdOperator),
		opencli.Command(prog, order.RoleMerchant, stdio),
		keystore.Command(prog, keygen.RoleMerchant, stdio),
	}, extra...))
}
