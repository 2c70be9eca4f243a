package issuer

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"orderseal/internal/cli"
	"orderseal/internal/secfile"
	"orderseal/internal/web"
	"orderseal/issuer/api"
	"orderseal/issuer/store"
	"orderseal/keygen"
	"orderseal/order"
	"orderseal/order/money"
	"orderseal/suite/keystore"
)

// maxNumberInput bounds what "card add" reads as a card number.
const maxNumberInput = 256

func cmdInit(args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "init", "-card-key FILE", stdio, prog+" init -card-key issuer-card.key")
	path := fs.String("card-key", "", "card key file to create")
	if err := cli.Parse(fs, args, "card-key"); err != nil {
		return err
	}
	if _, err := store.CreateCardKey(*path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return cli.WithHint(err, "a card key is never overwritten: the cards sealed under it would be lost")
		}
		return err
	}
	fmt.Fprintf(stdio.Err, "%s: card key written to %s (0600); keep it apart from the database and its backups\n", prog, *path)
	return nil
}

func loadCardKey(path string) (*store.CardKey, error) {
	k, err := store.LoadCardKey(path)
	switch {
	case err == nil:
		return k, nil
	case errors.Is(err, secfile.ErrPermissions):
		return nil, cli.WithHint(err, "chmod 600 "+path)
	case errors.Is(err, os.ErrNotExist):
		return nil, cli.WithHint(err, "create one with '"+prog+" init -card-key "+path+"'")
	}
	return nil, err
}

func openStore(ctx context.Context, db string, key *store.CardKey, mustExist bool) (store.Store, error) {
	st, err := OpenStore(ctx, db, store.Options{CardKey: key, MustExist: mustExist})
	switch {
	case err == nil:
		return st, nil
	case errors.Is(err, store.ErrWrongKey):
		return nil, cli.WithHint(err, "use the card key this database was created with")
	case errors.Is(err, store.ErrNoDatabase):
		return nil, cli.WithHint(err, "'"+prog+" card add' or '"+prog+" serve' creates it")
	}
	return nil, err
}

func cmdServe(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "serve", "-key FILE -db FILE -card-key FILE [-listen ADDR] [-addr-file FILE]", stdio,
		prog+" serve -key bank.key -db issuer.db -card-key issuer-card.key -listen 127.0.0.1:8444")
	keyFlags := keystore.AddFlags(fs, "the issuer's")
	db := fs.String("db", "", "issuer database: a file path or sqlite:PATH (created when absent)")
	cardKey := fs.String("card-key", "", "card key file (0600), from '"+prog+" init'")
	hold := fs.Duration("hold", store.DefaultHold, "how long an approval holds the card's credit before its uncaptured rest expires")
	sf := cli.AddServeFlags(fs, "127.0.0.1:0", "address to listen on (port 0: any free port; see -addr-file)")
	stopProfile, err := sf.Parse(fs, args, "key", "db", "card-key")
	if err != nil {
		return err
	}
	defer stopProfile()
	if *hold < time.Second {
		return cli.Usagef("a hold period such as 168h or 30s", "-hold must be at least 1s")
	}
	key, err := keyFlags.Open(keygen.RoleIssuer, time.Now())
	if err != nil {
		return err
	}
	defer key.Close()
	ck, err := loadCardKey(*cardKey)
	if err != nil {
		return err
	}
	logger := web.LoggerAt(stdio.Err, prog, sf.LogLevel).With("identity", key.Identity())
	files := web.SQLiteFiles(*db)
	if err := web.CheckStoresAtStart(ctx, files...); err != nil {
		ck.Destroy()
		return err
	}
	st, err := OpenStore(ctx, *db, store.Options{CardKey: ck, Logger: logger})
	ck.Destroy() // the store keeps only the derived sub-keys
	if err != nil {
		if errors.Is(err, store.ErrWrongKey) {
			return cli.WithHint(err, "use the card key this database was created with")
		}
		return err
	}
	defer st.Close()
	srv := NewServer(key, st, Options{Logger: logger, Hold: *hold})
	sweepCtx, stopSweep := context.WithCancel(ctx)
	defer stopSweep()
	go srv.ExpireHolds(sweepCtx, min(max(*hold/10, time.Second), time.Minute))
	d := web.Daemon{Logger: logger, Flags: sf, Files: files, Ready: []web.Check{web.StoreCheck(st.Ping)},
		Metrics: web.KeyCacheMetrics(key.CacheStats)}
	return d.Serve(ctx, nil, srv.Handler())
}

func cmdCard(ctx context.Context, args []string, stdio cli.Stdio) error {
	p := prog + " card"
	status := func(st store.Status) func([]string) error {
		return func(a []string) error { return cmdCardStatus(ctx, p, st, a, stdio) }
	}
	code := cli.Dispatch(p, stdio, args, []cli.Command{
		{Name: "add", Summary: "enroll a card to a cardholder; the number is read from a file or stdin", Run: func(a []string) error { return cmdCardAdd(ctx, p, a, stdio) }},
		{Name: "list", Summary: "list cards (last four digits only)", Run: func(a []string) error { return cmdCardList(ctx, p, a, stdio) }},
		{Name: "suspend", Summary: "stop authorizing a card", Run: status(store.StatusSuspended)},
		{Name: "activate", Summary: "authorize a suspended card again", Run: status(store.StatusActive)},
		{Name: "close", Summary: "close a card for good", Run: status(store.StatusClosed)},
	})
	if code != cli.ExitOK {
		return &cli.Error{Err: cli.ErrReported, Code: code}
	}
	return nil
}

// longDigits matches what could be a card number inside a message.
var longDigits = regexp.MustCompile(`[0-9][0-9 -]{6,}[0-9]`)

// quietFlagSet is cli.FlagSet writing its messages and usage into a buffer,
// for parseQuiet to redact before they reach stderr.
func quietFlagSet(p, sub, synopsis string, examples ...string) (*flag.FlagSet, *bytes.Buffer) {
	buf := new(bytes.Buffer)
	return cli.FlagSet(p, sub, synopsis, cli.Stdio{Err: buf}, examples...), buf
}

// parseQuiet parses the flags of a quietFlagSet without ever echoing an
// argument that could be a card number: what the flag package prints is
// redacted, and stray arguments are counted, not quoted.
func parseQuiet(fs *flag.FlagSet, out *bytes.Buffer, args []string, positional int, stderr io.Writer) error {
	err := cli.ParseFlags(fs, args)
	stderr.Write(longDigits.ReplaceAll(out.Bytes(), []byte("…")))
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return cli.Usagef("run '"+fs.Name()+" -h' for usage", "%s", longDigits.ReplaceAllString(err.Error(), "…"))
	}
	if fs.NArg() > positional {
		return cli.Usagef("card numbers are read from -number-file or stdin, never from the command line",
			"unexpected argument (%d extra)", fs.NArg()-positional)
	}
	return nil
}

func cmdCardAdd(ctx context.Context, p string, args []string, stdio cli.Stdio) error {
	fs, fsOut := quietFlagSet(p, "add", "-db FILE -card-key FILE -cardholder ID -expiry YYYY-MM -limit N -currency CCY [-number-file FILE|-]",
		p+" add -db issuer.db -card-key issuer-card.key -cardholder cardholder:alice@example.org -expiry 2031-12 -limit 500000 -currency EUR < card.txt",
		p+" add -db issuer.db -card-key issuer-card.key -cardholder cardholder:bob@example.org -expiry 2030-06 -limit 100000 -currency EUR -number-file card.txt")
	db := fs.String("db", "", "issuer database: a file path or sqlite:PATH (created when absent)")
	cardKey := fs.String("card-key", "", "card key file (0600)")
	holder := fs.String("cardholder", "", "identity the card is enrolled to: cardholder:<name>")
	expiry := fs.String("expiry", "", "expiry month YYYY-MM (valid through its last day, UTC)")
	limit := fs.String("limit", "", "credit limit: integer minor units (50000 for 500.00 EUR), or a decimal with the currency's decimals (500.00)")
	currency := fs.String("currency", "", "ISO 4217 currency of the card, e.g. EUR")
	numberFile := fs.String("number-file", "-", "file holding the card number ('-': stdin)")
	if err := parseQuiet(fs, fsOut, args, 0, stdio.Err); err != nil {
		return err
	}
	if err := cli.Require(fs, "db", "card-key", "cardholder", "expiry", "currency"); err != nil {
		return err
	}
	cur := strings.ToUpper(*currency)
	if err := money.Check(cur); err != nil {
		return cli.Usagef("the card's currency is an ISO 4217 code such as EUR", "currency: %v", err)
	}
	lim, err := money.ParseInput(*limit, cur)
	if err != nil {
		code, _ := money.Code(err)
		d, _ := money.Digits(cur)
		return cli.Usagef(fmt.Sprintf("-limit takes integer minor units (50000), or a decimal with at most %d decimals for %s (500.00)", d, cur),
			"-limit: %v [%s]", err, code)
	}
	if lim <= 0 {
		return cli.Usagef("run '"+fs.Name()+" -h' for usage", "-limit must be a positive amount")
	}
	raw, err := cli.ReadInput(stdio, *numberFile, maxNumberInput)
	if err != nil {
		return fmt.Errorf("card number: %w", err)
	}
	number, err := store.ParseNumber(string(raw))
	clear(raw)
	if err != nil {
		return cli.WithHint(err, "put the number alone in the file or on stdin: 12 to 19 digits, spaces or hyphens allowed")
	}
	key, err := loadCardKey(*cardKey)
	if err != nil {
		return err
	}
	defer key.Destroy()
	st, err := openStore(ctx, *db, key, false)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := st.AddCard(ctx, store.NewCard{Number: number, Cardholder: *holder, Expiry: *expiry, Currency: cur, Limit: lim})
	switch {
	case errors.Is(err, store.ErrDuplicateCard):
		return cli.WithHint(err, "a number is enrolled once; see '"+p+" list', or close the old card first")
	case err != nil:
		return err
	}
	cvc, err := st.CVC(number, c.Expiry)
	if err != nil {
		return fmt.Errorf("card %s enrolled, but its cvc: %w", c.ID, err)
	}
	fmt.Fprintf(stdio.Out, "%s %s\n", c.ID, c.Masked())
	fmt.Fprintf(stdio.Out, "cvc %s\n", cvc)
	fmt.Fprintf(stdio.Err, "%s: enrolled %s to %s, limit %s\n", p, c.Masked(), c.Cardholder, money.Show(c.Limit, c.Currency))
	fmt.Fprintf(stdio.Err, "%s: hint: print the cvc on the card; it is derived from the card key, not stored, and shown only now\n", p)
	return nil
}

// cardJSON is one card in "card list -json".
type cardJSON struct {
	CardID     string `json:"card_id"`
	Last4      string `json:"last4"`
	Cardholder string `json:"cardholder"`
	Expiry     string `json:"expiry"`
	Status     string `json:"status"`
	Currency   string `json:"currency"`
	Limit      int64  `json:"limit"`
	Available  int64  `json:"available"`
	Created    string `json:"created"`
}

func cmdCardList(ctx context.Context, p string, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(p, "list", "-db FILE [-json]", stdio, p+" list -db issuer.db -json")
	db := fs.String("db", "", "issuer database: a file path or sqlite:PATH")
	asJSON := fs.Bool("json", false, "print a JSON array")
	if err := cli.Parse(fs, args, "db"); err != nil {
		return err
	}
	st, err := openStore(ctx, *db, nil, true)
	if err != nil {
		return err
	}
	defer st.Close()
	cards, err := st.Cards(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]cardJSON, 0, len(cards))
		for _, c := range cards {
			out = append(out, cardJSON{CardID: c.ID, Last4: c.Last4, Cardholder: c.Cardholder, Expiry: c.Expiry,
				Status: string(c.Status), Currency: c.Currency, Limit: c.Limit, Available: c.Available,
				Created: c.Created.Format(time.RFC3339)})
		}
		return cli.PrintJSON(stdio.Out, out)
	}
	tw := tabwriter.NewWriter(stdio.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CARD\tNUMBER\tCARDHOLDER\tEXPIRY\tSTATUS\tLIMIT\tAVAILABLE\tCURRENCY")
	for _, c := range cards {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Masked(), c.Cardholder, c.Expiry, c.Status,
			money.Show(c.Limit, c.Currency), money.Show(c.Available, c.Currency), c.Currency)
	}
	return tw.Flush()
}

func cmdCardStatus(ctx context.Context, p string, to store.Status, args []string, stdio cli.Stdio) error {
	verb := map[store.Status]string{store.StatusSuspended: "suspend", store.StatusActive: "activate", store.StatusClosed: "close"}[to]
	fs, fsOut := quietFlagSet(p, verb, "CARD_ID -db FILE", p+" "+verb+" card_… -db issuer.db")
	db := fs.String("db", "", "issuer database: a file path or sqlite:PATH")
	// The card id may come before or after the flags.
	id := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	want := 0
	if id == "" {
		want = 1
	}
	if err := parseQuiet(fs, fsOut, args, want, stdio.Err); err != nil {
		return err
	}
	if id == "" {
		id = fs.Arg(0)
	}
	if id == "" {
		return cli.Usagef("run '"+fs.Name()+" -h' for usage", "a card id is required")
	}
	if err := cli.Require(fs, "db"); err != nil {
		return err
	}
	if !store.ValidCardID(id) {
		return cli.WithHint(errors.New("not a card id"), "card ids look like card_ and 26 letters and digits; see '"+p+" list'")
	}
	st, err := openStore(ctx, *db, nil, true)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := st.SetStatus(ctx, id, to)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return cli.WithHint(err, "see '"+p+" list'")
	case errors.Is(err, store.ErrClosedCard):
		return cli.WithHint(err, "a closed card stays closed; enroll a new card")
	case err != nil:
		return err
	}
	fmt.Fprintf(stdio.Out, "%s %s %s\n", c.ID, c.Masked(), c.Status)
	return nil
}

// authorizationJSON is one record in "authorizations -json". It holds no
// card number, not even the last four digits.
type authorizationJSON struct {
	OrderID  string `json:"order_id"`
	Merchant string `json:"merchant"`
	Sealer   string `json:"sealer"` // cardholder, or consultant of an assisted order ("" before it was recorded)
	Channel  string `json:"channel"`
	Session  string `json:"session"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	AuthCode string `json:"auth_code"`
	Decided  string `json:"decided"`
	Voided   bool   `json:"voided"`
	VoidedAt string `json:"voided_at,omitempty"`
	// The lifecycle after approval: state, captured and refunded totals
	// (minor units), and when the uncaptured rest of the hold expires.
	State     string `json:"state"`
	Captured  int64  `json:"captured"`
	Refunded  int64  `json:"refunded"`
	HoldUntil string `json:"hold_until,omitempty"`
	// Plan is the installment schedule of an approval in more than one payment.
	Plan *api.Plan `json:"plan,omitempty"`
}

// planOf is a's schedule on the wire (nil for a single payment), and as
// people read it: "3 × 4.33 EUR: 2027-01-07, 2027-02-07, …" with each
// amount formatted for its currency ("-" for none).
func planOf(a store.Authorization) (*api.Plan, string) {
	sched := a.Schedule()
	if sched == nil {
		return nil, "-"
	}
	p := &api.Plan{Installments: a.Installments}
	parts := make([]string, 0, len(sched))
	for _, in := range sched {
		p.Schedule = append(p.Schedule, api.Installment{N: in.N, Due: in.Due.Format(time.DateOnly), Amount: in.Amount})
		parts = append(parts, money.Show(in.Amount, a.Currency)+" "+in.Due.Format(time.DateOnly))
	}
	return p, strconv.Itoa(a.Installments) + ": " + strings.Join(parts, ", ")
}

func cmdAuthorizations(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "authorizations", "-db FILE [-session S] [-json]", stdio,
		prog+" authorizations -db issuer.db",
		prog+" authorizations -db issuer.db -session ses_abcdefghijklmnopqrstuvwxyz -json")
	db := fs.String("db", "", "issuer database: a file path or sqlite:PATH")
	session := fs.String("session", "", "only the orders keyed in this assisted session (ses_…)")
	asJSON := fs.Bool("json", false, "print a JSON array")
	if err := cli.Parse(fs, args, "db"); err != nil {
		return err
	}
	if *session != "" && !order.ValidSession(*session) {
		return cli.Usagef("session references look like ses_ and 26 letters and digits", "-session is not a session reference")
	}
	st, err := openStore(ctx, *db, nil, true)
	if err != nil {
		return err
	}
	defer st.Close()
	auths, err := st.Authorizations(ctx, store.AuthFilter{Session: *session})
	if err != nil {
		return err
	}
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	if *asJSON {
		out := make([]authorizationJSON, 0, len(auths))
		for _, a := range auths {
			plan, _ := planOf(a)
			out = append(out, authorizationJSON{Plan: plan, OrderID: a.OrderID, Merchant: a.Merchant, Sealer: a.Sealer,
				Channel: a.Channel, Session: a.Session, Amount: a.Amount, Currency: a.Currency, Decision: a.Decision,
				Reason: a.Reason, AuthCode: a.AuthCode, Decided: stamp(a.Decided), Voided: a.Voided, VoidedAt: stamp(a.VoidedAt),
				State: a.State(), Captured: a.Captured, Refunded: a.Refunded, HoldUntil: stamp(a.HoldUntil)})
		}
		return cli.PrintJSON(stdio.Out, out)
	}
	dash := func(s string) string { return cmp.Or(s, "-") }
	tw := tabwriter.NewWriter(stdio.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER\tMERCHANT\tSEALER\tCHANNEL\tSESSION\tAMOUNT\tCURRENCY\tDECISION\tREASON\tAUTH\tDECIDED\tVOIDED\tSTATE\tCAPTURED\tREFUNDED\tINSTALLMENTS")
	for _, a := range auths {
		_, plan := planOf(a)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.OrderID, a.Merchant, dash(a.Sealer),
			a.Channel, dash(a.Session), money.Show(a.Amount, a.Currency), a.Currency, a.Decision, dash(a.Reason), dash(a.AuthCode),
			stamp(a.Decided), dash(stamp(a.VoidedAt)), a.State(), money.Show(a.Captured, a.Currency), money.Show(a.Refunded, a.Currency), plan)
	}
	return tw.Flush()
}
