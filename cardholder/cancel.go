package cardholder

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"orderseal/internal/cli"
	"orderseal/suite"
)

// cmdOrderCancel is "cardholder order cancel ORDER": it asks the merchant to
// cancel an order not yet shipped (DESIGN.md §6.8). The merchant voids the
// hold at the issuer and revokes the address grant at the vault; a second
// cancel, or one after shipment, is refused with its own code.
func cmdOrderCancel(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "order cancel", "ORDER -merchant URL -key FILE [-merchant-id ID] [-json]", stdio,
		"cardholder order cancel ord_… -merchant http://127.0.0.1:8080 -key alice.key")
	merchantURL := fs.String("merchant", "", "merchant base URL")
	merchantID := fs.String("merchant-id", "", "pin the merchant identity (default: merchant:HOST of -merchant)")
	keyPath := fs.String("key", "", "your cardholder key file")
	asJSON := fs.Bool("json", false, "JSON output")
	id := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := cli.Parse(fs, args, "merchant", "key"); err != nil {
		return err
	}
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	}
	if id == "" {
		return cli.Usagef("cardholder order cancel ORDER -merchant URL -key FILE", "name the order")
	}
	key, err := suite.LoadKey(*keyPath, "", time.Now())
	if err != nil {
		return err
	}
	defer key.Destroy()
	mc, err := newMerchantClient(suite.NewKeys(key, 4), *merchantURL, *merchantID, &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	st, err := mc.Cancel(ctx, id)
	if err != nil {
		return reachErr("merchant", err)
	}
	if *asJSON {
		return json.NewEncoder(stdio.Out).Encode(st)
	}
	printStatus(stdio.Out, st)
	return nil
}
