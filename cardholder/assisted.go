package cardholder

// Assisted orders (DESIGN.md §6.7, seed 003): a merchant's phone consultant
// logs in with the consultant key and the company key, keeps the session in a
// 0600 file (its second identifier still sealed for the consultant), and
// keys in orders whose card data is read from the prompt and sealed at once.

import (
	"bufio"
	"cmp"
	"context"
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

// SessionFile is an assisted session as the consultant's terminal keeps it:
// the plaintext inside sessionBox, never written in clear.
type SessionFile struct {
	V           int    `json:"v"`
	MerchantURL string `json:"merchant_url"`
	Merchant    string `json:"merchant"`
	merchantapi.Session
}

// sessionBox is the session file on disk (issue 16 item 8): the SessionFile
// sealed under Mix(K(consultant, merchant), this terminal's device key), so
// neither the session, its device nor its sealed identifier are in clear,
// and a copy opens on no other terminal. The merchant is named to find K.
type sessionBox struct {
	V        int             `json:"v"`
	Merchant string          `json:"merchant"`
	Sealed   assisted.Sealed `json:"sealed"`
}

const (
	sessionVersion = 2
	maxSessionFile = 8 << 10
	maxDeviceKey   = 1 << 10
)

// assistedDir is the consultant's assisted directory in the user's config dir.
func assistedDir() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", cli.WithHint(fmt.Errorf("no config directory for the session and device key: %w", err), "set HOME or XDG_CONFIG_HOME")
	}
	return filepath.Join(dir, "orderseal", "assisted"), nil
}

// defaultSessionPath is where a consultant's session lives unless -session
// says otherwise: one file per consultant identity in the user's config dir.
func defaultSessionPath(consultant string) (string, error) {
	dir, err := assistedDir()
	if err != nil {
		return "", cli.WithHint(err, "pass -session FILE")
	}
	name := strings.TrimSuffix(keygen.KeyFileName(consultant), ".key") + ".session.json"
	return filepath.Join(dir, name), nil
}

func sessionPath(flagValue, consultant string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	return defaultSessionPath(consultant)
}

// terminalKey is a device key (order.go's -assisted flag hides the package name).
type terminalKey = assisted.DeviceKey

// deviceKey loads this terminal's device key, drawing it on first use when
// create is set: device.key in the config dir, 0600, created with O_EXCL,
// never sent anywhere (only its public half is).
func deviceKey(create bool) (*assisted.DeviceKey, error) {
	dir, err := assistedDir()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "device.key")
	for {
		data, err := secfile.Read(path, maxDeviceKey)
		if err == nil {
			k, err := assisted.ParseDeviceKey(data)
			clear(data)
			if err != nil {
				return nil, fmt.Errorf("device key %s: %w", path, err)
			}
			return k, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("device key: %w", err)
		}
		if !create {
			return nil, cli.WithHint(fmt.Errorf("this terminal has no device key (%s)", path), "log in on this terminal first: cardholder assisted login")
		}
		k, err := assisted.NewDeviceKey(nil)
		if err != nil {
			return nil, err
		}
		text, _ := k.MarshalText()
		k.Destroy()
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		err = secfile.WriteNew(path, text)
		clear(text)
		if err != nil && !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		// Written, or another process drew it first: read it back.
	}
}

// decodeSession parses and checks an opened session file.
func decodeSession(data []byte) (*SessionFile, error) {
	var f SessionFile
	if err := strictjson.Decode(data, &f, maxSessionFile); err != nil {
		return nil, err
	}
	if f.V != sessionVersion || !order.ValidSession(f.Session.Session) || !merchantapi.ValidDevice(f.Device) || f.SealedID == nil {
		return nil, errors.New("not a version 2 assisted session")
	}
	if _, err := assisted.ParseDevicePublic(f.DeviceKey); err != nil {
		return nil, errors.New("the session names no device key")
	}
	return &f, nil
}

func readSessionFile(path string, keys keygen.Keyring, dev *assisted.DeviceKey) (*SessionFile, error) {
	data, err := secfile.Read(path, maxSessionFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, cli.WithHint(fmt.Errorf("no assisted session at %s", path), "log in with: cardholder assisted login")
	}
	if err != nil {
		return nil, fmt.Errorf("session file: %w", err)
	}
	var box sessionBox
	if err := strictjson.Decode(data, &box, maxSessionFile); err != nil || box.V != sessionVersion ||
		keygen.ValidateIdentity(box.Merchant) != nil || keygen.RoleOf(box.Merchant) != keygen.RoleMerchant {
		return nil, cli.WithHint(fmt.Errorf("session file %s: not a version %d sealed assisted session", path, sessionVersion), "log in again")
	}
	pt, err := assisted.OpenSessionFile(keys, box.Merchant, dev, box.Sealed, maxSessionFile)
	if err != nil {
		return nil, cli.WithHint(fmt.Errorf("session file %s: %w", path, err), "a session opens only on the terminal that logged in; log in here")
	}
	defer clear(pt)
	f, err := decodeSession(pt)
	if err != nil {
		return nil, fmt.Errorf("session file %s: %w", path, err)
	}
	pub, _ := assisted.ParseDevicePublic(f.DeviceKey)
	if f.Merchant != box.Merchant || !pub.Equal(dev.Public()) {
		return nil, fmt.Errorf("session file %s: sealed for another merchant or device", path)
	}
	return f, nil
}

// consultantSession reads the session file of the consultant whose keys are
// given (at -session, or the default path) on this terminal, and refuses one
// that belongs to someone else. It returns the path too.
func consultantSession(sessFlag string, keys keygen.Keyring, dev *assisted.DeviceKey) (*SessionFile, string, error) {
	path, err := sessionPath(sessFlag, keys.Identity())
	if err != nil {
		return nil, "", err
	}
	f, err := readSessionFile(path, keys, dev)
	if err != nil {
		return nil, "", err
	}
	if f.Consultant != keys.Identity() {
		return nil, "", fmt.Errorf("session file %s belongs to %s, not %s", path, f.Consultant, keys.Identity())
	}
	return f, path, nil
}

func writeSessionFile(path string, keys keygen.Keyring, dev *assisted.DeviceKey, f *SessionFile) error {
	data, err := json.Marshal(f)
	if err != nil {
		return err
	}
	sealed, err := assisted.SealSessionFile(keys, f.Merchant, dev, data)
	clear(data)
	if err != nil {
		return err
	}
	out, err := json.MarshalIndent(sessionBox{V: sessionVersion, Merchant: f.Merchant, Sealed: sealed}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return secfile.Replace(path, append(out, '\n'))
}

// deviceName is -device, or the name the device key gives (k-…). It is an
// asset tag for audits; the binding is the device key.
func deviceName(flagValue string, dev *assisted.DeviceKey) (string, error) {
	if flagValue == "" {
		return dev.Public().DeviceID(), nil
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
	deviceFlag := fs.String("device", "", "this terminal's asset tag (default: named after its device key)")
	shift := fs.Duration("shift", 8*time.Hour, "how long the session lasts (the merchant may cap it)")
	sessFlag := fs.String("session", "", "where to keep the session (default: in your config directory)")
	if err := cli.Parse(fs, args, "merchant", "key", "company-key"); err != nil {
		return err
	}
	if *shift < merchantapi.MinShift || *shift > 24*time.Hour {
		return cli.Usagef("use -shift 8h", "-shift must be between 1s and 24h")
	}
	dev, err := deviceKey(true)
	if err != nil {
		return err
	}
	defer dev.Destroy()
	device, err := deviceName(*deviceFlag, dev)
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
	mc, form, err := fetchForm(ctx, keys, *merchantURL, *merchantID, &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		return err
	}
	req, err := merchantapi.NewLogin(suite.NewKeys(company, 1), dev, form.Merchant, key.Identity(), device, *shift, time.Now())
	if err != nil {
		return err
	}
	sess, err := mc.Login(ctx, req)
	if err != nil {
		return reachErr("merchant", err)
	}
	if sess.Consultant != key.Identity() || sess.Device != device || sess.Company != company.Identity() || !order.ValidSession(sess.Session) ||
		sess.DeviceKey != dev.Public().String() {
		return fmt.Errorf("merchant answered with a session for someone else")
	}
	// Open the identifier once now, so a session that could never prove an
	// order is refused here rather than at the first order.
	secret, err := assisted.OpenSecret(keys, form.Merchant, sess.Session, sess.Device, sess.SealedID)
	if err != nil {
		return fmt.Errorf("the session's second identifier does not open: %w", err)
	}
	clear(secret)
	if err := writeSessionFile(path, keys, dev, &SessionFile{V: sessionVersion, MerchantURL: *merchantURL, Merchant: form.Merchant, Session: *sess}); err != nil {
		return err
	}
	fmt.Fprintln(stdio.Out, sess.Session)
	fmt.Fprintf(stdio.Err, "%s: %s logged in for %s on device %s until %s; session %s kept in %s\n",
		p, sess.Consultant, sess.Company, sess.Device, sess.Expires, sess.Session, path)
	return nil
}

// sessionClient loads the consultant key, this terminal's device key and the
// session file, and makes a client for the session's merchant.
func sessionClient(keyPath, sessFlag, merchantURL string) (*keygen.PartyKey, *SessionFile, string, *merchantapi.Client, error) {
	key, err := loadRoleKey(keyPath, keygen.RoleConsultant, "-key")
	if err != nil {
		return nil, nil, "", nil, err
	}
	dev, err := deviceKey(false)
	if err != nil {
		key.Destroy()
		return nil, nil, "", nil, err
	}
	defer dev.Destroy()
	f, path, err := consultantSession(sessFlag, suite.NewKeys(key, 1), dev)
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
