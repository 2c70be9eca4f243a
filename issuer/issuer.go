// Package issuer is the card issuer of orderseal (DESIGN.md §6.5): it opens
// the card section of a relayed bundle, checks that the card is enrolled to
// the bundle's cardholder, active, unexpired and in credit, and that the
// amount asked for is the amount the cardholder sealed, then approves (and
// debits) or declines, answering over signed HTTP with the header hash.
// An assisted order (DESIGN.md §6.7), sealed by a merchant's consultant in a
// session the merchant verified, is relayed with that session and needs the
// card's CVC instead of the enrollment binding.
//
// The daemon is "issuer serve" (Server, over package store); "issuer card …"
// enrolls and administers cards and prints each card's CVC once;
// "issuer authorizations" lists the answers; "issuer open" is the offline
// section reader.
package issuer

import (
	"context"

	"orderseal/internal/cli"
	"orderseal/keygen"
	"orderseal/order"
	"orderseal/order/opencli"
	"orderseal/suite/keystore"
)

const prog = "issuer"

// Main is the issuer command.
func Main(ctx context.Context, args []string, stdio cli.Stdio) int {
	return cli.Dispatch(prog, stdio, args, []cli.Command{
		{Name: "init", Summary: "create the card key file (0600)", Run: func(a []string) error { return cmdInit(a, stdio) }},
		{Name: "serve", Summary: "serve the authorization API on signed requests", Run: func(a []string) error { return cmdServe(ctx, a, stdio) }},
		{Name: "card", Summary: "add | list | suspend | activate | close cards", Run: func(a []string) error { return cmdCard(ctx, a, stdio) }},
		{Name: "authorizations", Summary: "list authorizations, newest first (channel, session; no card numbers)", Run: func(a []string) error { return cmdAuthorizations(ctx, a, stdio) }},
		opencli.Command(prog, order.RoleIssuer, stdio),
		keystore.Command(prog, keygen.RoleIssuer, stdio),
	})
}
