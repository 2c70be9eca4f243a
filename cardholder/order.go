package cardholder

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"orderseal/assisted"
	"orderseal/cardholder/compose"
	"orderseal/internal/cli"
	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/secfile"
	"orderseal/internal/signedhttp/httpsig"
	"orderseal/internal/strictjson"
	"orderseal/keygen"
	merchantapi "orderseal/merchant/api"
	"orderseal/order"
	"orderseal/order/address"
	"orderseal/order/money"
	"orderseal/suite"
	vaultapi "orderseal/vault/api"
)

// CardFile is the cardholder's card as kept in a 0600 file: what the issuer
// section needs and which issuer the card is from.
type CardFile struct {
	Number string `json:"number"`
	Expiry string `json:"expiry"`
	CVC    string `json:"cvc,omitempty"`
	Issuer string `json:"issuer"`
}

// normalizePhones writes the buyer's and recipient's phones in E.164
// (address.OrderPhones), refusing what is no phone number with a hint.
func normalizePhones(o *order.Order) error {
	if whose, err := address.OrderPhones(o); err != nil {
		return cli.WithHint(fmt.Errorf("%s phone: %w (%s)", whose, err, address.CodeOf(err)), "give it with its country code, e.g. +82 10-1234-5678")
	}
	return nil
}

// BuyerFile is the buyer's contact details.
type BuyerFile struct {
	Name  string `json:"name"`
	Phone string `json:"phone"`
	Email string `json:"email"`
}

const maxProfile = 4 << 10

var tokenRE = regexp.MustCompile(`^tok_[A-Za-z0-9_-]{8,120}$`)

func loadCard(path string) (*CardFile, error) {
	data, err := secfile.Read(path, maxProfile)
	if err != nil {
		if errors.Is(err, secfile.ErrPermissions) {
			return nil, cli.WithHint(fmt.Errorf("card file %s: %w", path, err), "chmod 600 "+path)
		}
		return nil, fmt.Errorf("card file: %w", err)
	}
	defer clear(data)
	return parseCard(path, data)
}

// parseCard decodes and checks the card file read from path.
func parseCard(path string, data []byte) (*CardFile, error) {
	var c CardFile
	if err := strictjson.Decode(data, &c, maxProfile); err != nil {
		return nil, fmt.Errorf("card file %s: %w", path, err)
	}
	if err := keygen.ValidateIdentity(c.Issuer); err != nil || keygen.RoleOf(c.Issuer) != keygen.RoleIssuer {
		return nil, cli.WithHint(fmt.Errorf("card file %s: issuer must be an issuer:… identity", path), `add "issuer": "issuer:bank.example"`)
	}
	return &c, nil
}

func loadBuyer(stdio cli.Stdio, path string) (*BuyerFile, error) {
	data, err := cli.ReadInput(stdio, path, maxProfile)
	if err != nil {
		return nil, err
	}
	var b BuyerFile
	if err := strictjson.Decode(data, &b, maxProfile); err != nil {
		return nil, fmt.Errorf("buyer file %s: %w", path, err)
	}
	return &b, nil
}

// lines turns -item flags into order lines priced from the order form.
func lines(form *merchantapi.OrderForm, items []string) ([]order.Item, int64, error) {
	var out []order.Item
	var total int64
	seen := map[string]bool{}
	for _, s := range items {
		sku, q, ok := strings.Cut(s, "=")
		if !ok {
			q = "1"
		}
		qty, err := strconv.ParseInt(q, 10, 64)
		if err != nil || qty < 1 || qty > 10000 {
			return nil, 0, cli.Usagef("write -item SKU=QTY with 1 ≤ QTY ≤ 10000", "-item %q: bad quantity", s)
		}
		p, found := form.Product(sku)
		if !found {
			return nil, 0, cli.WithHint(fmt.Errorf("%s has no product %q", form.Merchant, sku), "see the catalog with -list")
		}
		if seen[sku] {
			return nil, 0, cli.Usagef("give each SKU once", "-item %s given twice", sku)
		}
		seen[sku] = true
		line := qty * p.UnitPrice
		if p.UnitPrice != 0 && line/p.UnitPrice != qty || total+line < total {
			return nil, 0, errors.New("order total overflows")
		}
		total += line
		out = append(out, order.Item{SKU: p.SKU, Name: p.Name, Qty: qty, UnitPrice: p.UnitPrice})
	}
	return out, total, nil
}

func cmdOrder(ctx context.Context, args []string, stdio cli.Stdio) error {
	if len(args) > 0 && args[0] == "cancel" {
		return cmdOrderCancel(ctx, args[1:], stdio)
	}
	fs := cli.FlagSet(prog, "order", "-merchant URL -key FILE -card FILE -buyer FILE -item SKU=QTY… -ship-to LABEL|TOKEN [-vault-url URL] | -resume ORDER", stdio,
		"cardholder order -merchant http://127.0.0.1:8080 -key alice.key -card card.json -buyer me.json -item MUG-01=2 -ship-to home -vault-url http://127.0.0.1:8443",
		"cardholder order -merchant https://shop.example -key alice.key -list",
		"cardholder order -resume ord_…   (send a kept bundle whose answer was lost again, and follow it)",
		"cardholder order -merchant http://127.0.0.1:8080 -merchant-id merchant:shop.example -key alice.key -trust trust.txt -list")
	merchantURL := fs.String("merchant", "", "merchant base URL")
	merchantID := fs.String("merchant-id", "", "pin the merchant identity (default: merchant:HOST of -merchant; -assisted: the session's)")
	trustPath := fs.String("trust", "", "suite OS1: file of the issuer, carrier and vault identities you accept, one a line (default: orderseal/trust.txt in your config directory)")
	keyPath := fs.String("key", "", "your cardholder key file")
	cardPath := fs.String("card", "", "card JSON file (0600): number, expiry, optional cvc, issuer")
	buyerPath := fs.String("buyer", "", "buyer JSON: name, phone, email")
	var items cli.Strings
	fs.Var(&items, "item", "SKU=QTY (repeatable)")
	shipTo := fs.String("ship-to", "", "an address label of yours in the vault, or a token (yours or a shareable gift token)")
	shipToFile := fs.String("ship-to-address", "", "an inline address JSON instead (the carrier deposits it in the vault)")
	vaultURL := fs.String("vault-url", "", "vault base URL (to resolve a label)")
	recName := fs.String("recipient-name", "", "recipient name (default: buyer)")
	recPhone := fs.String("recipient-phone", "", "recipient phone (default: buyer)")
	installments := fs.Int("installments", 1, "payment plan: number of installments")
	gift := fs.String("gift-note", "", "a note for the recipient (the carrier prints it)")
	customs := fs.String("customs-code", "", "the recipient's personal customs clearance code, where the destination needs it on imports (KR: P and 12 digits)")
	shipCountry := fs.String("ship-country", "", "the destination country (ISO 3166-1), for a token that is not yours; it chooses the section policy")
	preview := fs.Bool("preview", false, "show who would see what, then stop without sending")
	list := fs.Bool("list", false, "print the merchant's order form (fetched signed, with -key) and stop")
	wait := fs.Duration("wait", 60*time.Second, "follow the order this long (0: do not follow)")
	asJSON := fs.Bool("json", false, "print the final status as JSON")
	life := fs.Duration("lifetime", order.DefaultLifetime, "how long the bundle stays valid")
	assisted := fs.Bool("assisted", false, "key in a phone order in your consultant session: the buyer's card is read from the prompt or stdin")
	deviceFlag := fs.String("device", "", "assisted: this terminal's asset tag (default: the session's)")
	sessFlag := fs.String("session", "", "assisted: the session file (default: in your config directory)")
	issuerFlag := fs.String("issuer", "", "assisted: the card's issuer (default: the merchant's only one)")
	resume := fs.String("resume", "", "send a kept order of the outbox again (ord_…) and follow it")
	outboxFlag := fs.String("outbox", "", "where sealed orders wait for the merchant's answer (default: orderseal/outbox in $XDG_STATE_HOME or ~/.local/state)")
	submitFor := fs.Duration("submit-for", 2*time.Minute, "send the same bundle again this long while no answer comes (never past its expiry)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	outbox, err := outboxDir(*outboxFlag)
	if err != nil {
		return err
	}
	if *resume != "" {
		return resumeOrder(ctx, *resume, outbox, *keyPath, *merchantURL, *submitFor, *wait, *asJSON, stdio)
	}
	if err := cli.Require(fs, "merchant"); err != nil {
		return err
	}
	if *assisted && *cardPath != "" {
		return cli.Usagef("the consultant types the buyer's card at the prompt or pipes it on stdin", "-assisted never reads card data from a file")
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	if *list {
		// Listing fetches the form as ordering does: a form a person reads
		// misleads her as much as one she seals to.
		if err := cli.Require(fs, "key"); err != nil {
			return err
		}
		key, err := suite.LoadKey(*keyPath, "", time.Now())
		if err != nil {
			return err
		}
		defer key.Destroy()
		keys := suite.NewKeys(key, 2)
		pin := *merchantID
		if pin == "" && *assisted {
			// The pin is the merchant of the session she logged in to; its
			// file is sealed under this terminal's device key.
			dev, err := deviceKey(false)
			if err != nil {
				return err
			}
			sess, _, err := consultantSession(*sessFlag, keys, dev)
			dev.Destroy()
			if err != nil {
				return err
			}
			pin = sess.Merchant
		}
		_, form, err := fetchForm(ctx, keys, *merchantURL, pin, hc)
		if err != nil {
			return err
		}
		if err := vouch(form, keys, nil, nil, *trustPath, time.Now()); err != nil {
			return err
		}
		return printForm(stdio.Out, form)
	}
	if err := cli.Require(fs, "key", "buyer", "item"); err != nil {
		return err
	}
	if !*assisted {
		if err := cli.Require(fs, "card"); err != nil {
			return err
		}
	}
	if (*shipTo == "") == (*shipToFile == "") {
		return cli.Usagef("give -ship-to LABEL|TOKEN or -ship-to-address FILE", "exactly one destination is needed")
	}
	if *assisted && *shipTo != "" && !tokenRE.MatchString(*shipTo) {
		return cli.Usagef("give the buyer's shareable token, or -ship-to-address FILE", "an assisted order cannot look up the buyer's labels")
	}
	role := keygen.RoleCardholder
	if *assisted {
		role = keygen.RoleConsultant
	}
	key, err := loadRoleKey(*keyPath, role, "-key")
	if err != nil {
		return err
	}
	defer key.Destroy()
	keys := suite.NewKeys(key, 8)
	var sess *SessionFile
	var device string
	var dev *terminalKey
	card := &CardFile{Issuer: *issuerFlag}
	pin := *merchantID
	if *assisted {
		if dev, err = deviceKey(false); err != nil {
			return err
		}
		defer dev.Destroy()
		if sess, _, err = consultantSession(*sessFlag, keys, dev); err != nil {
			return err
		}
		if pin == "" {
			pin = sess.Merchant // pinned when she logged in
		}
		device = cmp.Or(*deviceFlag, sess.Device)
		if !merchantapi.ValidDevice(device) {
			return cli.Usagef("a device id is 1–64 of a-z 0-9 . _ : -", "-device %.80q is not a device id", device)
		}
	} else if card, err = loadCard(*cardPath); err != nil {
		return err
	}
	defer func() { card.Number, card.CVC = "", "" }()
	buyer, err := loadBuyer(stdio, *buyerPath)
	if err != nil {
		return err
	}
	mc, form, err := fetchForm(ctx, keys, *merchantURL, pin, hc)
	if err != nil {
		return err
	}
	var own []string // parties her own config names: the card file's issuer, or -issuer
	if card.Issuer != "" {
		own = append(own, card.Issuer)
	}
	if sess != nil && sess.Merchant != form.Merchant {
		return cli.WithHint(fmt.Errorf("your session is with %s, not %s", sess.Merchant, form.Merchant), "log in to this merchant first")
	}
	if card.Issuer == "" && len(form.Issuers) == 1 {
		card.Issuer = form.Issuers[0]
	}
	if card.Issuer == "" {
		return cli.Usagef("name the card's issuer with -issuer; accepted: "+strings.Join(form.Issuers, ", "), "%s accepts several issuers", form.Merchant)
	}
	if !slices.Contains(form.Issuers, card.Issuer) {
		return cli.WithHint(fmt.Errorf("%s does not accept cards of %s", form.Merchant, card.Issuer), "accepted: "+strings.Join(form.Issuers, ", "))
	}
	sealTo := []string{card.Issuer, form.Carrier}
	if *shipToFile == "" {
		sealTo = append(sealTo, form.Vault)
	}
	if err := vouch(form, keys, sealTo, own, *trustPath, time.Now()); err != nil {
		return err
	}
	its, total, err := lines(form, items)
	if err != nil {
		return err
	}
	o := &order.Order{
		Buyer:     order.Buyer{Name: buyer.Name, Phone: buyer.Phone, Email: buyer.Email},
		Card:      order.Card{Number: card.Number, Expiry: card.Expiry, CVC: card.CVC},
		Items:     its,
		Total:     total,
		Currency:  form.Currency,
		Plan:      order.Plan{Installments: *installments},
		Recipient: order.Recipient{Name: cmp.Or(*recName, buyer.Name), Phone: cmp.Or(*recPhone, buyer.Phone), CustomsCode: strings.ToUpper(strings.TrimSpace(*customs))},
		GiftNote:  *gift,
	}
	parties := order.Parties{Merchant: form.Merchant, Issuer: card.Issuer, Carrier: form.Carrier}
	if *shipToFile != "" {
		data, err := cli.ReadInput(stdio, *shipToFile, maxProfile)
		if err != nil {
			return err
		}
		var a order.Address
		if err := strictjson.Decode(data, &a, maxProfile); err != nil {
			return fmt.Errorf("address file %s: %w", *shipToFile, err)
		}
		if a, err = address.Normalize(a); err != nil {
			return cli.WithHint(fmt.Errorf("address file %s: %w (%s)", *shipToFile, err, address.CodeOf(err)), addressHint(address.CodeOf(err)))
		}
		o.ShipTo.Address = &a
	} else {
		token, err := resolveShipTo(ctx, keys, *shipTo, *vaultURL, form.Vault, hc)
		if err != nil {
			return err
		}
		o.ShipTo.Token = token
		parties.Vault = form.Vault
	}
	dest := strings.ToUpper(*shipCountry)
	switch {
	case o.ShipTo.Address != nil:
		dest = o.ShipTo.Address.Country
	case dest == "" && form.Policies != nil && *vaultURL != "" && !*assisted:
		// The policy follows the destination: her own address says where.
		if dest, err = tokenCountry(ctx, keys, o.ShipTo.Token, *vaultURL, form.Vault, hc); err != nil {
			return err
		}
	}
	o.ShipTo.Country = dest // the policy decides who sees it (the built-in set: merchant and carrier)
	pol, err := choosePolicy(form, o, dest)
	if err != nil {
		return err
	}
	if dest == "" && form.Policies != nil {
		fmt.Fprintf(stdio.Err, "%s: the destination country is unknown (a token not yours): sealing under policy %s; -ship-country CC chooses the destination's\n", prog, pol.ID)
	}
	if *assisted && !*preview {
		// The card is read last, sealed for the issuer at once, and dropped.
		if o.Card, err = readCard(stdio); err != nil {
			return err
		}
		defer func() { o.Card = order.Card{} }()
	}
	if *assisted && *preview {
		o.Card = previewCard() // no card is asked for a preview: a stand-in lets the rest be validated
	}
	if err := normalizePhones(o); err != nil {
		return err
	}
	if err := o.Validate(time.Now()); err != nil {
		return err
	}
	if *preview {
		if pol.ID != "" {
			fmt.Fprintf(stdio.Out, "policy %s (for %s)\n", pol.ID, cmp.Or(dest, "any destination"))
		}
		order.WritePreview(stdio.Out, pol.Preview(o))
		if parties.Vault != "" {
			fmt.Fprintf(stdio.Out, "vault (%s): the ship-to token, merchant, carrier and order id: a grant for %s to print this one label\n", parties.Vault, parties.Carrier)
		}
		fmt.Fprintf(stdio.Err, "%s: preview only; nothing was sent\n", prog)
		return nil
	}
	// Under OS2 each section is sealed to its recipient's entry of the
	// form's directory; Seal checks the key center's signature on each.
	opt := order.SealOptions{Lifetime: *life, Directory: form.Directory, Policy: pol}
	if sess != nil {
		opt.Session = sess.Session.Session
	}
	b, err := order.Seal(o, keys, parties, opt)
	o.Card = order.Card{}
	if err != nil {
		return err
	}
	raw, err := b.MarshalJSON()
	if err != nil {
		return err
	}
	absKey, err := filepath.Abs(*keyPath)
	if err != nil {
		return err
	}
	p := &pending{V: pendingVersion, OrderID: b.OrderID, Merchant: *merchantURL, MerchantID: mc.Merchant(), Key: absKey,
		Sealed: time.Now().UTC(), Bundle: raw}
	if sess != nil {
		proof, err := prove(keys, sess, device, b)
		if err != nil {
			return err
		}
		sig := dev.SignOrder(sess.Merchant, sess.Consultant, sess.Session.Session, device, b.HeaderHash(), proof)
		p.Assisted = &pendingAssisted{Session: sess.Session.Session, Device: device, Proof: proof, DeviceSig: sig}
	}
	// Kept before it is first sent: whatever becomes of the answer, the
	// same bundle can go again and the merchant charges it once.
	if err := keep(outbox, p); err != nil {
		return err
	}
	deadline := time.Now().Add(*submitFor)
	if exp := b.ExpiresAt(); exp.Before(deadline) {
		deadline = exp
	}
	acc, err := deliver(ctx, submitterFor(mc, b, p.Assisted), b.OrderID, deadline, stdio)
	if errors.Is(err, errOutcomeUnknown) {
		fmt.Fprintf(stdio.Out, "%s\n", b.OrderID)
		return unknownErr(b.OrderID, err)
	}
	forget(outbox, b.OrderID)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Out, "%s\n", acc.OrderID)
	if b.Epoch != "" {
		fmt.Fprintf(stdio.Err, "%s: sealed under %s, epoch %s: each section to its party's directory-signed key\n", prog, b.Suite, b.Epoch)
	}
	if sess != nil {
		fmt.Fprintf(stdio.Err, "%s: order %s accepted by %s (%s) in session %s on device %s; the card went sealed to %s\n",
			prog, acc.OrderID, form.Merchant, money.Show(total, form.Currency), sess.Session.Session, device, card.Issuer)
	} else {
		fmt.Fprintf(stdio.Err, "%s: order %s accepted by %s (%s); the merchant cannot read your card or address\n",
			prog, acc.OrderID, form.Merchant, money.Show(total, form.Currency))
	}
	if *wait <= 0 {
		return nil
	}
	st, err := follow(ctx, mc, acc.OrderID, *wait, stdio)
	if err != nil {
		return err
	}
	return settle(st, *asJSON, stdio)
}

// choosePolicy is compose.PolicyFor with the CLI's hints.
func choosePolicy(form *merchantapi.OrderForm, o *order.Order, dest string) (*order.Policy, error) {
	pol, err := compose.PolicyFor(form, o, dest)
	var fe *order.FieldError
	switch {
	case err == nil:
		return pol, nil
	case errors.As(err, &fe) && fe.Field == order.FieldCustomsCode:
		return nil, cli.WithHint(err, "imports to "+dest+" need the recipient's personal customs clearance code: -customs-code P…")
	case address.CodeOf(err) == address.CodeCustomsInvalid:
		return nil, cli.WithHint(err, "a KR personal customs clearance code is P followed by 12 digits")
	case errors.Is(err, compose.ErrCustomsCode):
		return nil, cli.WithHint(err, "leave out -customs-code for this destination")
	case errors.Is(err, order.ErrPolicy) && form.Policies.Check() != nil:
		return nil, err
	}
	return nil, cli.WithHint(err, "add what the destination's policy requires")
}

// tokenCountry reveals her own address token to read its country; it
// tells nothing to the merchant.
func tokenCountry(ctx context.Context, keys keygen.Keyring, token, vaultURL, vault string, hc *http.Client) (string, error) {
	vc, err := vaultapi.NewClient(keys, vaultURL, vault, hc)
	if err != nil {
		return "", err
	}
	v, err := vc.RevealOwn(ctx, token)
	var p *rfc9457.Problem
	if errors.As(err, &p) && p.Code == "unknown-token" {
		return "", nil // another cardholder's (a gift): the destination stays unknown
	}
	if err != nil {
		return "", cli.WithHint(fmt.Errorf("reading the destination country: %w", err), "check -vault-url, or name the country with -ship-country")
	}
	defer clear(v)
	var a order.Address
	if err := json.Unmarshal(v, &a); err != nil {
		return "", fmt.Errorf("the vault's value for %s is not an address", token)
	}
	return a.Country, nil
}

// previewCard stands in for the card an assisted preview does not ask for:
// the well-known test number, valid for a year. Preview prints no values.
func previewCard() order.Card {
	return order.Card{Number: "4111111111111111", Expiry: time.Now().AddDate(1, 0, 0).Format("2006-01")}
}

// prove opens the session's second identifier and seals it into the order's
// proof, bound to the bundle and this device; the identifier is cleared.
func prove(keys keygen.Keyring, sess *SessionFile, device string, b *order.Bundle) (merchantapi.Sealed, error) {
	secret, err := assisted.OpenSecret(keys, sess.Merchant, sess.Session.Session, sess.Session.Device, sess.Session.SealedID)
	if err != nil {
		return merchantapi.Sealed{}, cli.WithHint(fmt.Errorf("the session file does not open with this key: %w", err), "log in again")
	}
	defer clear(secret)
	return assisted.Prove(keys, sess.Merchant, sess.Session.Session, device, secret, b.HeaderHash())
}

// resolveShipTo returns the token for a label of the caller's own, or the
// token itself (the caller's, or a shareable one given as a gift).
func resolveShipTo(ctx context.Context, keys keygen.Keyring, shipTo, vaultURL, vault string, hc *http.Client) (string, error) {
	if tokenRE.MatchString(shipTo) {
		return shipTo, nil
	}
	if vaultURL == "" {
		return "", cli.Usagef("add -vault-url URL to look the label up, or give the token itself", "%q is a label, not a token", shipTo)
	}
	vc, err := vaultapi.NewClient(keys, vaultURL, vault, hc)
	if err != nil {
		return "", err
	}
	entries, err := vc.List(ctx)
	if err != nil {
		return "", reachErr("vault", err)
	}
	for _, e := range entries {
		if e.Label == shipTo && e.Type == vaultapi.TypeAddress && e.ReplacedBy == "" {
			return e.Token, nil
		}
	}
	return "", cli.WithHint(fmt.Errorf("no address labelled %q in %s", shipTo, vault), "cardholder address list shows your labels")
}

// newMerchantClient is merchantapi.NewClient with the CLI's hints.
func newMerchantClient(keys keygen.Keyring, base, pin string, hc *http.Client) (*merchantapi.Client, error) {
	mc, err := merchantapi.NewClient(keys, base, pin, hc)
	if errors.Is(err, merchantapi.ErrNoHostIdentity) {
		return nil, cli.WithHint(err, "pin the merchant with -merchant-id merchant:NAME")
	}
	return mc, err
}

// keyedMerchantClient loads the key at keyPath and makes its client of
// the merchant at base, pinned to pin; the caller destroys the key once
// done with the client.
func keyedMerchantClient(keyPath, base, pin string) (*merchantapi.Client, *keygen.PartyKey, error) {
	key, err := suite.LoadKey(keyPath, "", time.Now())
	if err != nil {
		return nil, nil, err
	}
	mc, err := newMerchantClient(suite.NewKeys(key, 4), base, pin, &http.Client{Timeout: 30 * time.Second})
	if err != nil {
		key.Destroy()
		return nil, nil, err
	}
	return mc, key, nil
}

// fetchForm fetches the merchant's signed order form at base, pinned to
// pin (default: the host's merchant), with the client it came by.
func fetchForm(ctx context.Context, keys keygen.Keyring, base, pin string, hc *http.Client) (*merchantapi.Client, *merchantapi.OrderForm, error) {
	mc, err := newMerchantClient(keys, base, pin, hc)
	if err != nil {
		return nil, nil, err
	}
	form, err := mc.OrderForm(ctx)
	if err != nil {
		return nil, nil, formErr(mc, err)
	}
	return mc, form, nil
}

// formErr explains an order form that was refused: an answer not signed by
// the pinned merchant is someone else's, whatever it says.
func formErr(mc *merchantapi.Client, err error) error {
	if errors.Is(err, httpsig.ErrForgedResponse) || errors.Is(err, merchantapi.ErrFormMerchant) {
		return cli.WithHint(fmt.Errorf("the order form is not %s's own (%w); nothing was sealed or sent", mc.Merchant(), err),
			"someone between you and the merchant may have altered it; if the shop's identity is not "+mc.Merchant()+", pin it with -merchant-id")
	}
	return reachErr("merchant", err)
}

// reachErr names the party a request failed at.
func reachErr(party string, err error) error {
	var p *rfc9457.Problem
	if errors.As(err, &p) {
		return fmt.Errorf("%s refused: %s (%s)", party, p.Detail, p.Code)
	}
	return cli.WithHint(fmt.Errorf("%s unreachable: %w", party, err), "check the URL and that the "+party+" is running")
}

// follow polls the order's status until it settles or wait runs out,
// writing each new timeline entry (and, on a terminal, a spinner) to stderr.
func follow(ctx context.Context, mc *merchantapi.Client, id string, wait time.Duration, stdio cli.Stdio) (*merchantapi.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tty := false
	if f, ok := stdio.Err.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	spin := []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
	shown, delay, tick := 0, 100*time.Millisecond, 0
	var last *merchantapi.Status
	for {
		st, err := mc.Status(ctx, id)
		if err == nil {
			if tty {
				fmt.Fprint(stdio.Err, "\r\033[K")
			}
			for ; shown < len(st.Timeline); shown++ {
				e := st.Timeline[shown]
				fmt.Fprintf(stdio.Err, "%s: %s  %-10s %s\n", prog, e.At, e.State, e.Detail)
			}
			last = st
			if merchantapi.Settled(st.State) {
				return st, nil
			}
		}
		if tty && last != nil {
			fmt.Fprintf(stdio.Err, "\r%c %s…", spin[tick%len(spin)], last.State)
			tick++
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprint(stdio.Err, "\r\033[K")
			}
			state := "unknown"
			if last != nil {
				state = last.State
			}
			if err != nil {
				return nil, reachErr("merchant", err)
			}
			return nil, cli.WithHint(fmt.Errorf("order %s still %s after %s", id, state, wait), "follow it with: cardholder status "+id)
		case <-time.After(delay):
		}
		delay = min(delay*3/2, time.Second)
	}
}

// settle prints the final status and turns a decline or failure into an error.
func settle(st *merchantapi.Status, asJSON bool, stdio cli.Stdio) error {
	if asJSON {
		if err := json.NewEncoder(stdio.Out).Encode(st); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdio.Out, "%s %s", st.OrderID, st.State)
		if st.Tracking != "" {
			fmt.Fprintf(stdio.Out, " %s", st.Tracking)
		}
		if st.Reason != "" {
			fmt.Fprintf(stdio.Out, " %s", st.Reason)
		}
		fmt.Fprintln(stdio.Out)
	}
	switch st.State {
	case merchantapi.StateDeclined:
		return fmt.Errorf("order %s declined by the issuer: %s", st.OrderID, st.Reason)
	case merchantapi.StateFailed:
		return fmt.Errorf("order %s failed: %s", st.OrderID, st.Reason)
	case merchantapi.StateCancelled:
		return fmt.Errorf("order %s was cancelled", st.OrderID)
	}
	return nil
}

func cmdStatus(ctx context.Context, args []string, stdio cli.Stdio) error {
	fs := cli.FlagSet(prog, "status", "ORDER -merchant URL -key FILE [-json] [-wait D]", stdio,
		"cardholder status ord_… -merchant http://127.0.0.1:8080 -key alice.key",
		"cardholder status ord_…   (an order whose answer was lost: merchant and key from the outbox)")
	merchantURL := fs.String("merchant", "", "merchant base URL")
	merchantID := fs.String("merchant-id", "", "pin the merchant identity (default: merchant:HOST of -merchant)")
	keyPath := fs.String("key", "", "your cardholder key file")
	asJSON := fs.Bool("json", false, "JSON output")
	wait := fs.Duration("wait", 0, "follow the order this long until it settles")
	outboxFlag := fs.String("outbox", "", "the order outbox (default: orderseal/outbox in $XDG_STATE_HOME or ~/.local/state)")
	id := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	}
	if id == "" {
		return cli.Usagef("cardholder status ORDER [-merchant URL -key FILE]", "name the order")
	}
	// An order still in the outbox (its answer was lost) names its merchant
	// and key itself.
	kept := false
	if dir, err := outboxDir(*outboxFlag); err == nil && orderIDRE.MatchString(id) {
		if p, err := loadPending(dir, id); err == nil {
			kept = true
			*merchantURL = cmp.Or(*merchantURL, p.Merchant)
			*keyPath = cmp.Or(*keyPath, p.Key)
			*merchantID = cmp.Or(*merchantID, p.MerchantID)
		}
	}
	if err := cli.Require(fs, "merchant", "key"); err != nil {
		return err
	}
	mc, key, err := keyedMerchantClient(*keyPath, *merchantURL, *merchantID)
	if err != nil {
		return err
	}
	defer key.Destroy()
	var st *merchantapi.Status
	if *wait > 0 {
		if st, err = follow(ctx, mc, id, *wait, stdio); err != nil {
			return err
		}
		return settle(st, *asJSON, stdio)
	}
	if st, err = mc.Status(ctx, id); err != nil {
		var p *rfc9457.Problem
		if kept && errors.As(err, &p) && p.Code == merchantapi.CodeUnknownOrder {
			return cli.WithHint(fmt.Errorf("order %s has not reached %s", id, mc.Merchant()), "its sealed bundle is kept; send it again with: cardholder order -resume "+id)
		}
		return reachErr("merchant", err)
	}
	if *asJSON {
		return json.NewEncoder(stdio.Out).Encode(st)
	}
	printStatus(stdio.Out, st)
	return nil
}

func printStatus(w io.Writer, st *merchantapi.Status) {
	fmt.Fprintf(w, "order     %s\nstate     %s\n", st.OrderID, st.State)
	if st.Reason != "" {
		fmt.Fprintf(w, "reason    %s\n", st.Reason)
	}
	fmt.Fprintf(w, "total     %s\n", money.Show(st.Total, st.Currency))
	if st.AuthCode != "" {
		fmt.Fprintf(w, "auth code %s\n", st.AuthCode)
	}
	if st.Tracking != "" {
		fmt.Fprintf(w, "tracking  %s (%s)\n", st.Tracking, st.Carrier)
	}
	if p := st.Payment; p != nil {
		fmt.Fprintf(w, "payment   %s, captured %s, refunded %s", p.State, money.Show(p.Captured, st.Currency), money.Show(p.Refunded, st.Currency))
		switch {
		case p.State == "expired":
			fmt.Fprintf(w, ", the hold expired %s", p.HoldUntil)
		case p.HoldUntil != "" && (p.State == "authorized" || p.State == "partially-captured"):
			fmt.Fprintf(w, ", held until %s", p.HoldUntil)
		}
		fmt.Fprintln(w)
	}
	if st.Installments != "" {
		fmt.Fprintf(w, "plan      %s\n", st.Installments)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nAT\tSTATE\tDETAIL")
	for _, e := range st.Timeline {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.At, e.State, e.Detail)
	}
	tw.Flush()
}

func printForm(w io.Writer, f *merchantapi.OrderForm) error {
	fmt.Fprintf(w, "merchant  %s\ncarrier   %s\nissuers   %s\nvault     %s\ncurrency  %s\n", f.Merchant, f.Carrier,
		strings.Join(f.Issuers, ", "), f.Vault, f.Currency)
	for _, e := range f.Directory {
		fmt.Fprintf(w, "directory %s, epoch %s, until %s (signature checked)\n", e.Identity, e.Epoch, e.NotAfter.Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SKU\tNAME\tUNIT PRICE")
	for _, p := range f.Catalog {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.SKU, p.Name, money.Show(p.UnitPrice, f.Currency))
	}
	return tw.Flush()
}
