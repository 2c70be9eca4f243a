package cardholder

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"orderseal/cardholder/compose"
	"orderseal/internal/cli"
	"orderseal/keygen"
	merchantapi "orderseal/merchant/api"
)

// maxTrustFile bounds the trust file.
const maxTrustFile = 64 << 10

// defaultTrustPath is the cardholder's trust file: the issuer, carrier and
// vault identities she accepts under a suite without a directory (OS1).
func defaultTrustPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "orderseal", "trust.txt"), nil
}

// trustList is the trust file: one identity a line (issuer:…, carrier:… or
// vault:…), '#' starts a comment. The role is the identity's own prefix, so
// a carrier line never vouches for a vault.
type trustList struct {
	path string
	ids  []string
}

func loadTrust(path string) (*trustList, error) {
	explicit := path != ""
	if !explicit {
		var err error
		if path, err = defaultTrustPath(); err != nil {
			return nil, cli.WithHint(fmt.Errorf("no config directory for the trust file: %w", err), "pass -trust FILE")
		}
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return &trustList{path: path}, nil // empty: every party it is asked about is refused, with a hint
	}
	if err != nil {
		return nil, fmt.Errorf("trust file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTrustFile+1))
	if err != nil {
		return nil, fmt.Errorf("trust file %s: %w", path, err)
	}
	if len(data) > maxTrustFile {
		return nil, fmt.Errorf("trust file %s: larger than %d bytes", path, maxTrustFile)
	}
	t := &trustList{path: path}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if err := keygen.ValidateIdentity(line); err != nil {
			return nil, fmt.Errorf("trust file %s, line %d: %w", path, n, err)
		}
		switch keygen.RoleOf(line) {
		case keygen.RoleIssuer, keygen.RoleCarrier, keygen.RoleVault:
		default:
			return nil, cli.WithHint(fmt.Errorf("trust file %s, line %d: %s is not an issuer, carrier or vault", path, n, line),
				"the merchant is pinned by -merchant URL or -merchant-id, not here")
		}
		t.ids = append(t.ids, line)
	}
	return t, sc.Err()
}

func (t *trustList) has(id string) bool { return slices.Contains(t.ids, id) }

// vouch decides whether the cardholder seals to the parties a signed order
// form names (DESIGN.md §5 Hardening). Each must be a valid identity of the
// role the form gives it. Under a suite with a directory (OS2) each must
// also have an entry in the form that verifies under her own key center's
// params at now. Under OS1 there is no directory: each party she seals to
// (sealTo, the merchant aside, which the signed answer already proves) must
// be in her trust file, unless her own config named it (own).
func vouch(f *merchantapi.OrderForm, keys keygen.Keyring, sealTo, own []string, trustPath string, now time.Time) error {
	directory, err := compose.CheckParties(f, keys.Params(), now)
	switch {
	case errors.Is(err, compose.ErrFormParty):
		return cli.WithHint(err, "do not order here: the merchant's form is broken")
	case errors.Is(err, compose.ErrUnvouched):
		return cli.WithHint(err, "nothing was sealed or sent; the merchant works with a party your key center does not vouch for")
	case err != nil:
		return err
	case directory:
		return nil
	}
	params := keys.Params()
	var trust *trustList
	for _, id := range sealTo {
		if id == "" || keygen.RoleOf(id) == keygen.RoleMerchant || slices.Contains(own, id) {
			continue
		}
		if trust == nil {
			if trust, err = loadTrust(trustPath); err != nil {
				return err
			}
		}
		if !trust.has(id) {
			return cli.WithHint(fmt.Errorf("%s is not in your trust file %s (suite %s has no directory to vouch for it)", id, trust.path, params.Suite),
				"nothing was sealed or sent; once you know "+id+" is the "+string(keygen.RoleOf(id))+" you mean, add the line "+id+" to "+trust.path)
		}
	}
	return nil
}
