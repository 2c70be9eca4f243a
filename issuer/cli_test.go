package issuer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"orderseal/internal/cli"
	"orderseal/issuer"
	"orderseal/issuer/api"
	"orderseal/issuer/store"
	"orderseal/tstest/keys"

	"orderseal/order"
	"orderseal/order/money"
)

// run runs issuer.Main with stdin and returns its exit code, stdout and stderr.
func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := issuer.Main(context.Background(), args, cli.Stdio{In: strings.NewReader(stdin), Out: &out, Err: &errb})
	return code, out.String(), errb.String()
}

// cardLineRe is what "card add" prints on stdout: the card id and masked
// number, then the card's CVC.
var cardLineRe = regexp.MustCompile(`^(card_[a-z2-7]{26}) \*\*\*\*(\d{4})\ncvc (\d{3})\n$`)

// cliEnv is a directory with a card key and a database path.
type cliEnv struct{ dir, key, db string }

func newCLIEnv(t *testing.T) cliEnv {
	t.Helper()
	dir := t.TempDir()
	e := cliEnv{dir: dir, key: filepath.Join(dir, "card.key"), db: filepath.Join(dir, "issuer.db")}
	if code, _, stderr := run(t, "", "init", "-card-key", e.key); code != 0 {
		t.Fatalf("init: %d %s", code, stderr)
	}
	return e
}

func (e cliEnv) add(t *testing.T, number, holder string, extra ...string) (int, string, string) {
	t.Helper()
	args := append([]string{"card", "add", "-db", e.db, "-card-key", e.key, "-cardholder", holder,
		"-expiry", "2031-12", "-limit", "50000", "-currency", "EUR"}, extra...)
	return run(t, number, args...)
}

func TestCLIInit(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	st, err := os.Stat(e.key)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v %v", st.Mode(), err)
	}
	before, _ := os.ReadFile(e.key)
	code, _, stderr := run(t, "", "init", "-card-key", e.key)
	if code != cli.ExitFailure || !strings.Contains(stderr, "issuer: error:") || !strings.Contains(stderr, "issuer: hint: a card key is never overwritten") {
		t.Fatalf("second init: %d %s", code, stderr)
	}
	if after, _ := os.ReadFile(e.key); !bytes.Equal(before, after) {
		t.Fatal("init overwrote the card key")
	}
	if code, _, _ := run(t, "", "init"); code != cli.ExitUsage {
		t.Fatalf("init without -card-key: %d", code)
	}
}

func TestCLICards(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	// From stdin, spaced as printed on the card.
	code, out, stderr := e.add(t, "4111 1111 1111 1111\n", keys.Alice)
	m := cardLineRe.FindStringSubmatch(out)
	if code != 0 || m == nil || m[2] != "1111" {
		t.Fatalf("add: %d %q %s", code, out, stderr)
	}
	if !strings.Contains(stderr, "issuer card: hint: print the cvc on the card") || !strings.Contains(stderr, "not stored") || strings.Contains(stderr, "cvc "+m[3]) {
		t.Fatalf("add: the cvc hint, or the cvc on stderr: %s", stderr)
	}
	visaID := m[1]
	// From a file.
	numFile := filepath.Join(e.dir, "card.txt")
	os.WriteFile(numFile, []byte(master+"\n"), 0o600)
	code, out, stderr = e.add(t, "", keys.Bob, "-number-file", numFile)
	m = cardLineRe.FindStringSubmatch(out)
	if code != 0 || m == nil || m[2] != "4444" {
		t.Fatalf("add from file: %d %q %s", code, out, stderr)
	}
	masterID := m[1]

	// Refusals never echo the number.
	for _, tc := range []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stderr string
	}{
		{"duplicate", visa, nil, cli.ExitFailure, "already enrolled as " + visaID},
		{"luhn", "4111111111111112", nil, cli.ExitFailure, "Luhn"},
		{"letters", "4111x11111111111", nil, cli.ExitFailure, "digits"},
		{"empty stdin", "", nil, cli.ExitFailure, "digits"},
		{"number on the command line", "", []string{visa}, cli.ExitUsage, "never from the command line"},
		{"number in a flag", "", []string{"-limit", "4111111111111111x"}, cli.ExitUsage, "[amount-invalid]"},
		{"limit with more decimals than EUR has", visa, []string{"-limit", "500.005"}, cli.ExitUsage, "[currency-minor-units]"},
		{"decimal limit for JPY", visa, []string{"-limit", "50000.0", "-currency", "JPY"}, cli.ExitUsage, "[currency-minor-units]"},
		{"currency XYZ", visa, []string{"-currency", "XYZ"}, cli.ExitUsage, "currency: " + money.ErrUnsupported.Error()},
		{"fund unit", visa, []string{"-currency", "CLF"}, cli.ExitUsage, "currency: " + money.ErrUnsupported.Error()},
		{"no brand's number", "9111111111111110", nil, cli.ExitFailure, "no card brand"},
		{"bad expiry", visa, []string{"-expiry", "12/31"}, cli.ExitFailure, "YYYY-MM"},
		{"bad cardholder", "4012888888881881", []string{"-cardholder", "merchant:shop.example"}, cli.ExitFailure, "cardholder:<name>"},
		{"bad limit", "4012888888881881", []string{"-limit", "0"}, cli.ExitUsage, "-limit"},
	} {
		args := append([]string{"card", "add", "-db", e.db, "-card-key", e.key, "-cardholder", keys.Alice,
			"-expiry", "2031-12", "-limit", "50000", "-currency", "EUR"}, tc.args...)
		code, out, stderr := run(t, tc.stdin, args...)
		if code != tc.code || out != "" || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%s: exit %d, stdout %q, stderr %s", tc.name, code, out, stderr)
		}
		for _, n := range []string{visa, "4111111111111112", "4111x11111111111", "4012888888881881", "41111111"} {
			if strings.Contains(stderr, n) {
				t.Errorf("%s: stderr holds a card number: %s", tc.name, stderr)
			}
		}
	}
	// Without a key, or with another one.
	other := filepath.Join(e.dir, "other.key")
	run(t, "", "init", "-card-key", other)
	code, _, stderr = e.add(t, "4012888888881881", keys.Alice, "-card-key", other)
	if code != cli.ExitFailure || !strings.Contains(stderr, "another card key") || !strings.Contains(stderr, "hint:") {
		t.Fatalf("wrong card key: %d %s", code, stderr)
	}
	os.Chmod(other, 0o644)
	if code, _, stderr := e.add(t, "4012888888881881", keys.Alice, "-card-key", other); code != cli.ExitFailure || !strings.Contains(stderr, "chmod 600") {
		t.Fatalf("readable card key: %d %s", code, stderr)
	}

	// List, text and JSON.
	code, out, _ = run(t, "", "card", "list", "-db", e.db)
	if code != 0 || !strings.Contains(out, visaID) || !strings.Contains(out, "****1111") || !strings.Contains(out, keys.Bob) || strings.Contains(out, visa) {
		t.Fatalf("list: %d %s", code, out)
	}
	code, out, _ = run(t, "", "card", "list", "-db", e.db, "-json")
	var cards []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &cards) != nil || len(cards) != 2 {
		t.Fatalf("list -json: %d %s", code, out)
	}
	if c := cards[0]; c["card_id"] != visaID || c["last4"] != "1111" || c["cardholder"] != keys.Alice || c["status"] != "active" ||
		c["limit"] != float64(50000) || c["available"] != float64(50000) || c["expiry"] != "2031-12" || c["currency"] != "EUR" {
		t.Fatalf("list -json: %v", c)
	}

	// Status changes, the id before or after the flags.
	for _, tc := range []struct {
		args   []string
		code   int
		status string
	}{
		{[]string{"suspend", visaID, "-db", e.db}, 0, "suspended"},
		{[]string{"activate", "-db", e.db, visaID}, 0, "active"},
		{[]string{"close", masterID, "-db", e.db}, 0, "closed"},
		{[]string{"activate", masterID, "-db", e.db}, cli.ExitFailure, "stays closed"},
		{[]string{"suspend", "card_aaaaaaaaaaaaaaaaaaaaaaaaaa", "-db", e.db}, cli.ExitFailure, "not found"},
		{[]string{"suspend", visa, "-db", e.db}, cli.ExitFailure, "not a card id"},
		{[]string{"suspend", "-db", e.db}, cli.ExitUsage, "card id is required"},
		{[]string{"suspend", visaID}, cli.ExitUsage, "-db is required"},
	} {
		code, out, stderr := run(t, "", append([]string{"card"}, tc.args...)...)
		if code != tc.code || !strings.Contains(out+stderr, tc.status) || strings.Contains(stderr, visa) {
			t.Errorf("card %v: %d %q %s", tc.args, code, out, stderr)
		}
	}
	// Admin commands never create a database.
	missing := filepath.Join(e.dir, "missing.db")
	if code, _, stderr := run(t, "", "card", "list", "-db", missing); code != cli.ExitFailure || !strings.Contains(stderr, "no such database") {
		t.Fatalf("list of a missing database: %d %s", code, stderr)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatal("list created a database")
	}
	// No file holds a number in clear.
	filepath.WalkDir(e.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(p, "card.txt") {
			data, _ := os.ReadFile(p)
			if bytes.Contains(data, []byte(visa)) || bytes.Contains(data, []byte(master)) {
				t.Errorf("%s holds a card number in clear", p)
			}
		}
		return nil
	})
}

// TestCLIServe runs "issuer serve" on a free port, authorizes an order
// through it, and stops it with a cancelled context (SIGTERM) for exit 0.
func TestCLIServe(t *testing.T) {
	t.Parallel()
	e := newCLIEnv(t)
	bankKey := keys.WriteKeyFile(t, e.dir, keys.Bank)
	shopKey := keys.WriteKeyFile(t, e.dir, keys.Shop)
	if code, _, stderr := e.add(t, visa, keys.Alice); code != 0 {
		t.Fatal(stderr)
	}
	// A key of the wrong role is refused.
	code, _, stderr := run(t, "", "serve", "-key", shopKey, "-db", e.db, "-card-key", e.key)
	if code != cli.ExitFailure || !strings.Contains(stderr, "not of an issuer") {
		t.Fatalf("serve with a merchant key: %d %s", code, stderr)
	}
	if code, _, _ := run(t, "", "serve", "-key", bankKey, "-db", e.db); code != cli.ExitUsage {
		t.Fatalf("serve without -card-key: %d", code)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrFile := filepath.Join(e.dir, "addr")
	logs := &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- issuer.Main(ctx, []string{"serve", "-key", bankKey, "-db", e.db, "-card-key", e.key,
			"-listen", "127.0.0.1:0", "-addr-file", addrFile}, cli.Stdio{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: logs})
	}()
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; {
		if b, err := os.ReadFile(addrFile); err == nil {
			addr = strings.TrimSpace(string(b))
		} else if time.Now().After(deadline) {
			t.Fatalf("no address file; log: %s", logs.Bytes())
		}
		time.Sleep(10 * time.Millisecond)
	}
	c, err := api.NewClient(keys.Keys(t, keys.Shop), "http://"+addr, keys.Bank, &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b := seal(t, orderOpts{})
	a, err := c.Authorize(ctx, b, orderTotal, "EUR", "")
	if err != nil || a.Decision != api.Approved {
		t.Fatalf("authorize through the daemon: %+v %v", a, err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("serve exited %d: %s", code, logs.Bytes())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	log := logs.Bytes()
	if !bytes.Contains(log, []byte(`"msg":"listening"`)) || !bytes.Contains(log, []byte(`"msg":"authorization decided"`)) {
		t.Fatalf("log: %s", log)
	}
	if bytes.Contains(log, []byte(visa)) || bytes.Contains(log, []byte("737")) && bytes.Contains(log, []byte(`"cvc"`)) {
		t.Fatal("the daemon logged card data")
	}
	code, out, _ := run(t, "", "card", "list", "-db", e.db, "-json")
	var cards []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &cards) != nil || cards[0]["available"] != float64(50000-orderTotal) {
		t.Fatalf("after serve: %s", out)
	}
}

func TestCLIUsage(t *testing.T) {
	t.Parallel()
	if code, _, stderr := run(t, ""); code != cli.ExitUsage || !strings.Contains(stderr, "serve") || !strings.Contains(stderr, "card") {
		t.Fatalf("no args: %d %s", code, stderr)
	}
	if code, _, stderr := run(t, "", "card"); code != cli.ExitUsage || !strings.Contains(stderr, "suspend") {
		t.Fatalf("card: %d %s", code, stderr)
	}
	if code, _, stderr := run(t, "", "card", "add", "-h"); code != 0 || !strings.Contains(stderr, "-number-file") || strings.Contains(stderr, visa) {
		t.Fatalf("card add -h: %d %s", code, stderr)
	}
	if code, _, _ := run(t, "", "card", "frobnicate"); code != cli.ExitUsage {
		t.Fatalf("unknown card command: %d", code)
	}
}

// TestCLIAuthorizations: the CVC "card add" prints authorizes a consultant's
// order; "authorizations" lists the answers newest first with sealer,
// channel and session, as text or JSON, one session's only with -session,
// and never prints a card number, not even masked.
func TestCLIAuthorizations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newCLIEnv(t)
	code, out, stderr := e.add(t, visa, keys.Alice)
	m := cardLineRe.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("add: %d %q %s", code, out, stderr)
	}
	cvc := m[3]
	if code, out, stderr := run(t, "", "authorizations", "-db", e.db, "-json"); code != 0 || out != "[]\n" {
		t.Fatalf("no authorizations yet: %d %q %s", code, out, stderr)
	}

	// Serve the database the CLI wrote, in process.
	key, err := store.LoadCardKey(e.key)
	if err != nil {
		t.Fatal(err)
	}
	st, err := issuer.OpenStore(ctx, e.db, store.Options{CardKey: key})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(issuer.NewServer(keys.Keys(t, keys.Bank), st, issuer.Options{}).Handler())
	c, err := api.NewClient(keys.Keys(t, keys.Shop), ts.URL, keys.Bank, ts.Client())
	if err != nil {
		t.Fatal(err)
	}
	online := seal(t, orderOpts{})
	if a, err := c.Authorize(ctx, online, orderTotal, "EUR", ""); err != nil || a.Decision != api.Approved {
		t.Fatalf("online: %+v %v", a, err)
	}
	wrong := sealAssisted(t, orderOpts{cvc: otherCVC(cvc), seal: order.SealOptions{Session: otherSession}})
	if a, err := c.Authorize(ctx, wrong, orderTotal, "EUR", otherSession); err != nil || a.Reason != api.ReasonCVCMismatch {
		t.Fatalf("wrong cvc: %+v %v", a, err)
	}
	phone := sealAssisted(t, orderOpts{cvc: cvc})
	approved, err := c.Authorize(ctx, phone, orderTotal, "EUR", testSession)
	if err != nil || approved.Decision != api.Approved || approved.Session != testSession {
		t.Fatalf("the cvc card add printed: %+v %v", approved, err)
	}
	if _, err := c.Void(ctx, online.OrderID); err != nil {
		t.Fatal(err)
	}
	ts.Close()
	st.Close()

	noNumber := func(what, out string) {
		t.Helper()
		for _, n := range []string{visa, "****", "4111"} {
			if strings.Contains(out, n) {
				t.Errorf("%s prints card data %q:\n%s", what, n, out)
			}
		}
	}
	code, out, stderr = run(t, "", "authorizations", "-db", e.db)
	noNumber("authorizations", out+stderr)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || len(lines) != 4 {
		t.Fatalf("authorizations: %d %s %s", code, out, stderr)
	}
	if got := strings.Join(strings.Fields(lines[0]), " "); got != "ORDER MERCHANT SEALER CHANNEL SESSION AMOUNT CURRENCY DECISION REASON AUTH DECIDED VOIDED STATE CAPTURED REFUNDED INSTALLMENTS" {
		t.Fatalf("header %q", got)
	}
	for i, want := range [][]string{
		{phone.OrderID, keys.Shop, carolID, api.ChannelAssisted, testSession, "34.48", "EUR", "EUR", api.Approved, "-", approved.AuthCode, "", "-", api.StateAuthorized, "0.00", "EUR", "0.00", "EUR"},
		{wrong.OrderID, keys.Shop, carolID, api.ChannelAssisted, otherSession, "34.48", "EUR", "EUR", api.Declined, api.ReasonCVCMismatch, "-", "", "-", api.StateDeclined, "0.00", "EUR", "0.00", "EUR"},
		{online.OrderID, keys.Shop, keys.Alice, api.ChannelOnline, "-", "34.48", "EUR", "EUR", api.Approved, "-", "", "", "", api.StateVoided, "0.00", "EUR", "0.00", "EUR"},
	} {
		got := strings.Fields(lines[i+1])
		if len(got) <= len(want) { // then INSTALLMENTS: planOf's, held by TestCLIAuthorizationsPlan
			t.Fatalf("line %d: %q", i+1, lines[i+1])
		}
		if plan := strings.Join(got[len(want):], " "); (plan == "-") != (want[8] != api.Approved) {
			t.Fatalf("line %d: installments %q (the test order is in 3)", i+1, plan)
		}
		for j := range want {
			if want[j] != "" && got[j] != want[j] {
				t.Errorf("line %d, column %d: %q, want %q", i+1, j+1, got[j], want[j])
			}
		}
		if _, err := time.Parse(time.RFC3339, got[11]); err != nil { // AMOUNT is two fields: "34.48 EUR"
			t.Errorf("line %d: decided %q", i+1, got[11])
		}
	}
	if voided := strings.Fields(lines[3])[12]; voided == "-" {
		t.Errorf("the voided online order shows no void time: %q", lines[3])
	}

	code, out, stderr = run(t, "", "authorizations", "-db", e.db, "-json")
	noNumber("authorizations -json", out+stderr)
	var all []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &all) != nil || len(all) != 3 {
		t.Fatalf("-json: %d %s %s", code, out, stderr)
	}
	if a := all[0]; a["order_id"] != phone.OrderID || a["merchant"] != keys.Shop || a["sealer"] != carolID || a["channel"] != api.ChannelAssisted ||
		a["session"] != testSession || a["amount"] != float64(orderTotal) || a["currency"] != "EUR" || a["decision"] != api.Approved ||
		a["reason"] != "" || a["auth_code"] != approved.AuthCode || a["decided"] != approved.Decided || a["voided"] != false || a["voided_at"] != nil {
		t.Fatalf("-json: %v", a)
	}
	if a := all[2]; a["channel"] != api.ChannelOnline || a["session"] != "" || a["sealer"] != keys.Alice || a["voided"] != true || a["voided_at"] == nil ||
		a["state"] != api.StateVoided || a["captured"] != float64(0) || a["hold_until"] == nil {
		t.Fatalf("-json online: %v", a)
	}
	for key := range all[0] {
		if strings.Contains(key, "card") || strings.Contains(key, "number") || strings.Contains(key, "cvc") {
			t.Errorf("-json has a field %q", key)
		}
	}

	code, out, _ = run(t, "", "authorizations", "-db", e.db, "-session", testSession, "-json")
	var one []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &one) != nil || len(one) != 1 || one[0]["order_id"] != phone.OrderID {
		t.Fatalf("-session: %d %s", code, out)
	}
	code, out, _ = run(t, "", "authorizations", "-db", e.db, "-session", "ses_zzzzzzzzzzzzzzzzzzzzzzzzzz")
	if code != 0 || strings.Count(out, "\n") != 1 {
		t.Fatalf("another session: %d %q", code, out)
	}

	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"-db", e.db, "-session", "ses_1"}, cli.ExitUsage, "not a session reference"},
		{[]string{"-json"}, cli.ExitUsage, "-db is required"},
		{[]string{"-db", e.db, "extra"}, cli.ExitUsage, "unexpected argument"},
		{[]string{"-db", filepath.Join(e.dir, "missing.db")}, cli.ExitFailure, "no such database"},
	} {
		code, out, stderr := run(t, "", append([]string{"authorizations"}, tc.args...)...)
		if code != tc.code || out != "" || !strings.Contains(stderr, tc.stderr) || strings.Count(stderr, "issuer: error:") != 1 {
			t.Errorf("authorizations %v: %d %q %s", tc.args, code, out, stderr)
		}
	}
	if code, _, stderr := run(t, "", "authorizations", "-h"); code != 0 || !strings.Contains(stderr, "-session") {
		t.Fatalf("authorizations -h: %d %s", code, stderr)
	}
}

// TestCLIAuthorizationsPlan: an approval in installments lists the
// issuer's schedule, each amount formatted for its currency, as text and
// as JSON (minor units there); a single payment shows none.
func TestCLIAuthorizationsPlan(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newCLIEnv(t)
	if code, out, stderr := e.add(t, visa, keys.Alice); code != 0 {
		t.Fatalf("add: %d %q %s", code, out, stderr)
	}
	key, err := store.LoadCardKey(e.key)
	if err != nil {
		t.Fatal(err)
	}
	st, err := issuer.OpenStore(ctx, e.db, store.Options{CardKey: key})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(issuer.NewServer(keys.Keys(t, keys.Bank), st, issuer.Options{}).Handler())
	c, err := api.NewClient(keys.Keys(t, keys.Shop), ts.URL, keys.Bank, ts.Client())
	if err != nil {
		t.Fatal(err)
	}
	plan := seal(t, orderOpts{installments: 3})
	a, err := c.Authorize(ctx, plan, orderTotal, "EUR", "")
	if err != nil || a.Decision != api.Approved || a.Plan == nil || len(a.Plan.Schedule) != 3 {
		t.Fatalf("in 3 installments: %+v %v", a, err)
	}
	single := seal(t, orderOpts{installments: 1})
	if a, err := c.Authorize(ctx, single, orderTotal, "EUR", ""); err != nil || a.Decision != api.Approved {
		t.Fatalf("single: %+v %v", a, err)
	}
	ts.Close()
	st.Close()

	// 34.48 EUR in three: the odd cent goes to the first.
	due := a.Plan.Schedule
	want := "3: 11.50 EUR " + due[0].Due + ", 11.49 EUR " + due[1].Due + ", 11.49 EUR " + due[2].Due
	code, out, stderr := run(t, "", "authorizations", "-db", e.db)
	if code != 0 {
		t.Fatalf("authorizations: %d %s", code, stderr)
	}
	rows := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			rows[f[0]] = l
		}
	}
	if !strings.HasSuffix(rows[plan.OrderID], want) {
		t.Fatalf("plan row %q, want it to end %q", rows[plan.OrderID], want)
	}
	if !strings.HasSuffix(rows[single.OrderID], " -") {
		t.Fatalf("single payment row %q", rows[single.OrderID])
	}
	code, out, _ = run(t, "", "authorizations", "-db", e.db, "-json")
	var all []struct {
		OrderID string    `json:"order_id"`
		Plan    *api.Plan `json:"plan"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &all) != nil || len(all) != 2 {
		t.Fatalf("-json: %d %s", code, out)
	}
	for _, x := range all {
		switch x.OrderID {
		case plan.OrderID:
			if x.Plan == nil || x.Plan.Installments != 3 || len(x.Plan.Schedule) != 3 || x.Plan.Schedule[0].Amount != 1150 || x.Plan.Schedule[2].Due != due[2].Due {
				t.Fatalf("-json plan %+v", x.Plan)
			}
		case single.OrderID:
			if x.Plan != nil {
				t.Fatalf("-json: a single payment with a plan %+v", x.Plan)
			}
		}
	}
}
