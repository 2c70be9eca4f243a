package merchant_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"orderseal/internal/cli"
	"orderseal/merchant"
	"orderseal/merchant/api"
	"orderseal/merchant/store"
	"orderseal/order"
	"orderseal/order/money"
	"orderseal/tstest/keys"
	"orderseal/tstest/pgtest"
)

// run runs the merchant command with stdin and returns its exit code,
// stdout and stderr.
func runCLI(t *testing.T, ctx context.Context, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := merchant.Main(ctx, args, cli.Stdio{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

// oneLineError checks stderr is a single "prog: error: …" line, optionally
// followed by a hint, and contains want.
func oneLineError(t *testing.T, stderr, prog, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	if len(lines) < 1 || len(lines) > 2 || !strings.HasPrefix(lines[0], prog+": error: ") ||
		(len(lines) == 2 && !strings.HasPrefix(lines[1], prog+": hint: ")) {
		t.Fatalf("stderr is not one error line (and a hint):\n%s", stderr)
	}
	if !strings.Contains(lines[0], want) {
		t.Fatalf("error %q does not say %q", lines[0], want)
	}
}

func listCatalog(t *testing.T, db string) []store.Product {
	t.Helper()
	code, out, errs := runCLI(t, context.Background(), "", "catalog", "list", "-db", db, "-json")
	if code != 0 {
		t.Fatalf("catalog list: %d %s", code, errs)
	}
	var ps []store.Product
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		t.Fatalf("catalog list -json: %v: %s", err, out)
	}
	return ps
}

func TestCLICatalog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "merchant.db")
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("catalog.json", `{"currency":"EUR","products":[
		{"sku":"BOOK-1984.pb","name":"Nineteen Eighty-Four (paperback)","unit_price":1299},
		{"sku":"mug_blue-350","name":"Blue mug, 350 ml","unit_price":850}]}`)

	code, out, errs := runCLI(t, ctx, "", "catalog", "import", "-db", db, good)
	if code != 0 || out != "" || !strings.Contains(errs, "2 products imported") {
		t.Fatalf("import: %d %q %q", code, out, errs)
	}
	code, _, errs = runCLI(t, ctx, "", "catalog", "add", "-db", db, "-sku", "MUG-01", "-name", "Mug", "-price", "12.90", "-currency", "EUR") // 1290 minor units
	if code != 0 || !strings.Contains(errs, "MUG-01 listed at 12.90 EUR") {
		t.Fatalf("add: %d %q", code, errs)
	}
	// From stdin, replacing a price.
	code, _, errs = runCLI(t, ctx, `{"currency":"EUR","products":[{"sku":"MUG-01","name":"Mug","unit_price":1390}]}`,
		"catalog", "import", "-db", db, "-")
	if code != 0 {
		t.Fatalf("import from stdin: %d %q", code, errs)
	}
	want := []store.Product{
		{SKU: "BOOK-1984.pb", Name: "Nineteen Eighty-Four (paperback)", UnitPrice: 1299, Currency: "EUR"},
		{SKU: "MUG-01", Name: "Mug", UnitPrice: 1390, Currency: "EUR"},
		{SKU: "mug_blue-350", Name: "Blue mug, 350 ml", UnitPrice: 850, Currency: "EUR"},
	}
	check := func() {
		t.Helper()
		got := listCatalog(t, db)
		if len(got) != len(want) {
			t.Fatalf("catalog %+v, want %+v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("catalog %+v, want %+v", got, want)
			}
		}
	}
	check()
	code, out, _ = runCLI(t, ctx, "", "catalog", "list", "-db", db)
	if code != 0 || !strings.HasPrefix(out, "SKU") || !strings.Contains(out, "MUG-01") || !strings.Contains(out, "13.90 EUR") {
		t.Fatalf("list: %d %q", code, out)
	}

	refusals := []struct {
		name  string
		stdin string
		args  []string
		code  int
		says  string
	}{
		{"negative price", "", []string{"add", "-db", db, "-sku", "X", "-name", "X", "-price", "-5"}, cli.ExitUsage, "[amount-invalid]"},
		{"no price", "", []string{"add", "-db", db, "-sku", "X", "-name", "X"}, cli.ExitUsage, "-price is required"},
		{"price with more decimals than EUR has", "", []string{"add", "-db", db, "-sku", "X", "-name", "X", "-price", "12.905"}, cli.ExitUsage, "[currency-minor-units]"},
		{"decimal price for JPY", "", []string{"add", "-db", db, "-sku", "X", "-name", "X", "-price", "1299.0", "-currency", "JPY"}, cli.ExitUsage, "[currency-minor-units]"},
		{"price not a number", "", []string{"add", "-db", db, "-sku", "X", "-name", "X", "-price", "12,90"}, cli.ExitUsage, "[amount-invalid]"},
		{"bad currency", "", []string{"add", "-db", db, "-sku", "X", "-name", "X", "-price", "5", "-currency", "EURO"}, cli.ExitUsage, "currency: " + money.ErrUnsupported.Error()},
		{"currency XYZ", "", []string{"add", "-db", db, "-sku", "X", "-name", "X", "-price", "5", "-currency", "XYZ"}, cli.ExitUsage, "currency: " + money.ErrUnsupported.Error()},
		{"SKU with a space", "", []string{"add", "-db", db, "-sku", "A B", "-name", "X", "-price", "5"}, cli.ExitUsage, "SKU"},
		{"another currency", "", []string{"add", "-db", db, "-sku", "X", "-name", "X", "-price", "5", "-currency", "USD"}, cli.ExitFailure, "mix currencies"},
		{"no db", "", []string{"add", "-sku", "X", "-name", "X", "-price", "5"}, cli.ExitUsage, "-db is required"},
		{"malformed file", "", []string{"import", "-db", db, write("bad.json", `{"currency":"EUR","products":[`)}, cli.ExitFailure, "catalog"},
		{"unknown field", "", []string{"import", "-db", db, write("unknown.json", `{"currency":"EUR","products":[{"sku":"X","name":"X","unit_price":1,"tax":2}]}`)}, cli.ExitFailure, "catalog"},
		{"bad currency in file", "", []string{"import", "-db", db, write("cur.json", `{"currency":"eur","products":[{"sku":"X","name":"X","unit_price":1}]}`)}, cli.ExitFailure, "currency: " + money.ErrUnsupported.Error()},
		{"currency XYZ in file", "", []string{"import", "-db", db, write("xyz.json", `{"currency":"XYZ","products":[{"sku":"X","name":"X","unit_price":1}]}`)}, cli.ExitFailure, "currency: " + money.ErrUnsupported.Error()},
		{"no products", "", []string{"import", "-db", db, write("empty.json", `{"currency":"EUR","products":[]}`)}, cli.ExitFailure, "Products"},
		{"duplicate SKU", "", []string{"import", "-db", db, write("dup.json", `{"currency":"EUR","products":[{"sku":"X","name":"X","unit_price":1},{"sku":"X","name":"Y","unit_price":2}]}`)}, cli.ExitFailure, "twice"},
		{"file in another currency", "", []string{"import", "-db", db, write("usd.json", `{"currency":"USD","products":[{"sku":"X","name":"X","unit_price":1}]}`)}, cli.ExitFailure, "mix currencies"},
		{"malformed stdin", "{", []string{"import", "-db", db, "-"}, cli.ExitFailure, "catalog -"},
		{"missing file", "", []string{"import", "-db", db, filepath.Join(dir, "nope.json")}, cli.ExitFailure, "nope.json"},
		{"no file", "", []string{"import", "-db", db}, cli.ExitUsage, "one catalog file"},
		{"two files", "", []string{"import", "-db", db, good, good}, cli.ExitUsage, "one catalog file"},
		{"unknown subcommand", "", []string{"remove", "-db", db}, cli.ExitUsage, "unknown command"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, ctx, tc.stdin, append([]string{"catalog"}, tc.args...)...)
			if code != tc.code || out != "" {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q", code, tc.code, out, errs)
			}
			oneLineError(t, errs, "merchant catalog", tc.says)
			check() // nothing changed
		})
	}
}

func TestCLIOrders(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "merchant.db")
	code, out, errs := runCLI(t, ctx, "", "orders", "-db", db)
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "ORDER") {
		t.Fatalf("orders on an empty database: %d %q %q", code, out, errs)
	}
	st, err := merchant.OpenStore(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	o := &store.Order{ID: "ord_cli1", Cardholder: keys.Alice, HeaderHash: []byte{1}, Bundle: []byte("{}"), Issuer: keys.Bank,
		Carrier: keys.Parcel, Vault: keys.Vault, ShipToken: testToken, Items: []byte("[]"), Total: 3448, Currency: "EUR", State: api.StateReceived}
	if _, _, err := st.Insert(ctx, o, "authorize"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Apply(ctx, o.ID, store.Transition{From: []string{api.StateReceived}, To: api.StateDeclined, Reason: "insufficient-credit"}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	code, out, _ = runCLI(t, ctx, "", "orders", "-db", db)
	if code != 0 {
		t.Fatalf("orders: %d", code)
	}
	for _, want := range []string{"ord_cli1", "declined", "insufficient-credit", "34.48 EUR", testToken} {
		if !strings.Contains(out, want) {
			t.Fatalf("orders output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, ctx, "", "orders", "-db", db, "-json")
	var sts []api.Status
	if code != 0 || json.Unmarshal([]byte(out), &sts) != nil || len(sts) != 1 || sts[0].OrderID != "ord_cli1" ||
		sts[0].State != api.StateDeclined || len(sts[0].Timeline) != 2 {
		t.Fatalf("orders -json: %d %s", code, out)
	}
	code, _, errs = runCLI(t, ctx, "", "orders")
	if code != cli.ExitUsage {
		t.Fatalf("orders without -db: %d", code)
	}
	oneLineError(t, errs, "merchant", "-db is required")
	code, _, errs = runCLI(t, ctx, "", "orders", "-db", db, "extra")
	if code != cli.ExitUsage {
		t.Fatalf("orders with an argument: %d %s", code, errs)
	}
}

// TestCLIServe runs `merchant serve` against a fake issuer and carrier and
// a real vault: it imports the catalog, takes an order, ships it, and stops
// cleanly when its context ends; on each backend, picked by its -db DSN.
func TestCLIServe(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testCLIServe(t, backend) })
	}
}

func testCLIServe(t *testing.T, backend string) {
	dir := t.TempDir()
	db := filepath.Join(dir, "merchant.db")
	if backend == "postgres" {
		db = pgtest.New(t).URL()
	}
	keyPath := keys.WriteKeyFile(t, dir, keys.Shop)
	catalog := filepath.Join(dir, "catalog.json")
	os.WriteFile(catalog, []byte(`{"currency":"EUR","products":[
		{"sku":"BOOK-1984.pb","name":"Nineteen Eighty-Four (paperback)","unit_price":1299},
		{"sku":"mug_blue-350","name":"Blue mug, 350 ml","unit_price":850}]}`), 0o600)
	iss, car, v := newFakeIssuer(t, keys.Bank), newFakeCarrier(t, keys.Parcel), newVault(t)
	addrFile := filepath.Join(dir, "addr")
	args := []string{"serve", "-key", keyPath, "-db", db, "-catalog", catalog,
		"-issuer", keys.Bank + "=" + iss.ts.URL, "-carrier", keys.Parcel + "=" + car.ts.URL, "-vault", keys.Vault + "=" + v.ts.URL,
		"-listen", "127.0.0.1:0", "-addr-file", addrFile, "-relay-poll", "20ms"}

	// Usage mistakes first: exit 2, one line.
	for _, bad := range [][]string{
		{"-issuer", "bank=" + iss.ts.URL},
		{"-carrier", keys.Parcel + "=ftp://x"},
		{"-vault", keys.Bank + "=" + v.ts.URL},
		{"-checkout-vault", "http://127.0.0.1:8443"}, // without -checkout
		{"-checkout-vault", "ftp://vault.example", "-checkout", dir},
	} {
		a := append(append([]string(nil), args...), bad...)
		code, _, errs := runCLI(t, context.Background(), "", a...)
		if code != cli.ExitUsage {
			t.Fatalf("%v: exit %d: %s", bad, code, errs)
		}
		oneLineError(t, errs, "merchant", bad[0])
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- merchant.Main(ctx, args, cli.Stdio{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &errb})
	}()
	var addr string
	deadline := time.Now().Add(15 * time.Second)
	for addr == "" {
		if b, err := os.ReadFile(addrFile); err == nil {
			addr = strings.TrimSpace(string(b))
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, errb.Bytes())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve never wrote its address: %s", errb.Bytes())
		}
		time.Sleep(5 * time.Millisecond)
	}
	c, err := api.NewClient(keys.Keys(t, keys.Alice), "http://"+addr, keys.Shop, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.OrderForm(ctx)
	if err != nil || len(f.Catalog) != 2 || f.Currency != "EUR" {
		t.Fatalf("order form %+v %v", f, err)
	}
	b := seal(t, keys.Alice, testOrder(t, v.register(t, keys.Alice)), stdParties, order.SealOptions{})
	if _, err := c.Submit(ctx, b); err != nil {
		t.Fatal(err)
	}
	for {
		st, err := c.Status(ctx, b.OrderID)
		if err != nil {
			t.Fatal(err)
		}
		if st.State == api.StateShipped {
			break
		}
		if api.Settled(st.State) || time.Now().After(deadline) {
			t.Fatalf("status %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d: %s", code, errb.Bytes())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	if log := errb.Bytes(); bytes.Contains(log, []byte(cardNumber)) || !bytes.Contains(log, []byte("order shipped")) {
		t.Fatalf("serve log:\n%s", log)
	}
}

// TestCLIPostgresErrors: a wrong DSN, an unreachable server, a refused
// login and a role without rights each stop a command with one error
// line and a hint, never the DSN's password.
func TestCLIPostgresErrors(t *testing.T) {
	ctx := context.Background()
	db := pgtest.New(t)
	noRights := db.NewRole(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	const secret = "s3cretpw"
	tests := []struct{ name, dsn, want string }{
		{"wrong DSN", "postgres://merchant:" + secret + "@127.0.0.1:port/shop", "cannot be parsed"},
		{"unreachable server", "postgres://merchant:" + secret + "@" + closed + "/shop?sslmode=disable", "unreachable"},
		{"wrong password", strings.Replace(db.URL(), db.Owner.Password, secret, 1), "refused the login"},
		{"role without rights", db.URLAs(noRights), "lacks the rights"},
	}
	for _, tt := range tests {
		for _, c := range []struct {
			prog string
			args []string
		}{{"merchant catalog", []string{"catalog", "list"}}, {"merchant", []string{"outbox"}}} {
			t.Run(tt.name+"/"+strings.Join(c.args, " "), func(t *testing.T) {
				code, out, errs := runCLI(t, ctx, "", append(c.args, "-db", tt.dsn)...)
				if code != cli.ExitFailure || out != "" {
					t.Fatalf("exit %d, stdout %q: %s", code, out, errs)
				}
				oneLineError(t, errs, c.prog, tt.want)
				if !strings.Contains(errs, c.prog+": hint: ") {
					t.Fatalf("no hint: %s", errs)
				}
				for _, pw := range []string{secret, noRights.Password, db.Owner.Password} {
					if strings.Contains(errs, pw) {
						t.Fatalf("a password in the message: %s", errs)
					}
				}
			})
		}
	}
}
