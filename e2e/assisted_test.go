package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"orderseal/assisted"
	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/wire"
	issuerapi "orderseal/issuer/api"
	issuerstore "orderseal/issuer/store"
	"orderseal/tstest/keys"

	merchantapi "orderseal/merchant/api"
	merchantstore "orderseal/merchant/store"
	"orderseal/suite"
)

// doraCard is the phone buyer's card: it is typed into the consultant's
// terminal and must rest nowhere but, encrypted, at the issuer.
const doraCard = "4012888888881881"

const cDora = "cardholder:dora@example.org"

// user is a person at a terminal: a home (with the config directory the
// session file lives in), a temp directory and a working directory.
type user struct{ home, tmp, work string }

func (c *cluster) newUser(name string) *user {
	c.t.Helper()
	u := &user{home: c.path(name, "home"), tmp: c.path(name, "tmp"), work: c.path(name, "work")}
	for _, d := range []string{u.home, u.tmp, u.work} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			c.t.Fatal(err)
		}
	}
	return u
}

func (u *user) sessionFile() string {
	return filepath.Join(u.home, ".config", "orderseal", "assisted", "consultant.carol.session.json")
}

// login runs `cardholder assisted login` as u on device and returns the
// session id, or the exit code and stderr of a refusal.
func (c *cluster) login(u *user, companyKey, device string, extra ...string) (session string, code int, stderr string) {
	c.t.Helper()
	args := append([]string{"assisted", "login", "-merchant", c.url("merchant"), "-merchant-id", cShop, "-key", c.keyFile(cCarol),
		"-company-key", c.keyFile(companyKey), "-device", device}, extra...)
	out, errs, code := c.runIn(u, "", "cardholder", args...)
	return strings.TrimSpace(out), code, errs
}

// phoneOrder keys in an order for Dora as u on device, typing card data on
// stdin, and returns the order id (if one was accepted), exit code, stdout
// and stderr.
func (c *cluster) phoneOrder(u *user, device, cardInput string, extra ...string) (id string, code int, stdout, stderr string) {
	c.t.Helper()
	args := append([]string{"order", "-assisted", "-merchant", c.url("merchant"), "-trust", c.trustFile(), "-key", c.keyFile(cCarol),
		"-buyer", c.path("consultant", "dora.buyer.json"), "-item", "mug_blue-350=2",
		"-ship-to-address", c.path("consultant", "dora.address.json"), "-device", device, "-wait", "60s"}, extra...)
	out, errs, code := c.runIn(u, cardInput, "cardholder", args...)
	if lines := strings.Fields(out); len(lines) > 0 && strings.HasPrefix(lines[0], "ord_") {
		id = lines[0]
	}
	return id, code, out, errs
}

// auditField reads "name   value" from the audit's aligned header: the name,
// then the two or more spaces tabwriter pads it with ("session" is not
// "session state").
func auditField(out, name string) string {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` {2,}(.+)$`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return strings.TrimSpace(m[1])
}

// tally counts what the merchant's store holds.
func (c *cluster) tally() merchantstore.Tally {
	c.t.Helper()
	t, err := c.merchantStore().Tally(context.Background())
	if err != nil {
		c.t.Fatalf("merchant tally: %v", err)
	}
	return t
}

func TestAssistedOrders(t *testing.T) {
	c := newCluster(t)
	out := c.must(doraCard+"\n", "issuer", "card", "add", "-db", c.path("issuer", "issuer.db"), "-card-key", c.path("issuer", "card.key"),
		"-cardholder", cDora, "-expiry", "2031-12", "-limit", "100000", "-currency", "EUR", "-number-file", "-")
	cvc := ""
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "cvc "); ok {
			cvc = strings.TrimSpace(v)
		}
	}
	if len(cvc) != 3 {
		t.Fatalf("issuer card add printed no cvc:\n%s", out)
	}
	wrongCVC := string(rune('0'+(cvc[0]-'0'+1)%10)) + cvc[1:]
	goodCard := doraCard + "\n12/31\n" + cvc + "\n"
	if err := os.MkdirAll(c.path("consultant"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"dora.buyer.json":   `{"name":"Dora Example","phone":"+4915112345679","email":"dora@example.org"}`,
		"dora.address.json": `{"name":"Dora Example","line1":"Kastanienallee 3","city":"Berlin","postal_code":"10435","country":"DE"}`,
	} {
		if err := os.WriteFile(c.path("consultant", name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	carol := c.newUser("carol")
	sessions := func() int { return c.tally().Sessions }
	orders := func() int { return c.tally().Orders }

	t.Run("a login without the company's signature is refused", func(t *testing.T) {
		c := c.with(t)
		before := sessions()
		// Through the CLI, with a company the merchant does not work with.
		if _, code, errs := c.login(carol, cRogueCo, "desk-7"); code == 0 || !strings.Contains(errs, merchantapi.CodeCompanyNotAccepted) {
			t.Fatalf("rogue company: exit %d\n%s", code, errs)
		}
		// On the wire: the consultant alone, with no or a made-up company signature.
		mc, err := merchantapi.NewClient(suite.NewKeys(keys.Party(t, cCarol), 4), c.url("merchant"), cShop, nil)
		if err != nil {
			t.Fatal(err)
		}
		dev, err := assisted.NewDeviceKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		other, err := assisted.NewDeviceKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		good, err := merchantapi.NewLogin(suite.NewKeys(keys.Party(t, cCallCenter), 4), dev, cShop, cCarol, "desk-7", time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name, code string
			edit       func(r *merchantapi.LoginRequest)
		}{
			{"no company signature", merchantapi.CodeLoginInvalid, func(r *merchantapi.LoginRequest) { r.CompanySignature = "" }},
			{"a made-up signature", merchantapi.CodeCompanySignature, func(r *merchantapi.LoginRequest) { r.CompanySignature = wire.B64(make([]byte, 32)) }},
			{"the company's signature for another device", merchantapi.CodeCompanySignature, func(r *merchantapi.LoginRequest) { r.Device = "desk-9" }},
			{"the company's signature for another consultant", merchantapi.CodeLoginInvalid, func(r *merchantapi.LoginRequest) { r.Consultant = "consultant:dave" }},
			{"the company's signature for another device key", merchantapi.CodeCompanySignature, func(r *merchantapi.LoginRequest) { r.DeviceKey = other.Public().String() }},
			{"a device key the terminal does not hold", merchantapi.CodeDeviceKeyMismatch, func(r *merchantapi.LoginRequest) {
				bad, _ := merchantapi.NewLogin(suite.NewKeys(keys.Party(t, cCallCenter), 4), other, cShop, cCarol, "desk-7", time.Hour, time.Now())
				r.DeviceSignature = bad.DeviceSignature
			}},
		}
		for _, tc := range cases {
			r := *good
			tc.edit(&r)
			_, err := mc.Login(context.Background(), &r)
			var p *rfc9457.Problem
			if !errors.As(err, &p) || p.Code != tc.code {
				t.Errorf("%s: got %v, want %s", tc.name, err, tc.code)
			}
		}
		if n := sessions(); n != before {
			t.Fatalf("refused logins stored %d sessions", n-before)
		}
		// The genuine request works once; the same request again is a replay.
		if _, err := mc.Login(context.Background(), good); err != nil {
			t.Fatal(err)
		}
		_, err = mc.Login(context.Background(), good)
		var p *rfc9457.Problem
		if !errors.As(err, &p) || p.Code != merchantapi.CodeLoginReplayed {
			t.Fatalf("replayed login: %v", err)
		}
	})

	var session, shippedID, declinedID string
	t.Run("a session's orders are keyed, authorized and traced to consultant, session and device", func(t *testing.T) {
		c := c.with(t)
		var code int
		var errs string
		session, code, errs = c.login(carol, cCallCenter, "desk-7", "-shift", "1h")
		if code != 0 || !strings.HasPrefix(session, "ses_") {
			t.Fatalf("login: exit %d %q\n%s", code, session, errs)
		}
		if st, err := os.Stat(carol.sessionFile()); err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("session file: %v %v", st, err)
		}
		before := c.available(cDora)
		id, code, stdout, stderr := c.phoneOrder(carol, "desk-7", goodCard)
		if code != 0 || !strings.Contains(stdout, id+" shipped") {
			t.Fatalf("phone order: exit %d\n%s%s", code, stdout, stderr)
		}
		shippedID = id
		if strings.Contains(stdout+stderr, doraCard) || strings.Contains(stdout+stderr, cvc+"\n") {
			t.Fatal("the CLI echoed card data")
		}
		if got := c.available(cDora); got != before-1700 {
			t.Fatalf("Dora's credit moved from %d to %d, want -1700", before, got)
		}
		// A wrong security code is declined, nothing debited.
		id, code, stdout, stderr = c.phoneOrder(carol, "desk-7", doraCard+"\n12/31\n"+wrongCVC+"\n")
		if code != 1 || !strings.Contains(stdout, id+" declined cvc-mismatch") {
			t.Fatalf("wrong cvc: exit %d\n%s%s", code, stdout, stderr)
		}
		declinedID = id
		if got := c.available(cDora); got != before-1700 {
			t.Fatalf("a declined order moved credit to %d", got)
		}

		au := c.must("", "merchant", "audit", "order", "-db", c.path("merchant", "merchant.db"), shippedID)
		for field, want := range map[string]string{"channel": "assisted", "consultant": cCarol, "company": cCallCenter,
			"session": session, "device": "desk-7", "session state": "live"} {
			if got := auditField(au, field); got != want {
				t.Errorf("audit order: %s = %q, want %q:\n%s", field, got, want, au)
			}
		}
		if auditField(au, "login") == "" {
			t.Errorf("audit order shows no login time:\n%s", au)
		}
		for _, want := range []string{"received", "authorized", "shipped", "bundle stored"} {
			if !strings.Contains(au, want) {
				t.Errorf("audit order's timeline lacks %q:\n%s", want, au)
			}
		}
		var aj struct {
			Channel string               `json:"channel"`
			Session *merchantapi.Session `json:"session"`
			Status  []merchantapi.Event  `json:"timeline"`
		}
		if err := json.Unmarshal([]byte(c.must("", "merchant", "audit", "order", "-json", "-db", c.path("merchant", "merchant.db"), shippedID)), &aj); err != nil {
			t.Fatal(err)
		}
		if aj.Channel != "assisted" || aj.Session == nil || aj.Session.Session != session || aj.Session.Device != "desk-7" || len(aj.Status) < 3 {
			t.Fatalf("audit order -json: %+v", aj)
		}
		// The issuer's own record names the session.
		iss := c.must("", "issuer", "authorizations", "-db", c.path("issuer", "issuer.db"), "-session", session)
		if !strings.Contains(iss, shippedID) || !strings.Contains(iss, declinedID) || strings.Contains(iss, doraCard) {
			t.Fatalf("issuer authorizations for %s:\n%s", session, iss)
		}
		auths, err := c.issuerStore().Authorizations(context.Background(), issuerstore.AuthFilter{Session: session})
		if err != nil {
			t.Fatal(err)
		}
		if n := countFunc(auths, func(a issuerstore.Authorization) bool { return a.Channel == issuerapi.ChannelAssisted }); n != 2 {
			t.Fatalf("issuer holds %d authorizations of the session", n)
		}
	})

	// Issue 16 item 8: the device was a name the client declared, in clear
	// in the session file.
	t.Run("the session file holds nothing in clear", func(t *testing.T) {
		data, err := os.ReadFile(carol.sessionFile())
		if err != nil {
			t.Fatal(err)
		}
		for _, clear := range []string{session, "desk-7", "sealed_id", cCallCenter, `"consultant"`} {
			if bytes.Contains(data, []byte(clear)) {
				t.Errorf("the session file holds %q in clear:\n%s", clear, data)
			}
		}
	})

	t.Run("the session file and key copied to another terminal are refused, whatever device it names", func(t *testing.T) {
		c := c.with(t)
		// Someone with Carol's keys sets up another terminal (it logs in
		// once, elsewhere), then copies Carol's session file over.
		thief := c.newUser("thief")
		if _, code, errs := c.login(thief, cCallCenter, "desk-5", "-session", filepath.Join(thief.work, "own.session.json")); code != 0 {
			t.Fatalf("the other terminal's login: exit %d\n%s", code, errs)
		}
		data, err := os.ReadFile(carol.sessionFile())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(thief.sessionFile()), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(thief.sessionFile(), data, 0o600); err != nil {
			t.Fatal(err)
		}
		before := orders()
		for _, device := range []string{"desk-7", "desk-9"} {
			_, code, stdout, stderr := c.phoneOrder(thief, device, goodCard)
			if code == 0 || strings.Contains(stdout, "ord_") {
				t.Fatalf("from another terminal as %s: exit %d\n%s%s", device, code, stdout, stderr)
			}
		}
		if n := orders(); n != before {
			t.Fatal("a refused order was stored")
		}
	})

	t.Run("the audit lists the orders of each session", func(t *testing.T) {
		c := c.with(t)
		au := c.must("", "merchant", "audit", "consultant", "-db", c.path("merchant", "merchant.db"), cCarol)
		for _, want := range []string{"session " + session, "device desk-7", "2 orders", shippedID, declinedID, "cvc-mismatch"} {
			if !strings.Contains(au, want) {
				t.Errorf("audit consultant lacks %q:\n%s", want, au)
			}
		}
	})

	t.Run("after logout, after a later login on the device, and after the shift the session proves nothing", func(t *testing.T) {
		c := c.with(t)
		kept, err := os.ReadFile(carol.sessionFile())
		if err != nil {
			t.Fatal(err)
		}
		restore := func(data []byte) {
			t.Helper()
			if err := os.WriteFile(carol.sessionFile(), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		before := orders()
		out, errs, code := c.runIn(carol, "", "cardholder", "assisted", "logout", "-key", c.keyFile(cCarol))
		if code != 0 || !strings.Contains(errs, "logged-out") {
			t.Fatalf("logout: exit %d\n%s%s", code, out, errs)
		}
		if _, err := os.Stat(carol.sessionFile()); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("logout left the session file: %v", err)
		}
		restore(kept) // the file, kept from before the logout
		if _, code, _, errs := c.phoneOrder(carol, "desk-7", goodCard); code == 0 || !strings.Contains(errs, merchantapi.CodeSessionEnded) {
			t.Fatalf("after logout: exit %d\n%s", code, errs)
		}

		// Two logins on one device: the first session ends.
		if _, code, errs := c.login(carol, cCallCenter, "desk-7"); code != 0 {
			t.Fatalf("login: %s", errs)
		}
		first, _ := os.ReadFile(carol.sessionFile())
		if _, code, errs := c.login(carol, cCallCenter, "desk-7"); code != 0 {
			t.Fatalf("login: %s", errs)
		}
		second, _ := os.ReadFile(carol.sessionFile())
		restore(first)
		if _, code, _, errs := c.phoneOrder(carol, "desk-7", goodCard); code == 0 || !strings.Contains(errs, merchantapi.CodeSessionEnded) {
			t.Fatalf("superseded session: exit %d\n%s", code, errs)
		}
		restore(second)
		if st, errs, code := c.runIn(carol, "", "cardholder", "assisted", "status", "-key", c.keyFile(cCarol)); code != 0 || !strings.Contains(st, "live") {
			t.Fatalf("status of the live session: exit %d\n%s%s", code, st, errs)
		}
		sess, err := c.merchantStore().Sessions(context.Background(), cCarol)
		if err != nil {
			t.Fatal(err)
		}
		if n := countFunc(sess, func(s *merchantstore.Session) bool { return s.Device == "desk-7" && s.Ended.IsZero() }); n != 1 {
			t.Fatalf("%d open sessions on one device", n)
		}

		// A two-second shift, then the order.
		short := c.path("carol", "work", "short.session.json")
		if _, code, errs := c.login(carol, cCallCenter, "desk-8", "-shift", "2s", "-session", short); code != 0 {
			t.Fatalf("short login: %s", errs)
		}
		time.Sleep(2500 * time.Millisecond)
		if _, code, _, errs := c.phoneOrder(carol, "desk-8", goodCard, "-session", short); code == 0 || !strings.Contains(errs, merchantapi.CodeSessionExpired) {
			t.Fatalf("after the shift: exit %d\n%s", code, errs)
		}
		if n := orders(); n != before {
			t.Fatalf("%d refused orders were stored", n-before)
		}
	})

	t.Run("an online bundle of a consultant, and card data from a file, are refused", func(t *testing.T) {
		c := c.with(t)
		_, errs, code := c.runIn(carol, "", "cardholder", "order", "-assisted", "-merchant", c.url("merchant"), "-key", c.keyFile(cCarol),
			"-card", c.path("consultant", "dora.buyer.json"), "-buyer", c.path("consultant", "dora.buyer.json"), "-item", "mug_blue-350=1",
			"-ship-to-address", c.path("consultant", "dora.address.json"))
		if code != 2 || !strings.Contains(errs, "never reads card data from a file") {
			t.Fatalf("-card with -assisted: exit %d\n%s", code, errs)
		}
		mc, err := merchantapi.NewClient(suite.NewKeys(keys.Party(t, cCarol), 4), c.url("merchant"), cShop, &http.Client{Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		_, err = mc.Status(context.Background(), shippedID)
		if err != nil {
			t.Fatalf("the consultant cannot follow the order it keyed: %v", err)
		}
	})

	t.Run("no card data on the consultant's machine, in the merchant's files or on the wire", func(t *testing.T) {
		c := c.with(t)
		c.stop("merchant")
		scanned := 0
		for _, dir := range []string{c.path("carol"), c.path("thief"), c.path("merchant")} {
			err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				scanned++
				if bytes.Contains(data, []byte(doraCard)) || bytes.Contains(data, []byte(doraCard[len(doraCard)-8:])) {
					t.Errorf("%s holds Dora's card number", p)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range []string{c.path("merchant", "merchant.db"), c.path("merchant", "merchant.log"), carol.sessionFile()} {
			if _, err := os.Stat(want); err != nil {
				t.Errorf("expected %s: %v", want, err)
			}
		}
		if scanned < 4 {
			t.Fatalf("scanned only %d files", scanned)
		}
		for _, ex := range c.wire.all() {
			if bytes.Contains(ex.req, []byte(doraCard)) || bytes.Contains(ex.resp, []byte(doraCard)) {
				t.Errorf("%s %s %s carries the card number in clear", ex.caller, ex.method, ex.path)
			}
		}
		// The one rightful place: the issuer, encrypted.
		// Raw SQL on purpose: the ciphertext's length at rest, which no store interface shows.
		if n := c.scalar(c.rawDB("issuer", "issuer.db"), `SELECT COUNT(*) FROM cards WHERE cardholder = ? AND length(number_ct) > 16`, cDora); n != 1 {
			t.Fatalf("issuer holds %d encrypted cards of Dora", n)
		}
	})
}
