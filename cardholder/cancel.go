package cardholder

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"orderseal/internal/cli"
	merchantapi "orderseal/merchant/api"
)

// cmdOrderCancel is "cardholder order cancel ORDER": it asks the merchant to
// cancel an order whose parcel has not left (DESIGN.md §6.8), and follows it
// until it is cancelled. The merchant cancels the carrier's booking, revokes
// the address grant at the vault and voids the hold at the issuer; a second
// cancel, or one after the parcel left, is refused with its own code — also
// when the carrier is the one to refuse, after the merchant took the cancel.
func cmdOrderCancel(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "order cancel", "ORDER -merchant URL -key FILE [-merchant-id ID] [-json] [-wait D]", stdio,
		"cardholder order cancel ord_… -merchant http://127.0.0.1:8080 -key alice.key")
	merchantURL := fs.String("merchant", "", "merchant base URL")
	merchantID := fs.String("merchant-id", "", "pin the merchant identity (default: merchant:HOST of -merchant)")
	keyPath := fs.String("key", "", "your cardholder key file")
	asJSON := fs.Bool("json", false, "JSON output")
	wait := fs.Duration("wait", 30*time.Second, "follow the cancel this long until every party has done its part")
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
	mc, key, err := keyedMerchantClient(*keyPath, *merchantURL, *merchantID)
	if err != nil {
		return err
	}
	defer key.Destroy()
	st, err := mc.Cancel(ctx, id)
	if err != nil {
		return reachErr("merchant", err)
	}
	if st.State == merchantapi.StateCancelling && *wait > 0 {
		if st, err = follow(ctx, mc, id, *wait, stdio); err != nil {
			return err
		}
	}
	if *asJSON {
		if err := json.NewEncoder(stdio.Out).Encode(st); err != nil {
			return err
		}
	} else {
		printStatus(stdio.Out, st)
	}
	switch st.State {
	case merchantapi.StateCancelled, merchantapi.StateCancelling:
		return nil
	case merchantapi.StateShipped, merchantapi.StateDelivered:
		return cli.WithHint(fmt.Errorf("the carrier refused the cancel of order %s: the parcel had left (%s)", id, merchantapi.CodeOrderShipped),
			"ask the merchant for a refund")
	}
	return fmt.Errorf("order %s is %s", id, st.State)
}
