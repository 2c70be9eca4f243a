package cardholder

// Assisted orders (DESIGN.md §6.7, seed 003): a merchant's phone consultant
// logs in with the consultant key and the company key, keeps the session in a
// 0600 file (its second identifier still sealed for the consultant), and
// keys in orders whose card data is read from the prompt and sealed at once.

import (
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"orderseal/assisted"
	"orderseal/internal/cli"
	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/secfile"
	"orderseal/internal/strictjson"
	"orderseal/keygen"
	merchantapi "orderseal/merchant/api"
	"orderseal/order"
	"orderseal/suite"
)

// SessionFile is an assisted session as the consultant's terminal keeps it.
// The second identifier stays sealed under K(consultant, merchant): the
// file alone, without the consultant's key, proves nothing.
type SessionFile struct {
	V           int    `json:"v"`
	MerchantURL string `json:"merchant_url"`
	Merchant    string `json:"merchant"`
	merchantapi.Session
}

const maxSessionFile = 8 << 10

// defaultSessionPath is where a consultant's session lives unless -session
// says otherwise: one file per consultant identity in the user's config dir.
func defaultSessionPath(consultant string) (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", cli.WithHint(fmt.Errorf("no config directory for the session file: %w", err), "pass -session FILE")
	}
	name := strings.TrimSuffix(keygen.KeyFileName(consultant), ".key") + ".session.json"
	return filepath.Join(dir, "orderseal", "assisted", name), nil
}

func sessionPath(flagValue, consultant string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	return defaultSessionPath(consultant)
}

func readSessionFile(path string) (*SessionFile, error) {
	data, err := secfile.Read(path, maxSessionFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, cli.WithHint(fmt.Errorf("no assisted session at %s", path), "log in with: cardholder assisted login")
	}
	if err != nil {
		return nil, fmt.Errorf("session file: %w", err)
	}
	var f SessionFile
	if err := strictjson.Decode(data, &f, maxSessionFile); err != nil {
		return nil, fmt.Errorf("session file %s: %w", path, err)
	}
	if f.V != 1 || !order.ValidSession(f.Session.Session) || !merchantapi.ValidDevice(f.Device) || f.SealedID == nil {
		return nil, fmt.Errorf("session file %s: not a version 1 assisted session", path)
	}
	return &f, nil
}

// consultantSession reads the session file of consultant (at -session, or the
// default path) and refuses one that belongs to someone else. It returns the
// path too.
func consultantSession(sessFlag, consultant string) (*SessionFile, string, error) {
	path, err := sessionPath(sessFlag, consultant)
	if err != nil {
		return nil, "", err
	}
	f, err := readSessionFile(path)
	if err != nil {
		return nil, "", err
	}
	if f.Consultant != consultant {
		return nil, "", fmt.Errorf("session file %s belongs to %s, not %s", path, f.Consultant, consultant)
	}
	return f, path, nil
}

func writeSessionFile(path string, f *SessionFile) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return secfile.Replace(path, append(data, '\n'))
}

// machineDevice names this machine for -device when none is given: a hash of
// its machine id, so the same terminal always presents the same device and a
// session file copied elsewhere presents another.
func machineDevice() (string, error) {
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		id, err := os.ReadFile(p)
		if err == nil && len(strings.TrimSpace(string(id))) > 0 {
			h := sha256.Sum256(append([]byte("orderseal-v1-device:"), strings.TrimSpace(string(id))...))
			return "m-" + hex.EncodeToString(h[:8]), nil
		}
	}
	return "", cli.Usagef("pass -device ID (the terminal's asset tag)", "this machine has no machine id to name the device by")
}

func deviceOf(flagValue string) (string, error) {
	if flagValue == "" {
		return machineDevice()
	}
	if !merchantapi.ValidDevice(flagValue) {
		return "", cli.Usagef("a device id is 1–64 of a-z 0-9 . _ : -", "-device %.80q is not a device id", flagValue)
	}
	return flagValue, nil
}

func loadRoleKey(path string, role keygen.Role, flagName string) (*keygen.PartyKey, error) {
	key, err := suite.LoadKey(path, role, time.Now())
	if err != nil {
		return nil, cli.HintIs(err, keygen.ErrRole, "pass the "+string(role)+" key with "+flagName)
	}
	return key, nil
}

func cmdAssisted(ctx context.Context, args []string, stdio cli.Stdio) error {
	p := prog + " assisted"
	code := cli.Dispatch(p, stdio, args, []cli.Command{
		{Name: "login", Summary: "open a session with the consultant and company keys (one per device and shift)", Run: func(a []string) error {
			return cmdLogin(ctx, p, a, stdio)
		}},
		{Name: "logout", Summary: "end the session now and delete its file", Run: func(a []string) error {
			return cmdLogout(ctx, p, a, stdio)
		}},
		{Name: "status", Summary: "show the session as the merchant sees it", Run: func(a []string) error {
			return cmdSessionStatus(ctx, p, a, stdio)
		}},
	})
	if code != cli.ExitOK {
		return &cli.Error{Err: cli.ErrReported, Code: code}
	}
	return nil
}

func cmdLogin(ctx context.Context, p string, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(p, "login", "-merchant URL -key CONSULTANT.key -company-key COMPANY.key [-device ID] [-shift D] [-session FILE]", stdio,
		p+" login -merchant http://127.0.0.1:8080 -key consultant.carol.key -company-key company.callcenter.key -device desk-7 -shift 8h")
	merchantURL := fs.String("merchant", "", "merchant base URL")
	merchantID := fs.String("merchant-id", "", "pin the merchant identity (default: merchant:HOST of -merchant)")
	keyPath := fs.String("key", "", "your consultant key file")
	companyPath := fs.String("company-key", "", "the company key file (on this terminal or its gateway)")
	deviceFlag := fs.String("device", "", "this terminal's device id (default: derived from the machine id)")
	shift := fs.Duration("shift", 8*time.Hour, "how long the session lasts (the merchant may cap it)")
	sessFlag := fs.String("session", "", "where to keep the session (default: in your config directory)")
	if err := cli.Parse(fs, args, "merchant", "key", "company-key"); err != nil {
		return err
	}
	if *shift < merchantapi.MinShift || *shift > 24*time.Hour {
		return cli.Usagef("use -shift 8h", "-shift must be between 1s and 24h")
	}
	device, err := deviceOf(*deviceFlag)
	if err != nil {
		return err
	}
	key, err := loadRoleKey(*keyPath, keygen.RoleConsultant, "-key")
	if err != nil {
		return err
	}
	defer key.Destroy()
	company, err := loadRoleKey(*companyPath, keygen.RoleCompany, "-company-key")
	if err != nil {
		return err
	}
	defer company.Destroy()
	if !company.Params().Equal(key.Params()) {
		return errors.New("the consultant and company keys come from different key centers")
	}
	path, err := sessionPath(*sessFlag, key.Identity())
	if err != nil {
		return err
	}
	keys := suite.NewKeys(key, 4)
	mc, err := newMerchantClient(keys, *merchantURL, *merchantID, &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	form, err := mc.OrderForm(ctx)
	if err != nil {
		return formErr(mc, err)
	}
	req, err := merchantapi.NewLogin(suite.NewKeys(company, 1), form.Merchant, key.Identity(), device, *shift, time.Now())
	if err != nil {
		return err
	}
	sess, err := mc.Login(ctx, req)
	if err != nil {
		return reachErr("merchant", err)
	}
	if sess.Consultant != key.Identity() || sess.Device != device || sess.Company != company.Identity() || !order.ValidSession(sess.Session) {
		return fmt.Errorf("merchant answered with a session for someone else")
	}
	// Open the identifier once now, so a session that could never prove an
	// order is refused here rather than at the first order.
	secret, err := assisted.OpenSecret(keys, form.Merchant, sess.Session, sess.Device, sess.SealedID)
	if err != nil {
		return fmt.Errorf("the session's second identifier does not open: %w", err)
	}
	clear(secret)
	if err := writeSessionFile(path, &SessionFile{V: 1, MerchantURL: *merchantURL, Merchant: form.Merchant, Session: *sess}); err != nil {
		return err
	}
	fmt.Fprintln(stdio.Out, sess.Session)
	fmt.Fprintf(stdio.Err, "%s: %s logged in for %s on device %s until %s; session %s kept in %s\n",
		p, sess.Consultant, sess.Company, sess.Device, sess.Expires, sess.Session, path)
	return nil
}

// sessionClient loads the consultant key and session file and makes a client
// for the session's merchant.
func sessionClient(keyPath, sessFlag, merchantURL string) (*keygen.PartyKey, *SessionFile, string, *merchantapi.Client, error) {
	key, err := loadRoleKey(keyPath, keygen.RoleConsultant, "-key")
	if err != nil {
		return nil, nil, "", nil, err
	}
	f, path, err := consultantSession(sessFlag, key.Identity())
	if err != nil {
		key.Destroy()
		return nil, nil, "", nil, err
	}
	mc, err := merchantapi.NewClient(suite.NewKeys(key, 4), cmp.Or(merchantURL, f.MerchantURL), f.Merchant, &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		key.Destroy()
		return nil, nil, "", nil, err
	}
	return key, f, path, mc, nil
}

func cmdLogout(ctx context.Context, p string, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(p, "logout", "-key CONSULTANT.key [-merchant URL] [-session FILE]", stdio,
		p+" logout -key consultant.carol.key")
	merchantURL := fs.String("merchant", "", "merchant base URL (default: the one logged in to)")
	keyPath := fs.String("key", "", "your consultant key file")
	sessFlag := fs.String("session", "", "the session file (default: in your config directory)")
	if err := cli.Parse(fs, args, "key"); err != nil {
		return err
	}
	key, f, path, mc, err := sessionClient(*keyPath, *sessFlag, *merchantURL)
	if err != nil {
		return err
	}
	defer key.Destroy()
	sess, err := mc.Logout(ctx, f.Session.Session)
	var prob *rfc9457.Problem
	switch {
	case errors.As(err, &prob) && prob.Code == merchantapi.CodeSessionUnknown:
		fmt.Fprintf(stdio.Err, "%s: the merchant does not know session %s; deleting the file\n", p, f.Session.Session)
	case err != nil:
		return reachErr("merchant", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if sess != nil {
		fmt.Fprintf(stdio.Err, "%s: session %s %s\n", p, sess.Session, sess.State)
	}
	return nil
}

func cmdSessionStatus(ctx context.Context, p string, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(p, "status", "-key CONSULTANT.key [-merchant URL] [-session FILE] [-json]", stdio)
	merchantURL := fs.String("merchant", "", "merchant base URL (default: the one logged in to)")
	keyPath := fs.String("key", "", "your consultant key file")
	sessFlag := fs.String("session", "", "the session file (default: in your config directory)")
	asJSON := fs.Bool("json", false, "JSON output")
	if err := cli.Parse(fs, args, "key"); err != nil {
		return err
	}
	key, f, _, mc, err := sessionClient(*keyPath, *sessFlag, *merchantURL)
	if err != nil {
		return err
	}
	defer key.Destroy()
	sess, err := mc.SessionInfo(ctx, f.Session.Session)
	if err != nil {
		return reachErr("merchant", err)
	}
	if *asJSON {
		return json.NewEncoder(stdio.Out).Encode(sess)
	}
	fmt.Fprintf(stdio.Out, "session     %s\nstate       %s\nconsultant  %s\ncompany     %s\ndevice      %s\nlogin       %s\nshift ends  %s\n",
		sess.Session, sess.State, sess.Consultant, sess.Company, sess.Device, sess.Created, sess.Expires)
	if sess.Ended != "" {
		fmt.Fprintf(stdio.Out, "ended       %s\n", sess.Ended)
	}
	if sess.State != merchantapi.SessionLive {
		return fmt.Errorf("session %s is %s; log in again", sess.Session, sess.State)
	}
	return nil
}

// maxCardLine bounds one typed line of card data.
const maxCardLine = 64

// readCard reads the buyer's card from the consultant's keyboard with echo
// off, or, when stdin is not a terminal, three lines from stdin: number,
// expiry (MM/YY, MM/YYYY or YYYY-MM), security code. It never reads a file
// and never writes what it read anywhere; error messages name no value.
func readCard(stdio cli.Stdio) (order.Card, error) {
	var card order.Card
	prompts := []string{"card number", "expiry (MM/YY)", "security code"}
	vals := make([][]byte, 0, len(prompts))
	defer func() {
		for _, v := range vals {
			clear(v)
		}
	}()
	if f, ok := stdio.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		for _, pr := range prompts {
			fmt.Fprintf(stdio.Err, "%s: ", pr)
			v, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(stdio.Err)
			if err != nil {
				return card, fmt.Errorf("reading the %s: %w", pr, err)
			}
			vals = append(vals, v)
		}
	} else {
		r := bufio.NewReaderSize(io.LimitReader(stdio.In, 3*(maxCardLine+2)), 3*(maxCardLine+2))
		for _, pr := range prompts {
			line, err := r.ReadSlice('\n')
			if err != nil && (err != io.EOF || len(line) == 0) {
				return card, cli.WithHint(fmt.Errorf("reading the %s from stdin: %w", pr, err), "give the number, expiry and security code on three lines")
			}
			v := make([]byte, len(line))
			copy(v, line)
			clear(line)
			vals = append(vals, v)
		}
	}
	for i, v := range vals {
		vals[i] = []byte(strings.TrimSpace(string(v)))
		clear(v)
		if len(vals[i]) == 0 || len(vals[i]) > maxCardLine {
			return card, fmt.Errorf("%s: empty or longer than %d characters", prompts[i], maxCardLine)
		}
	}
	number := strings.NewReplacer(" ", "", "-", "").Replace(string(vals[0]))
	expiry, ok := normalizeExpiry(string(vals[1]))
	if !ok {
		return card, cli.WithHint(errors.New("expiry: not a month"), "type it as on the card, MM/YY")
	}
	return order.Card{Number: number, Expiry: expiry, CVC: string(vals[2])}, nil
}

// normalizeExpiry turns MM/YY, MM/YYYY or YYYY-MM into YYYY-MM.
func normalizeExpiry(s string) (string, bool) {
	if t, err := time.Parse("2006-01", s); err == nil && len(s) == 7 {
		return t.Format("2006-01"), true
	}
	for _, layout := range []string{"01/06", "01/2006"} {
		if t, err := time.Parse(layout, s); err == nil && len(s) == len(layout) {
			return t.Format("2006-01"), true
		}
	}
	return "", false
}
