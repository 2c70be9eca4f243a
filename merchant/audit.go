package merchant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"text/tabwriter"
	"time"

	"orderseal/internal/cli"
	"orderseal/internal/dsn"
	"orderseal/keygen"
	"orderseal/merchant/api"
	"orderseal/merchant/store"
	"orderseal/order/money"
)

// OrderAudit is what `merchant audit order` reports: who keyed the order, in
// which session and on which device, and everything that happened to it.
type OrderAudit struct {
	api.Status
	Channel   string       `json:"channel"` // "online" or "assisted"
	Sealer    string       `json:"sealer"`  // the cardholder, or the consultant who keyed it
	Issuer    string       `json:"issuer"`
	Received  string       `json:"received"` // RFC 3339
	Session   *api.Session `json:"session,omitempty"`
	BuyerName string       `json:"buyer_name,omitempty"`
}

// SessionAudit is one login of a consultant with the orders keyed in it.
type SessionAudit struct {
	api.Session
	Orders []api.Status `json:"orders"`
}

// openAudited opens an existing merchant database read-only: an audit never
// creates or changes one.
func openAudited(ctx context.Context, dsnString string) (store.Reader, error) {
	st, err := OpenReader(ctx, dsnString)
	db := dsn.Redact(dsnString)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, cli.WithHint(fmt.Errorf("merchant database %s: %w", db, err), "pass the database 'merchant serve -db' uses")
	case errors.Is(err, store.ErrNotMigrated):
		return nil, cli.WithHint(fmt.Errorf("merchant database %s: %w", db, err), "run 'merchant serve -db "+db+"' once so it upgrades the database")
	case err != nil:
		return nil, fmt.Errorf("merchant database %s: %w", db, err)
	}
	return st, nil
}

func cmdAudit(ctx context.Context, args []string, stdio cli.Stdio) error {
	p := prog + " audit"
	code := cli.Dispatch(p, stdio, args, []cli.Command{
		{Name: "order", Summary: "an order's channel, consultant, session, device, login time and full timeline", Run: func(a []string) error {
			fs := cli.FlagSet(p, "order", "-db FILE [-json] ORDER", stdio, p+" order -db merchant.db ord_…")
			db := fs.String("db", "", "the merchant database")
			asJSON := fs.Bool("json", false, "JSON output")
			if err := parseArgs(fs, a, 1, "one order id", "db"); err != nil {
				return err
			}
			st, err := openAudited(ctx, *db)
			if err != nil {
				return err
			}
			defer st.Close()
			au, err := auditOrder(ctx, st, fs.Arg(0), time.Now())
			if err != nil {
				return err
			}
			if *asJSON {
				return json.NewEncoder(stdio.Out).Encode(au)
			}
			return writeOrderAudit(stdio, au)
		}},
		{Name: "consultant", Summary: "a consultant's sessions, each with the orders keyed in it", Run: func(a []string) error {
			fs := cli.FlagSet(p, "consultant", "-db FILE [-json] CONSULTANT", stdio, p+" consultant -db merchant.db consultant:carol")
			db := fs.String("db", "", "the merchant database")
			asJSON := fs.Bool("json", false, "JSON output")
			if err := parseArgs(fs, a, 1, "one consultant identity", "db"); err != nil {
				return err
			}
			id := fs.Arg(0)
			if err := keygen.ValidateIdentity(id); err != nil || keygen.RoleOf(id) != keygen.RoleConsultant {
				return cli.Usagef("name a consultant as consultant:NAME", "%.80q is not a consultant identity", id)
			}
			st, err := openAudited(ctx, *db)
			if err != nil {
				return err
			}
			defer st.Close()
			sessions, err := auditConsultant(ctx, st, id, time.Now())
			if err != nil {
				return err
			}
			if *asJSON {
				return json.NewEncoder(stdio.Out).Encode(sessions)
			}
			return writeConsultantAudit(stdio, id, sessions)
		}},
	})
	if code != cli.ExitOK {
		return &cli.Error{Err: cli.ErrReported, Code: code}
	}
	return nil
}

func auditOrder(ctx context.Context, st store.Reader, id string, now time.Time) (*OrderAudit, error) {
	o, err := st.Get(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, cli.WithHint(fmt.Errorf("no order %.80q", id), "list orders with 'merchant orders -db FILE'")
	}
	if err != nil {
		return nil, err
	}
	tl, err := st.Timeline(ctx, o.ID)
	if err != nil {
		return nil, err
	}
	au := &OrderAudit{Status: statusOf(o, tl), Channel: "online", Sealer: o.Cardholder, Issuer: o.Issuer,
		Received: o.Created.Format(time.RFC3339), BuyerName: o.BuyerName}
	if o.Session != "" {
		sess, err := st.Session(ctx, o.Session)
		if err != nil {
			return nil, fmt.Errorf("order %s names session %s: %w", o.ID, o.Session, err)
		}
		v := sessionView(sess, now)
		au.Channel, au.Session = "assisted", &v
	}
	return au, nil
}

func auditConsultant(ctx context.Context, st store.Reader, id string, now time.Time) ([]SessionAudit, error) {
	sessions, err := st.Sessions(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make([]SessionAudit, 0, len(sessions))
	for _, sess := range sessions {
		orders, err := st.SessionOrders(ctx, sess.ID)
		if err != nil {
			return nil, err
		}
		sa := SessionAudit{Session: sessionView(sess, now), Orders: make([]api.Status, 0, len(orders))}
		for _, o := range orders {
			sa.Orders = append(sa.Orders, statusOf(o, nil))
		}
		out = append(out, sa)
	}
	return out, nil
}

func writeOrderAudit(stdio cli.Stdio, au *OrderAudit) error {
	tw := tabwriter.NewWriter(stdio.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "order\t%s\n", au.OrderID)
	fmt.Fprintf(tw, "state\t%s\n", au.State)
	if au.Reason != "" {
		fmt.Fprintf(tw, "reason\t%s\n", au.Reason)
	}
	fmt.Fprintf(tw, "total\t%s\n", money.Show(au.Total, au.Currency))
	fmt.Fprintf(tw, "channel\t%s\n", au.Channel)
	fmt.Fprintf(tw, "received\t%s\n", au.Received)
	fmt.Fprintf(tw, "issuer\t%s\n", au.Issuer)
	if au.Session != nil {
		fmt.Fprintf(tw, "consultant\t%s\n", au.Session.Consultant)
		fmt.Fprintf(tw, "company\t%s\n", au.Session.Company)
		fmt.Fprintf(tw, "session\t%s\n", au.Session.Session)
		fmt.Fprintf(tw, "device\t%s\n", au.Session.Device)
		fmt.Fprintf(tw, "login\t%s\n", au.Session.Created)
		fmt.Fprintf(tw, "shift ends\t%s\n", au.Session.Expires)
		fmt.Fprintf(tw, "session state\t%s\n", au.Session.State)
		if au.Session.Ended != "" {
			fmt.Fprintf(tw, "session ended\t%s\n", au.Session.Ended)
		}
	} else {
		fmt.Fprintf(tw, "cardholder\t%s\n", au.Sealer)
	}
	if au.AuthCode != "" {
		fmt.Fprintf(tw, "auth code\t%s\n", au.AuthCode)
	}
	if au.Tracking != "" {
		fmt.Fprintf(tw, "tracking\t%s %s\n", au.Carrier, au.Tracking)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(stdio.Out, "timeline:")
	tw = tabwriter.NewWriter(stdio.Out, 2, 4, 2, ' ', 0)
	for _, e := range au.Timeline {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", e.At, e.State, e.Detail)
	}
	return tw.Flush()
}

func writeConsultantAudit(stdio cli.Stdio, id string, sessions []SessionAudit) error {
	if len(sessions) == 0 {
		fmt.Fprintf(stdio.Err, "%s audit: %s has no sessions\n", prog, id)
		return nil
	}
	for i, sa := range sessions {
		if i > 0 {
			fmt.Fprintln(stdio.Out)
		}
		end := sa.Expires
		if sa.Ended != "" {
			end = sa.Ended
		}
		fmt.Fprintf(stdio.Out, "session %s  %s  device %s  company %s  login %s  until %s  %d orders\n",
			sa.Session.Session, sa.State, sa.Device, sa.Company, sa.Created, end, len(sa.Orders))
		if len(sa.Orders) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(stdio.Out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ORDER\tSTATE\tREASON\tTOTAL\tAUTH\tTRACKING")
		for _, o := range sa.Orders {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", o.OrderID, o.State, dash(o.Reason), money.Show(o.Total, o.Currency), dash(o.AuthCode), dash(o.Tracking))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}
