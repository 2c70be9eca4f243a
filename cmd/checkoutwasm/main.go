//go:build js && wasm

// Command checkoutwasm is the browser checkout's sealing program (DESIGN.md §10),
// built with GOOS=js GOARCH=wasm and served by the merchant beside the page
// (merchant/checkout). It runs the cardholder's side of `cardholder order` in the
// page: her key file, opened from disk, stays in this program's memory; the
// order form and status are signed requests; the checks on the form and the
// policy choice are package compose's, and sealing is order.Seal.
//
// It sets one global, orderseal, whose methods take and return JSON strings
// and return Promises (a blocking call on the page's thread would deadlock).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"strings"
	"syscall/js"
	"time"

	"orderseal/cardholder/compose"
	"orderseal/internal/problem/rfc9457"
	"orderseal/internal/signedhttp/httpsig"
	"orderseal/keygen"
	merchantapi "orderseal/merchant/api"
	"orderseal/order"
	"orderseal/order/address"
	"orderseal/suite"
	vaultapi "orderseal/vault/api"
)

// state is the page's one checkout: the key, the form it was fetched with
// and the order composed for the preview, sealed and sent by submit.
var state struct {
	key      *keygen.PartyKey
	keys     *keygen.Cache
	merchant *merchantapi.Client
	vault    *vaultapi.Client
	form     *merchantapi.OrderForm
	composed *order.Order
	parties  order.Parties
	policy   *order.Policy
}

// config is what the page tells the program: the merchant's base URL (the
// page's origin) and identity, and the vault's URL for labels ("" when the
// shop has none).
type config struct {
	Merchant, MerchantID, VaultURL string
}

var cfg config

var hc = &httpsig.HTTPClient{Timeout: 30 * time.Second}

func main() {
	// The page names the shop and its vault on its body; reading them here
	// saves the page a call before it is ready.
	doc := js.Global().Get("document")
	data := doc.Get("body").Get("dataset")
	cfg = config{Merchant: js.Global().Get("location").Get("origin").String(),
		MerchantID: data.Get("merchantId").String(), VaultURL: data.Get("vaultUrl").String()}
	api := map[string]any{
		"loadKey":   method(loadKey),
		"forgetKey": method(func(string) (any, error) { forget(); return map[string]bool{"ok": true}, nil }),
		"form":      method(fetchForm),
		"countries": method(countries),
		"labels":    method(labels),
		"preview":   method(preview),
		"submit":    method(submit),
		"status":    method(status),
	}
	js.Global().Set("orderseal", js.ValueOf(api))
	doc.Call("dispatchEvent", js.Global().Get("Event").New("orderseal-ready"))
	select {}
}

// method wraps f as a JavaScript function taking one string (JSON, or a
// Uint8Array for loadKey) and returning a Promise of f's answer as JSON, or
// rejected with an Error carrying the user's message.
func method(f func(arg string) (any, error)) js.Func {
	return js.FuncOf(func(_ js.Value, args []js.Value) any {
		arg := ""
		if len(args) > 0 {
			if a := args[0]; a.Type() == js.TypeString {
				arg = a.String()
			} else if a.InstanceOf(js.Global().Get("Uint8Array")) {
				b := make([]byte, a.Get("length").Int())
				js.CopyBytesToGo(b, a)
				arg = string(b)
				clear(b)
			}
		}
		return js.Global().Get("Promise").New(js.FuncOf(func(_ js.Value, pa []js.Value) any {
			resolve, reject := pa[0], pa[1]
			go func() {
				out, err := f(arg)
				if err != nil {
					reject.Invoke(js.Global().Get("Error").New(err.Error()))
					return
				}
				raw, err := json.Marshal(out)
				if err != nil {
					reject.Invoke(js.Global().Get("Error").New(err.Error()))
					return
				}
				resolve.Invoke(string(raw))
			}()
			return nil
		}))
	})
}

func forget() {
	if state.key != nil {
		state.key.Destroy()
	}
	state.key, state.keys, state.merchant, state.vault, state.form, state.composed = nil, nil, nil, nil, nil, nil
}

// loadKey reads the cardholder's key file as `cardholder order` does
// (suite.LoadKey with the cardholder role), from bytes instead of a path.
func loadKey(data string) (any, error) {
	forget()
	raw := []byte(data)
	defer clear(raw)
	k, err := keygen.ParsePartyKey(raw)
	if err != nil {
		return nil, fmt.Errorf("this is not an orderseal key file (%v)", err)
	}
	if r := keygen.RoleOf(k.Identity()); r != keygen.RoleCardholder {
		k.Destroy()
		return nil, fmt.Errorf("this key is a %s's (%s), not a cardholder's: open your own cardholder key", r, k.Identity())
	}
	if err := suite.Check(k, time.Now()); err != nil {
		k.Destroy()
		return nil, fmt.Errorf("this key cannot seal: %v", err)
	}
	st, _ := suite.For(k)
	if st.EncapSize() == 0 {
		k.Destroy()
		return nil, fmt.Errorf("this key is of suite %s, which needs a trust file: the browser checkout seals under a suite with a directory (%s); use cardholder order", k.Params().Suite, suite.Default().Name())
	}
	keys := suite.NewKeys(k, 8)
	mc, err := merchantapi.NewClient(keys, cfg.Merchant, cfg.MerchantID, hc)
	if err != nil {
		k.Destroy()
		return nil, err
	}
	state.key, state.keys, state.merchant = k, keys, mc
	return map[string]string{"identity": k.Identity(), "suite": k.Params().Suite, "epoch": k.Epoch()}, nil
}

// formView is the order form as the page draws it.
type formView struct {
	Merchant string                `json:"merchant"`
	Currency string                `json:"currency"`
	Catalog  []merchantapi.Product `json:"catalog"`
	Issuers  []string              `json:"issuers"`
	Carrier  string                `json:"carrier"`
	Vault    string                `json:"vault"`
	Epochs   []string              `json:"directory"` // "identity (epoch)", each signature checked
}

// fetchForm fetches the signed order form and checks the parties it names
// against the key center's directory, as `cardholder order` does.
func fetchForm(string) (any, error) {
	if state.merchant == nil {
		return nil, errors.New("open your key file first")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := state.merchant.OrderForm(ctx)
	if err != nil {
		return nil, reach("the merchant", err)
	}
	if _, err := compose.CheckParties(f, state.keys.Params(), time.Now()); err != nil {
		return nil, fmt.Errorf("%v: nothing will be sealed or sent to this shop", err)
	}
	state.form = f
	if f.Vault != "" && cfg.VaultURL != "" {
		if state.vault, err = vaultapi.NewClient(state.keys, cfg.VaultURL, f.Vault, hc); err != nil {
			return nil, err
		}
	}
	v := formView{Merchant: f.Merchant, Currency: f.Currency, Catalog: f.Catalog, Issuers: f.Issuers, Carrier: f.Carrier, Vault: f.Vault}
	for _, e := range f.Directory {
		v.Epochs = append(v.Epochs, e.Identity+" ("+e.Epoch+")")
	}
	return v, nil
}

// countries are the address forms of the countries with rules of their
// own (package address); any other country gets the generic one.
func countries(cc string) (any, error) {
	if cc != "" {
		return address.FormFor(strings.ToUpper(strings.TrimSpace(cc))), nil
	}
	var out []address.Form
	for _, cc := range address.Supported() {
		out = append(out, address.FormFor(cc))
	}
	return out, nil
}

// labels lists her address labels in the vault (signed by her key; the
// values stay in the vault).
func labels(string) (any, error) {
	if state.vault == nil {
		return []string{}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	entries, err := state.vault.List(ctx)
	if err != nil {
		return nil, reach("the vault", err)
	}
	out := []string{}
	for _, e := range entries {
		if e.Type == vaultapi.TypeAddress && e.ReplacedBy == "" && e.Label != "" {
			out = append(out, e.Label)
		}
	}
	return out, nil
}

// checkoutRequest is what the page's form holds.
type checkoutRequest struct {
	Items []struct {
		SKU string `json:"sku"`
		Qty int64  `json:"qty"`
	} `json:"items"`
	Buyer     order.Buyer     `json:"buyer"`
	Card      order.Card      `json:"card"`
	Issuer    string          `json:"issuer"`
	Label     string          `json:"label"`   // a vault label of hers, or
	Address   *order.Address  `json:"address"` // an inline address
	Recipient order.Recipient `json:"recipient"`
	GiftNote  string          `json:"gift_note"`
}

// previewView is the who-sees-what table of the composed order.
type previewView struct {
	Policy   string             `json:"policy"`
	Rows     []order.PreviewRow `json:"rows"`
	Vault    string             `json:"vault,omitempty"`
	Total    int64              `json:"total"`
	Currency string             `json:"currency"`
}

// preview composes the order from the page's form as `cardholder order
// -preview` does, validates it, and keeps it for submit. It sends nothing
// but, for a label, the signed list request to her vault.
func preview(arg string) (any, error) {
	state.composed = nil
	if state.form == nil {
		return nil, errors.New("open your key file first")
	}
	var req checkoutRequest
	if err := json.Unmarshal([]byte(arg), &req); err != nil {
		return nil, err
	}
	defer func() { req.Card = order.Card{} }()
	f := state.form
	if len(req.Items) == 0 {
		return nil, errors.New("the cart is empty")
	}
	o := &order.Order{Buyer: req.Buyer, Card: req.Card, Currency: f.Currency, Plan: order.Plan{Installments: 1},
		Recipient: req.Recipient, GiftNote: req.GiftNote}
	o.Card.Number = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, o.Card.Number)
	o.Recipient.Name = strings.TrimSpace(o.Recipient.Name)
	if o.Recipient.Name == "" {
		o.Recipient.Name = o.Buyer.Name
	}
	if o.Recipient.Phone == "" {
		o.Recipient.Phone = o.Buyer.Phone
	}
	for _, it := range req.Items {
		p, ok := f.Product(it.SKU)
		if !ok || it.Qty < 1 || it.Qty > 10000 {
			return nil, fmt.Errorf("%s has no product %q", f.Merchant, it.SKU)
		}
		o.Items = append(o.Items, order.Item{SKU: p.SKU, Name: p.Name, Qty: it.Qty, UnitPrice: p.UnitPrice})
		o.Total += it.Qty * p.UnitPrice
	}
	issuer := req.Issuer
	if issuer == "" && len(f.Issuers) == 1 {
		issuer = f.Issuers[0]
	}
	if !contains(f.Issuers, issuer) {
		return nil, fmt.Errorf("%s does not accept cards of %q", f.Merchant, issuer)
	}
	parties := order.Parties{Merchant: f.Merchant, Issuer: issuer, Carrier: f.Carrier}
	dest := ""
	switch {
	case req.Address != nil && req.Label != "":
		return nil, errors.New("choose a saved address or type one, not both")
	case req.Address != nil:
		a, err := address.Normalize(*req.Address)
		if err != nil {
			return nil, addressErr(err)
		}
		o.ShipTo.Address = &a
		dest = a.Country
	case req.Label != "":
		token, country, err := resolveLabel(req.Label)
		if err != nil {
			return nil, err
		}
		o.ShipTo.Token = token
		parties.Vault = f.Vault
		dest = country
	default:
		return nil, errors.New("choose where the parcel goes")
	}
	o.ShipTo.Country = dest
	if err := normalizePhones(o); err != nil {
		return nil, err
	}
	pol, err := compose.PolicyFor(f, o, dest)
	if err != nil {
		return nil, fieldErr(err)
	}
	if err := o.Validate(time.Now()); err != nil {
		return nil, fieldErr(err)
	}
	state.composed, state.parties, state.policy = o, parties, pol
	v := previewView{Policy: pol.ID, Rows: pol.Preview(o), Total: o.Total, Currency: o.Currency}
	if parties.Vault != "" {
		v.Vault = parties.Vault
	}
	return v, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// resolveLabel is her label's token and its country (read from her own
// reveal: the policy follows the destination).
func resolveLabel(label string) (token, country string, err error) {
	if state.vault == nil {
		return "", "", errors.New("this shop names no vault: type the address")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	entries, err := state.vault.List(ctx)
	if err != nil {
		return "", "", reach("the vault", err)
	}
	for _, e := range entries {
		if e.Label == label && e.Type == vaultapi.TypeAddress && e.ReplacedBy == "" {
			token = e.Token
		}
	}
	if token == "" {
		return "", "", fmt.Errorf("no address labelled %q in %s", label, state.vault.Identity())
	}
	v, err := state.vault.RevealOwn(ctx, token)
	if err != nil {
		return "", "", reach("the vault", err)
	}
	defer clear(v)
	var a order.Address
	if err := json.Unmarshal(v, &a); err != nil {
		return "", "", fmt.Errorf("the vault's value for %q is not an address", label)
	}
	return token, a.Country, nil
}

// normalizePhones writes the buyer's and recipient's phones in E.164
// (address.OrderPhones), in the page's words when one is no phone number.
func normalizePhones(o *order.Order) error {
	if whose, err := address.OrderPhones(o); err != nil {
		what := "your phone"
		if whose == "recipient" {
			what = "the recipient's phone"
		}
		return fmt.Errorf("%s is not a phone number: give it with its country code, e.g. +49 151 12345678", what)
	}
	return nil
}

// fieldNames are the page's words for the order's fields.
var fieldNames = map[string]string{
	"card.number": "card number", "card.expiry": "card expiry", "card.cvc": "CVC",
	"buyer.name": "your name", "buyer.email": "your email", "buyer.phone": "your phone",
	"ship_to.address.country": "country", "ship_to.country": "country",
	"recipient.name": "recipient's name", "recipient.customs_code": "customs code",
}

func fieldErr(err error) error {
	var fe *order.FieldError
	if errors.As(err, &fe) {
		name := fieldNames[fe.Field]
		if name == "" {
			name = fe.Field
		}
		return fmt.Errorf("%s: %s", name, fe.Reason)
	}
	if c := address.CodeOf(err); c != "" {
		return addressErr(err)
	}
	return err
}

func addressErr(err error) error {
	var ae *address.Error
	if errors.As(err, &ae) {
		field := strings.TrimPrefix(ae.Field, "address.")
		if field == "country" {
			return fmt.Errorf("country: %s (we ship to the countries in the list, written as two letters)", ae.Reason)
		}
		return fmt.Errorf("address, %s: %s", strings.ReplaceAll(field, "_", " "), ae.Reason)
	}
	return err
}

// submit seals the previewed order (order.Seal, under the form's
// directory and the chosen policy) and sends it; the card leaves memory
// once sealed. Its answer says how long sealing took (seal_ms), the figure
// the benchmark sets beside a native seal of the same order. The same bundle goes again while no answer comes.
func submit(string) (any, error) {
	o := state.composed
	if o == nil {
		return nil, errors.New("preview the order first")
	}
	state.composed = nil
	t0 := time.Now()
	b, err := order.Seal(o, state.keys, state.parties, order.SealOptions{Directory: state.form.Directory, Policy: state.policy})
	sealed := time.Since(t0)
	o.Card = order.Card{}
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for delay := 200 * time.Millisecond; ; delay = min(delay*2, 5*time.Second) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		acc, err := state.merchant.Submit(ctx, b)
		cancel()
		var p *rfc9457.Problem
		switch {
		case err == nil:
			return map[string]any{"order_id": acc.OrderID, "state": acc.State, "suite": b.Suite, "epoch": b.Epoch,
				"seal_ms": float64(sealed.Microseconds()) / 1000}, nil
		case errors.As(err, &p) && p.Status < 500:
			return nil, reach("the merchant", err)
		case time.Now().Add(delay).After(deadline):
			return nil, fmt.Errorf("order %s: no answer from the merchant (%v); it may have arrived: check its status later", b.OrderID, err)
		}
		time.Sleep(delay)
	}
}

func status(id string) (any, error) {
	if state.merchant == nil {
		return nil, errors.New("open your key file first")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := state.merchant.Status(ctx, id)
	if err != nil {
		return nil, reach("the merchant", err)
	}
	return st, nil
}

// reach names the party a request failed at, with what it said.
func reach(party string, err error) error {
	var p *rfc9457.Problem
	if errors.As(err, &p) {
		return fmt.Errorf("%s refused: %s (%s)", party, p.Detail, p.Code)
	}
	return fmt.Errorf("%s cannot be reached: %v", party, err)
}
