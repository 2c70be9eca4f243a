package carrier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"orderseal/carrier/api"
	"orderseal/carrier/label"
	"orderseal/carrier/store"
	"orderseal/internal/cli"
	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/secfile"
	"orderseal/internal/strictjson"
	"orderseal/internal/web"
	"orderseal/keygen"
	"orderseal/order"
	"orderseal/suite/keystore"
	vaultapi "orderseal/vault/api"
)

// HTTPTimeout bounds every call the carrier makes to the vault or a merchant.
const HTTPTimeout = 15 * time.Second

// vaultClient is the carrier's client of the vault at base.
func vaultClient(keys keygen.Keyring, base, id string) (*vaultapi.Client, error) {
	c, err := vaultapi.NewClient(keys, base, id, &http.Client{Timeout: HTTPTimeout})
	if err != nil {
		return nil, cli.Usagef("pass -vault-url http://host:port and -vault vault:<name>", "%v", err)
	}
	return c, nil
}

// openWithVault opens the carrier's keys and its client of the vault at
// base, identity id; the caller closes the keys once done with the client.
func openWithVault(kf *keystore.Flags, base, id string) (*keystore.Keystore, *vaultapi.Client, error) {
	keys, err := kf.Open(keygen.RoleCarrier, time.Now())
	if err != nil {
		return nil, nil, err
	}
	vc, err := vaultClient(keys, base, id)
	if err != nil {
		keys.Close()
		return nil, nil, err
	}
	return keys, vc, nil
}

// parseWithTracking parses args holding one tracking number, before or
// after the flags, and returns it upper-cased and checked.
func parseWithTracking(fs *flag.FlagSet, args []string) (string, error) {
	var tracking string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		tracking, args = args[0], args[1:]
	}
	if err := cli.ParseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", err
		}
		return "", &cli.Error{Err: err, Code: cli.ExitUsage, Hint: "run '" + fs.Name() + " -h' for usage"}
	}
	rest := fs.Args()
	if tracking == "" && len(rest) > 0 {
		tracking, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return "", cli.Usagef("run '"+fs.Name()+" -h' for usage", "unexpected argument %q", rest[0])
	}
	if tracking == "" {
		return "", cli.Usagef("run '"+fs.Name()+" -h' for usage", "a tracking number is required")
	}
	tracking = strings.ToUpper(tracking)
	if err := api.ValidateTracking(tracking); err != nil {
		return "", cli.Usagef("tracking numbers look like OS123456785DE (see 'carrier shipments')", "%q: %v", tracking, err)
	}
	return tracking, nil
}

func openHint(err error, path string) error {
	if errors.Is(err, store.ErrNotMigrated) {
		return cli.WithHint(err, "run 'carrier serve -db "+path+"' once so it creates the database")
	}
	return cli.WithHint(err, "check -db: it must be the database of 'carrier serve'")
}

func cmdServe(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "serve", "-key FILE -db FILE -vault-url URL -vault ID -merchant ID=URL… [-listen ADDR] [-addr-file FILE] [-country CC]", stdio,
		prog+" serve -key carrier.parcel.example.key -db carrier.db -vault-url http://127.0.0.1:8443 -vault vault:vault.shop.example -merchant merchant:shop.example=http://127.0.0.1:8080")
	keyFlags := keystore.AddFlags(fs, "the carrier's")
	dbPath := fs.String("db", "", "carrier database (created on first start)")
	vaultURL := fs.String("vault-url", "", "base URL of the vault")
	vaultID := fs.String("vault", "", "identity of the vault, vault:<name>")
	sf := cli.AddServeFlags(fs, "127.0.0.1:8445", cli.ListenUsage)
	country := fs.String("country", "DE", "ISO 3166-1 country in new tracking numbers")
	var merchantFlags cli.Strings
	fs.Var(&merchantFlags, "merchant", "a merchant that may book, ID=URL: its tracking events go to URL/v1/orders/ID/events, never where a request says (repeatable)")
	poll := fs.Duration("event-poll", DefaultEventPoll, "how often to look for tracking events to deliver")
	stopProfile, err := sf.Parse(fs, args, "key", "db", "vault-url", "vault", "merchant")
	if err != nil {
		return err
	}
	defer stopProfile()
	merchants := Merchants{}
	for _, m := range merchantFlags {
		id, base, err := ParseMerchant(m)
		if err != nil {
			return cli.Usagef("use -merchant merchant:NAME=http://HOST:PORT", "-merchant %v", err)
		}
		if _, dup := merchants[id]; dup {
			return cli.Usagef("give each merchant once", "-merchant %s given twice", id)
		}
		merchants[id] = base
	}
	if *poll < 10*time.Millisecond || *poll > time.Minute {
		return cli.Usagef("pick -event-poll between 10ms and 1m", "-event-poll %s is out of range", *poll)
	}
	keys, vc, err := openWithVault(keyFlags, *vaultURL, *vaultID)
	if err != nil {
		return err
	}
	defer keys.Close()
	logger := web.LoggerAt(stdio.Err, "carrier", sf.LogLevel).With("identity", keys.Identity())
	files := web.SQLiteFiles(*dbPath)
	if err := web.CheckStoresAtStart(ctx, files...); err != nil {
		return err
	}
	st, err := OpenStore(ctx, *dbPath, store.Options{Country: strings.ToUpper(*country)})
	if err != nil {
		return cli.WithHint(err, "check -db and -country")
	}
	defer st.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runner := NewRunner(keys, st, merchants, &http.Client{Timeout: HTTPTimeout}, logger)
	runner.Poll = *poll
	done := make(chan struct{})
	go func() { defer close(done); runner.Run(ctx) }()
	srv := NewServer(keys, st, vc, Options{Logger: logger, Merchants: merchants})
	peers := []string{*vaultURL}
	for _, base := range merchants {
		peers = append(peers, base)
	}
	d := web.Daemon{Logger: logger, Flags: sf, Files: files,
		Ready:   []web.Check{web.StoreCheck(st.Ping), web.PeerCheck(nil, peers...)},
		Metrics: append(web.OutboxMetrics("events", st.Outbox(), nil), web.KeyCacheMetrics(keys.CacheStats)...)}
	err = d.Serve(ctx, nil, srv.Handler())
	cancel()
	<-done
	return err
}

func cmdEvent(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "event", "TRACKING -status STATUS [-note TEXT] -db FILE", stdio,
		prog+" event OS123456785DE -status in-transit -note 'hub Leipzig' -db carrier.db")
	status := fs.String("status", "", "new status: "+strings.Join(api.EventStatuses, ", "))
	note := fs.String("note", "", "one line for the merchant, at most 200 bytes")
	dbPath := fs.String("db", "", "the daemon's carrier database")
	tracking, err := parseWithTracking(fs, args)
	if err != nil {
		return err
	}
	if err := cli.Require(fs, "status", "db"); err != nil {
		return err
	}
	st, err := OpenStore(ctx, *dbPath, store.Options{MustExist: true})
	if err != nil {
		return openHint(err, *dbPath)
	}
	defer st.Close()
	ev, err := st.AddEvent(ctx, tracking, *status, *note)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return cli.WithHint(fmt.Errorf("no shipment %s", tracking), "list shipments with 'carrier shipments -db "+*dbPath+"'")
	case errors.Is(err, store.ErrTransition):
		return cli.WithHint(err, "a delivered parcel can only be returned; a returned one takes no more events")
	case errors.Is(err, store.ErrInvalid):
		return cli.Usagef("statuses: "+strings.Join(api.EventStatuses, ", "), "%v", err)
	case err != nil:
		return err
	}
	fmt.Fprintf(stdio.Out, "%s\t%d\t%s\t%s\n", ev.Tracking, ev.Seq, ev.Status, ev.At.Format(store.TimeLayout))
	fmt.Fprintf(stdio.Err, "%s: event %d recorded; the daemon delivers it to the merchant\n", prog, ev.Seq)
	return nil
}

func cmdLabel(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "label", "TRACKING -o FILE -db FILE -key FILE -vault-url URL -vault ID [-format png|pdf|zpl]", stdio,
		prog+" label OS123456785DE -o label.png -db carrier.db -key carrier.parcel.example.key -vault-url http://127.0.0.1:8443 -vault vault:vault.shop.example",
		prog+" label OS123456785DE -format zpl -o - ... | nc printer 9100   (ZPL on stdout)",
		prog+" label OS123456785DE -format pdf -o label.pdf ...")
	out := fs.String("o", "", "file to create (0600, never overwritten); '-' for stdout")
	format := fs.String("format", "", "png (203 dpi), pdf (4 × 6 in) or zpl (203 dpi thermal printers); default: the -o file's extension, else png")
	dbPath := fs.String("db", "", "the carrier database (opened read-only)")
	keyFlags := keystore.AddFlags(fs, "the carrier's")
	vaultURL := fs.String("vault-url", "", "base URL of the vault")
	vaultID := fs.String("vault", "", "identity of the vault, vault:<name>")
	tracking, err := parseWithTracking(fs, args)
	if err != nil {
		return err
	}
	if err := cli.Require(fs, "o", "db", "key", "vault-url", "vault"); err != nil {
		return err
	}
	if *format == "" {
		*format = strings.TrimPrefix(strings.ToLower(filepath.Ext(*out)), ".")
		if !slices.Contains(label.Formats, *format) {
			*format = label.FormatPNG
		}
	}
	if !slices.Contains(label.Formats, *format) {
		return cli.Usagef("use -format png, pdf or zpl", "-format %.16q is not a label format", *format)
	}
	if *out != "-" {
		if _, err := os.Lstat(*out); err == nil {
			return cli.WithHint(fmt.Errorf("%s exists", *out), "labels are never overwritten; remove it or pick another -o")
		}
	}
	keys, vc, err := openWithVault(keyFlags, *vaultURL, *vaultID)
	if err != nil {
		return err
	}
	defer keys.Close()
	st, err := OpenReader(ctx, *dbPath)
	if err != nil {
		return openHint(err, *dbPath)
	}
	sh, err := st.Lookup(ctx, tracking)
	st.Close()
	if errors.Is(err, store.ErrNotFound) {
		return cli.WithHint(fmt.Errorf("no shipment %s", tracking), "list shipments with 'carrier shipments -db "+*dbPath+"'")
	}
	if err != nil {
		return err
	}
	if sh.Status == api.StatusCancelled {
		// Its grant is revoked too; the vault is not asked.
		return cli.WithHint(fmt.Errorf("shipment %s was cancelled by %s", sh.Tracking, sh.Merchant), "a cancelled booking gets no label")
	}
	// A granted token and a deposited address alike are revealed under the
	// order's grant: its uses, expiry and revocation bind both.
	value, err := vc.RevealGranted(ctx, sh.ShipToken, sh.OrderID, sh.Invoice)
	if err != nil {
		return revealHint(err)
	}
	defer clear(value)
	var addr order.Address
	if err := strictjson.Decode(value, &addr, vaultapi.MaxValueSize); err != nil {
		return fmt.Errorf("the vault's value for %s is not an address", tracking)
	}
	l, err := shipmentLabel(keys.Identity(), sh, addr)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	err = label.Write(&buf, l, *format)
	addr, l = order.Address{}, label.Label{}
	if errors.Is(err, label.ErrNoFont) {
		return cli.WithHint(err, "install Debian's fonts-noto-cjk (make fonts), or set "+label.FontDirEnv+" to a directory with NotoSansCJK-Regular.ttc and -Bold.ttc")
	}
	if err != nil {
		return err
	}
	defer clear(buf.Bytes())
	if *out == "-" {
		_, err := stdio.Out.Write(buf.Bytes())
		return err
	}
	if err := secfile.WriteNew(*out, buf.Bytes()); err != nil {
		return err
	}
	fmt.Fprintf(stdio.Err, "%s: label for %s written to %s (%s, 0600); it is stored nowhere else\n", prog, sh.Tracking, *out, *format)
	return nil
}

// shipmentLabel is what the label of sh shows, addr being the address the
// vault revealed for it.
func shipmentLabel(carrier string, sh store.Shipment, addr order.Address) (label.Label, error) {
	l := label.Label{Carrier: carrier, SenderID: sh.Merchant, Recipient: sh.RecipientName, Phone: sh.RecipientPhone,
		Address: addr, Tracking: sh.Tracking, OrderID: sh.OrderID, Booked: sh.Booked, GiftNote: sh.GiftNote, Policy: sh.Policy}
	if sh.Parcel != "" {
		var p api.Parcel
		if err := json.Unmarshal([]byte(sh.Parcel), &p); err != nil {
			return label.Label{}, fmt.Errorf("shipment %s: the stored parcel declaration: %w", sh.Tracking, err)
		}
		l.Sender, l.Service, l.WeightG, l.Pieces, l.Contents, l.Category = p.Sender, p.Service, p.WeightG, p.Pieces, p.Contents, p.Category
	}
	return l, nil
}

// revealHint explains the vault's refusals to the operator.
func revealHint(err error) error {
	var p *rfc9457.Problem
	if errors.As(err, &p) {
		switch p.Code {
		case "no-grant", "grant-expired", "grant-used-up", "invoice-mismatch", "grant-pending", "grant-revoked":
			return cli.WithHint(fmt.Errorf("the vault refused to reveal the address: %s", p.Code),
				"the cardholder's grant is bound to this order and invoice, for a few prints within its validity; ask the merchant")
		case "unknown-token", "token-expired":
			return cli.WithHint(fmt.Errorf("the vault refused to reveal the address: %s", p.Code), "the token is gone; ask the merchant for a new booking")
		}
	}
	return cli.WithHint(fmt.Errorf("revealing the address: %w", err), "check -vault-url, -vault and that the vault is running")
}

// shipmentRow is one line of 'carrier shipments -json'.
type shipmentRow struct {
	Tracking string `json:"tracking"`
	Merchant string `json:"merchant"`
	OrderID  string `json:"order_id"`
	Status   string `json:"status"`
	Booked   string `json:"booked"`
}

func cmdShipments(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "shipments", "-db FILE [-json]", stdio, prog+" shipments -db carrier.db", prog+" shipments -db carrier.db -json")
	dbPath := fs.String("db", "", "the carrier database (opened read-only)")
	asJSON := fs.Bool("json", false, "print a JSON array instead of a table")
	if err := cli.Parse(fs, args, "db"); err != nil {
		return err
	}
	st, err := OpenReader(ctx, *dbPath)
	if err != nil {
		return openHint(err, *dbPath)
	}
	defer st.Close()
	list, err := st.List(ctx)
	if err != nil {
		return err
	}
	rows := make([]shipmentRow, 0, len(list))
	for _, sh := range list {
		rows = append(rows, shipmentRow{sh.Tracking, sh.Merchant, sh.OrderID, sh.Status, sh.Booked.Format(store.TimeLayout)})
	}
	return cli.PrintJSONOrTable(stdio.Out, *asJSON, rows, "TRACKING\tMERCHANT\tORDER\tSTATUS\tBOOKED", "%s\t%s\t%s\t%s\t%s\n",
		func(r shipmentRow) []any { return []any{r.Tracking, r.Merchant, r.OrderID, r.Status, r.Booked} })
}

// eventRow is one line of 'carrier track -json'.
type eventRow struct {
	Seq       int64  `json:"seq"`
	Status    string `json:"status"`
	At        string `json:"at"`
	Note      string `json:"note,omitempty"`
	Delivered string `json:"delivery"` // outbox state: pending, done, failed
}

func cmdTrack(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "track", "TRACKING -db FILE [-json]", stdio, prog+" track OS123456785DE -db carrier.db")
	dbPath := fs.String("db", "", "the carrier database (opened read-only)")
	asJSON := fs.Bool("json", false, "print a JSON array instead of a table")
	tracking, err := parseWithTracking(fs, args)
	if err != nil {
		return err
	}
	if err := cli.Require(fs, "db"); err != nil {
		return err
	}
	st, err := OpenReader(ctx, *dbPath)
	if err != nil {
		return openHint(err, *dbPath)
	}
	defer st.Close()
	if _, err := st.Lookup(ctx, tracking); errors.Is(err, store.ErrNotFound) {
		return cli.WithHint(fmt.Errorf("no shipment %s", tracking), "list shipments with 'carrier shipments -db "+*dbPath+"'")
	} else if err != nil {
		return err
	}
	evs, states, err := st.Events(ctx, tracking)
	if err != nil {
		return err
	}
	rows := make([]eventRow, 0, len(evs))
	for i, ev := range evs {
		rows = append(rows, eventRow{ev.Seq, ev.Status, ev.At.Format(store.TimeLayout), ev.Note, states[i]})
	}
	return cli.PrintJSONOrTable(stdio.Out, *asJSON, rows, "SEQ\tSTATUS\tAT\tDELIVERY\tNOTE", "%d\t%s\t%s\t%s\t%s\n",
		func(r eventRow) []any { return []any{r.Seq, r.Status, r.At, r.Delivered, r.Note} })
}
