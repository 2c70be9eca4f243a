package merchant

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"text/tabwriter"
	"time"

	"orderseal/internal/cli"
	"orderseal/internal/outbox"
	outboxpg "orderseal/internal/outbox/postgres"
	"orderseal/internal/signedhttp"
	"orderseal/internal/strictjson"
	"orderseal/internal/web"
	"orderseal/keygen"
	"orderseal/merchant/checkout"
	"orderseal/merchant/dashboard"
	"orderseal/merchant/store"
	"orderseal/order"
	"orderseal/order/address"
	"orderseal/order/money"
	"orderseal/suite/keystore"
)

func cmdServe(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "serve", "-key FILE -db FILE -issuer ID=URL… -carrier ID=URL -vault ID=URL [-catalog FILE] [-listen ADDR]", stdio,
		prog+" serve -key merchant.key -db merchant.db -catalog catalog.json -issuer issuer:bank=http://127.0.0.1:8444 -carrier carrier:post=http://127.0.0.1:8445 -vault vault:main=http://127.0.0.1:8443")
	keyFlags := keystore.AddFlags(fs, "the merchant's")
	dbPath := fs.String("db", "", "the merchant database (created if missing)")
	catalog := fs.String("catalog", "", "catalog JSON to import at start (optional)")
	var issuers cli.Strings
	fs.Var(&issuers, "issuer", "an accepted issuer, ID=URL (repeatable)")
	carrier := fs.String("carrier", "", "the carrier, ID=URL")
	vaultPeer := fs.String("vault", "", "the vault, ID=URL")
	sf := cli.AddServeFlags(fs, "127.0.0.1:8080", cli.ListenUsage)
	public := fs.String("public-url", "", "URL the carrier reaches this node at (default: http://<bound address>)")
	poll := fs.Duration("relay-poll", time.Second, "how often the relay outbox looks for due work")
	workers := fs.Int("relay-workers", DefaultRelayWorkers, "relay jobs this node runs at once (1 to 64: a peer takes 64 requests of one party at once)")
	holdSweep := fs.Duration("hold-sweep", DefaultHoldSweep, "how often to ask the issuers about authorizations whose hold has ended, so their expiry shows")
	lease := fs.Duration("outbox-lease", outboxpg.DefaultLease, "on PostgreSQL: how long this node's claim on a relay job keeps the other nodes off it, renewed at every poll while the node lives (a killed node's jobs resume after it)")
	var companies cli.Strings
	fs.Var(&companies, "company", "a call-center company whose consultants may log in for phone orders, company:NAME (repeatable)")
	maxShift := fs.Duration("max-shift", 12*time.Hour, "longest assisted session a login gets")
	shipFrom := fs.String("ship-from", "", "the shop's ship-from and return address JSON, printed on labels (optional)")
	service := fs.String("service", "Standard", "the carrier service booked for a domestic parcel")
	serviceAbroad := fs.String("service-abroad", "International", "the carrier service booked for a parcel abroad")
	itemWeight := fs.Int("item-weight", 400, "grams declared per item")
	policiesFile := fs.String("policies", "", "section policies to publish, JSON (default: the built-in set, order/policies_default.json)")
	dash := fs.Bool("dashboard", true, "serve the operators' dashboard at /dashboard/ (accounts: merchant operator add)")
	checkoutDir := fs.String("checkout", "", "serve the browser checkout at /checkout/ with the sealing program built in DIR (make build: bin/web)")
	checkoutVault := fs.String("checkout-vault", "", "with -checkout: the vault's URL as buyers' browsers reach it, so the page offers their saved addresses by label (the vault's -cors-origin must name this shop's origin; default: inline addresses only)")
	stopProfile, err := sf.Parse(fs, args, "key", "db", "issuer", "carrier", "vault")
	if err != nil {
		return err
	}
	defer stopProfile()
	key, err := keyFlags.Open(keygen.RoleMerchant, time.Now())
	if err != nil {
		return err
	}
	defer key.Close()
	now, err := clockFromEnv()
	if err != nil {
		return err
	}
	cfg := Config{Keys: key, Companies: companies, MaxShift: *maxShift, Now: now, Service: *service, ServiceAbroad: *serviceAbroad, ItemWeightG: *itemWeight}
	if files := web.SQLiteFiles(*dbPath); len(files) == 1 {
		cfg.VaultCheckpointFile = files[0] + ".vault-checkpoint.json"
	}
	if *shipFrom != "" {
		data, err := cli.ReadInput(stdio, *shipFrom, 16<<10)
		if err != nil {
			return err
		}
		var a order.Address
		if err := strictjson.Decode(data, &a, 16<<10); err != nil {
			return cli.WithHint(fmt.Errorf("-ship-from %s: %w", *shipFrom, err), "the file is an address: name, line1, city, postal_code, country")
		}
		if cfg.Sender, err = address.Normalize(a); err != nil {
			return cli.WithHint(fmt.Errorf("-ship-from %s: %w (%s)", *shipFrom, err, address.CodeOf(err)), "the ship-from address must pass its country's rules")
		}
	}
	if *policiesFile != "" {
		data, err := cli.ReadInput(stdio, *policiesFile, 16*order.MaxPolicySize)
		if err != nil {
			return err
		}
		if cfg.Policies, err = order.ParsePolicySet(data); err != nil {
			return cli.WithHint(fmt.Errorf("-policies %s: %w", *policiesFile, err), "see order/policies_default.json for the format")
		}
	}
	if *itemWeight < 1 || *itemWeight > 70000 {
		return cli.Usagef("use -item-weight 400", "-item-weight must be 1 to 70000 grams")
	}
	for _, c := range companies {
		if err := keygen.ValidateIdentity(c); err != nil || keygen.RoleOf(c) != keygen.RoleCompany {
			return cli.Usagef("use -company company:NAME", "-company %.80q is not a company identity", c)
		}
	}
	if *holdSweep < 100*time.Millisecond {
		return cli.Usagef("use -hold-sweep 1m", "-hold-sweep must be at least 100ms")
	}
	cfg.HoldSweep = *holdSweep
	if *workers < 1 || *workers > signedhttp.DefaultPerParty {
		return cli.Usagef("use -relay-workers 32", "-relay-workers must be 1 to %d", signedhttp.DefaultPerParty)
	}
	if *maxShift < time.Second {
		return cli.Usagef("use -max-shift 8h", "-max-shift must be at least 1s")
	}
	for _, s := range issuers {
		p, err := ParsePeer(s, keygen.RoleIssuer)
		if err != nil {
			return cli.Usagef("use -issuer issuer:NAME=http://HOST:PORT", "-issuer %v", err)
		}
		cfg.Issuers = append(cfg.Issuers, p)
	}
	if cfg.Carrier, err = ParsePeer(*carrier, keygen.RoleCarrier); err != nil {
		return cli.Usagef("use -carrier carrier:NAME=http://HOST:PORT", "-carrier %v", err)
	}
	if cfg.Vault, err = ParsePeer(*vaultPeer, keygen.RoleVault); err != nil {
		return cli.Usagef("use -vault vault:NAME=http://HOST:PORT", "-vault %v", err)
	}
	if *checkoutVault != "" && *checkoutDir == "" {
		return cli.Usagef("add -checkout DIR, or leave out -checkout-vault", "-checkout-vault is the browser checkout's")
	}
	if *checkoutDir != "" {
		// The page's program lists her labels at the vault itself, with
		// requests signed by her key; the vault answers this shop's origin.
		site, err := checkout.New(checkout.Options{Dir: *checkoutDir, MerchantID: key.Identity(), VaultURL: *checkoutVault})
		if errors.Is(err, checkout.ErrVaultURL) {
			return cli.Usagef("use -checkout-vault https://vault.example", "-checkout-vault: %v", err)
		}
		if err != nil {
			return err
		}
		cfg.Pages = append(cfg.Pages, Page{Prefix: checkout.Prefix, Handler: site})
	}
	logger := web.LoggerAt(stdio.Err, "merchant", sf.LogLevel).With("identity", key.Identity())
	files := web.SQLiteFiles(*dbPath)
	if err := web.CheckStoresAtStart(ctx, files...); err != nil {
		return err
	}
	if *lease < 5*time.Second || *lease <= 2**poll {
		return cli.Usagef("use -outbox-lease 2m", "-outbox-lease must be at least 5s and more than twice -relay-poll")
	}
	st, err := OpenNodeStore(ctx, *dbPath, nil, *lease)
	if err != nil {
		return err
	}
	defer st.Close()
	if *catalog != "" {
		n, err := importCatalog(ctx, st, *catalog, stdio)
		if err != nil {
			return err
		}
		logger.Info("catalog imported", "products", n)
	}
	ln, err := net.Listen("tcp", *sf.Listen)
	if err != nil {
		return err
	}
	cfg.PublicURL = *public
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + ln.Addr().String()
	}
	cfg.Store, cfg.Logger = st, logger
	if *dash {
		// Logins expire and locks lift by the wall clock, as the store reads it.
		d, err := dashboard.New(dashboard.Options{Store: st, Merchant: key.Identity(), Logger: logger,
			Redrive: func(ctx context.Context, e outbox.Entry) (bool, string, error) {
				return redriveDead(ctx, st, e, time.Now())
			}})
		if err != nil {
			ln.Close()
			return err
		}
		cfg.Pages = append(cfg.Pages, Page{Prefix: dashboard.Prefix, Handler: d})
	}
	cfg.Outbox = func(r *outbox.Runner) { r.Poll, r.Workers = *poll, *workers }
	srv, err := NewServer(cfg)
	if err != nil {
		ln.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	peers := []string{cfg.Carrier.URL, cfg.Vault.URL}
	for _, p := range cfg.Issuers {
		peers = append(peers, p.URL)
	}
	d := web.Daemon{Logger: logger, Flags: sf, Files: files,
		Ready:   []web.Check{web.StoreCheck(st.Ping), web.PeerCheck(nil, peers...)},
		Metrics: Metrics(st, key.CacheStats, now)}
	err = d.Serve(ctx, ln, srv.Handler())
	cancel()
	<-done
	return err
}

// CatalogFile is the catalog import format.
type CatalogFile struct {
	Currency string        `json:"currency" validate:"required"` // checked with package money (one list for every party)
	Products []CatalogItem `json:"products" validate:"required,min=1,max=10000,dive"`
}

// CatalogItem is one product of a catalog file.
type CatalogItem struct {
	SKU       string `json:"sku" validate:"required,max=64,printascii,excludesall= "`
	Name      string `json:"name" validate:"required,max=200"`
	UnitPrice int64  `json:"unit_price" validate:"min=0,max=1000000000000"`
}

const maxCatalogFile = 8 << 20

// checkCatalogFile validates f's fields, its currency with package money:
// a currency the issuer and the cardholder would refuse is refused here
// first, in the same words.
func checkCatalogFile(f *CatalogFile) error {
	if err := money.Check(f.Currency); err != nil {
		return fmt.Errorf("currency: %w", err)
	}
	return web.Validate(f)
}

// parseCatalogFile decodes and validates a catalog file.
func parseCatalogFile(data []byte) (*CatalogFile, error) {
	var f CatalogFile
	if err := strictjson.Decode(data, &f, maxCatalogFile); err != nil {
		return nil, err
	}
	if err := checkCatalogFile(&f); err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(f.Products))
	for _, p := range f.Products {
		if seen[p.SKU] {
			return nil, fmt.Errorf("product %q listed twice", p.SKU)
		}
		seen[p.SKU] = true
	}
	return &f, nil
}

// importCatalog adds every product of the file at path ("-": stdin) in one
// transaction: a bad file changes nothing.
func importCatalog(ctx context.Context, st store.Store, path string, stdio cli.Stdio) (int, error) {
	data, err := cli.ReadInput(stdio, path, maxCatalogFile)
	if err != nil {
		return 0, err
	}
	f, err := parseCatalogFile(data)
	if err != nil {
		return 0, fmt.Errorf("catalog %s: %w", path, err)
	}
	ps := make([]store.Product, 0, len(f.Products))
	for _, p := range f.Products {
		ps = append(ps, store.Product{SKU: p.SKU, Name: p.Name, UnitPrice: p.UnitPrice, Currency: f.Currency})
	}
	if err := st.PutProducts(ctx, ps); err != nil {
		return 0, catalogErr(err)
	}
	return len(f.Products), nil
}

// amountErr is the usage error for an amount flag money.ParseInput
// refused, with the refusal's stable code (currency-minor-units for
// "12.905" EUR or "1299.0" JPY).
func amountErr(flag string, err error, currency string) error {
	code, _ := money.Code(err)
	d, _ := money.Digits(currency)
	return cli.Usagef(fmt.Sprintf("%s takes integer minor units (1290), or a decimal with at most %d decimals for %s (12.90)", flag, d, currency),
		"%s: %v [%s]", flag, err, code)
}

// catalogErr adds a hint to a refused catalog change.
func catalogErr(err error) error {
	if errors.Is(err, store.ErrCurrencyMixed) {
		return cli.WithHint(err, "a shop sells in one currency; import a catalog that replaces every product to change it")
	}
	return err
}

// parseArgs is cli.Parse for subcommands that take n positional arguments.
func parseArgs(fs *flag.FlagSet, args []string, n int, what string, required ...string) error {
	if err := cli.ParseFlags(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &cli.Error{Err: err, Code: cli.ExitUsage, Hint: "run '" + fs.Name() + " -h' for usage"}
	}
	if fs.NArg() != n {
		return cli.Usagef("run '"+fs.Name()+" -h' for usage", "want %s, got %d arguments", what, fs.NArg())
	}
	return cli.Require(fs, required...)
}

func cmdCatalog(ctx context.Context, args []string, stdio cli.Stdio) error {
	p := prog + " catalog"
	code := cli.Dispatch(p, stdio, args, []cli.Command{
		{Name: "add", Summary: "add a product or change its name and price", Run: func(a []string) error {
			fs := cli.FlagSet(p, "add", "-db FILE -sku SKU -name NAME -price MINOR -currency CUR", stdio,
				p+" add -db merchant.db -sku MUG-01 -name 'Mug' -price 1290 -currency EUR")
			db := fs.String("db", "", "the merchant database")
			it := CatalogItem{}
			fs.StringVar(&it.SKU, "sku", "", "product SKU")
			fs.StringVar(&it.Name, "name", "", "product name")
			// A string, so "12.90" gets a one-line hint rather than the flag
			// package's error followed by the whole usage text.
			price := fs.String("price", "", "unit price: integer minor units (1290 for 12.90 EUR), or a decimal with the currency's decimals (12.90)")
			cur := fs.String("currency", "EUR", "ISO 4217 currency")
			if err := cli.Parse(fs, a, "db", "sku", "name"); err != nil {
				return err
			}
			if err := cli.Require(fs, "price"); err != nil {
				return err
			}
			if err := money.Check(*cur); err != nil {
				return cli.Usagef("prices are integer minor units; SKUs have no spaces", "currency: %v", err)
			}
			n, err := money.ParseInput(*price, *cur)
			if err != nil {
				return amountErr("-price", err, *cur)
			}
			it.UnitPrice = n
			if err := checkCatalogFile(&CatalogFile{Currency: *cur, Products: []CatalogItem{it}}); err != nil {
				return cli.Usagef("prices are integer minor units; SKUs have no spaces", "%v", err)
			}
			st, err := OpenStore(ctx, *db, nil)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.PutProduct(ctx, store.Product{SKU: it.SKU, Name: it.Name, UnitPrice: it.UnitPrice, Currency: *cur}); err != nil {
				return catalogErr(err)
			}
			fmt.Fprintf(stdio.Err, "%s: %s listed at %s\n", p, it.SKU, money.Show(it.UnitPrice, *cur))
			return nil
		}},
		{Name: "import", Summary: "import a catalog JSON file (- for stdin)", Run: func(a []string) error {
			fs := cli.FlagSet(p, "import", "-db FILE CATALOG.json", stdio)
			db := fs.String("db", "", "the merchant database")
			if err := parseArgs(fs, a, 1, "one catalog file", "db"); err != nil {
				return err
			}
			st, err := OpenStore(ctx, *db, nil)
			if err != nil {
				return err
			}
			defer st.Close()
			n, err := importCatalog(ctx, st, fs.Arg(0), stdio)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdio.Err, "%s: %d products imported\n", p, n)
			return nil
		}},
		{Name: "list", Summary: "list the catalog", Run: func(a []string) error {
			fs := cli.FlagSet(p, "list", "-db FILE [-json]", stdio)
			db := fs.String("db", "", "the merchant database")
			asJSON := fs.Bool("json", false, "JSON output")
			if err := cli.Parse(fs, a, "db"); err != nil {
				return err
			}
			st, err := OpenStore(ctx, *db, nil)
			if err != nil {
				return err
			}
			defer st.Close()
			ps, err := st.Catalog(ctx)
			if err != nil {
				return err
			}
			if *asJSON {
				return json.NewEncoder(stdio.Out).Encode(ps)
			}
			tw := tabwriter.NewWriter(stdio.Out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SKU\tNAME\tPRICE\tCURRENCY")
			for _, x := range ps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.SKU, x.Name, money.Show(x.UnitPrice, x.Currency), x.Currency)
			}
			return tw.Flush()
		}},
	})
	if code != cli.ExitOK {
		return &cli.Error{Err: cli.ErrReported, Code: code}
	}
	return nil
}

func cmdOrders(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "orders", "-db FILE [-n N] [-json]", stdio)
	db := fs.String("db", "", "the merchant database")
	n := fs.Int("n", 50, "newest N orders")
	asJSON := fs.Bool("json", false, "JSON output")
	if err := cli.Parse(fs, args, "db"); err != nil {
		return err
	}
	st, err := OpenStore(ctx, *db, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	orders, err := st.List(ctx, *n)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]any, 0, len(orders))
		for _, o := range orders {
			tl, err := st.Timeline(ctx, o.ID)
			if err != nil {
				return err
			}
			p, ok, err := st.Payment(ctx, o.ID)
			if err != nil {
				return err
			}
			s := statusOf(o, tl)
			withPayment(&s, p, ok)
			out = append(out, s)
		}
		return json.NewEncoder(stdio.Out).Encode(out)
	}
	tw := tabwriter.NewWriter(stdio.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ORDER\tSTATE\tREASON\tTOTAL\tSHIP-TO TOKEN\tTRACKING\tCREATED\tPAYMENT\tCAPTURED\tREFUNDED\tHOLD UNTIL\tINSTALLMENTS")
	for _, o := range orders {
		p, ok, err := st.Payment(ctx, o.ID)
		if err != nil {
			return err
		}
		tl, err := st.Timeline(ctx, o.ID)
		if err != nil {
			return err
		}
		pay, captured, refunded, hold := "-", "-", "-", "-"
		if ok {
			pay, captured, refunded = p.State, money.Show(p.Captured, o.Currency), money.Show(p.Refunded, o.Currency)
			if !p.HoldUntil.IsZero() {
				hold = p.HoldUntil.UTC().Format(time.RFC3339)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.ID, o.State, dash(o.Reason), money.Show(o.Total, o.Currency),
			dash(o.ShipToken), dash(o.Tracking), o.Created.Format(time.RFC3339), pay, captured, refunded, hold, dash(statusOf(o, tl).Installments))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
