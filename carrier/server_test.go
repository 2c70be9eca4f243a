package carrier_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"orderseal/carrier/api"
	"orderseal/carrier/store"
	"orderseal/internal/sqlitex"
	"orderseal/internal/wire"
	"orderseal/order"
	"orderseal/tstest/keys"
)

// eventsBase is where newEnv's carrier is configured to send the shop's
// (and the other shop's) tracking events.
const eventsBase = "http://127.0.0.1:9"

// TestBookGrantedToken: a bundle shipped to the cardholder's vault token is
// booked with that token; the answer echoes hH; a retry gets the same
// answer; the database keeps the token, the recipient and the invoice.
func TestBookGrantedToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	b, token := e.grantedOrder(t, "INV-1")
	shop := e.merchant(t, keys.Shop)

	got, err := shop.Book(ctx, b, "INV-1")
	if err != nil {
		t.Fatal(err)
	}
	hH := b.HeaderHash()
	if got.OrderID != b.OrderID || got.HeaderHash != wire.B64(hH[:]) || got.Status != api.StatusBooked {
		t.Fatalf("shipment %+v", got)
	}
	if err := api.ValidateTracking(got.Tracking); err != nil || !strings.HasPrefix(got.Tracking, "OS") || !strings.HasSuffix(got.Tracking, "DE") {
		t.Fatalf("tracking %q: %v", got.Tracking, err)
	}
	if booked, err := time.Parse(time.RFC3339, got.Booked); err != nil || time.Since(booked) > time.Minute {
		t.Fatalf("booked %q %v", got.Booked, err)
	}
	again, err := shop.Book(ctx, b, "INV-1")
	if err != nil || *again != *got {
		t.Fatalf("retry: %+v %v, want %+v", again, err, got)
	}
	sh, err := e.st.Lookup(ctx, got.Tracking)
	if err != nil {
		t.Fatal(err)
	}
	if sh.ShipToken != token || sh.Source != store.Granted || sh.Merchant != keys.Shop || sh.Invoice != "INV-1" ||
		sh.RecipientName != "Bob Beispiel" || sh.RecipientPhone != "+4917698765432" || sh.EventsURL != eventsBase+api.EventsPath(b.OrderID) || sh.HeaderHash != hH {
		t.Fatalf("stored %+v", sh)
	}
	if list, _ := e.st.List(ctx); len(list) != 1 {
		t.Fatalf("%d shipments after a retry", len(list))
	}
}

// TestBookInlineAddress: an inline address is deposited in the vault as the
// carrier's own token before booking; the carrier's files hold no trace of
// it, and a retry deposits nothing new.
func TestBookInlineAddress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	b := sealOrder(t, keys.Shop, keys.Parcel, "", &inlineAddress, order.SealOptions{})
	shop := e.merchant(t, keys.Shop)
	got, err := shop.Book(ctx, b, "INV-7")
	if err != nil {
		t.Fatal(err)
	}
	again, err := shop.Book(ctx, b, "INV-7")
	if err != nil || *again != *got {
		t.Fatalf("retry: %+v %v, want %+v", again, err, got)
	}
	sh, err := e.st.Lookup(ctx, got.Tracking)
	if err != nil || sh.Source != store.Deposited {
		t.Fatalf("stored %+v %v", sh, err)
	}
	// The vault holds it under the carrier's name, labelled with the order.
	parcel := e.vaultClient(t, keys.Parcel)
	entries, err := parcel.List(ctx)
	if err != nil || len(entries) != 1 || entries[0].Token != sh.ShipToken || entries[0].Label != b.OrderID || entries[0].Shareable {
		t.Fatalf("carrier's vault entries %+v %v", entries, err)
	}
	// It belongs to the order: revealed under the order's deposit grant.
	v, err := parcel.RevealGranted(ctx, sh.ShipToken, b.OrderID, "INV-7")
	if err != nil || !strings.Contains(string(v), canaryStreet) {
		t.Fatalf("reveal under the order's grant: %v", err)
	}
	// Checkpoint nothing: the WAL is scanned as it is, then after a checkpoint.
	e.assertNoAddress(t)
	db, err := sqlitex.Open(e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	e.assertNoAddress(t)
}

// TestBookReusedOrderID: another bundle or invoice under a booked order id is refused, and the booking is left as it was.
func TestBookReusedOrderID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	b := sealOrder(t, keys.Shop, keys.Parcel, "", &inlineAddress, order.SealOptions{OrderID: "ord-reused-1"})
	shop := e.merchant(t, keys.Shop)
	first, err := shop.Book(ctx, b, "INV-1")
	if err != nil {
		t.Fatal(err)
	}
	other := sealOrder(t, keys.Shop, keys.Parcel, "", &inlineAddress, order.SealOptions{OrderID: "ord-reused-1"})
	_, err = shop.Book(ctx, other, "INV-1")
	wantProblem(t, err, http.StatusConflict, api.CodeOrderIDReused)
	_, err = shop.Book(ctx, b, "INV-2")
	wantProblem(t, err, http.StatusConflict, api.CodeOrderIDReused)
	err = e.put(t, keys.Shop, b.OrderID, relay(t, b, "INV-1", eventsBase+"/elsewhere"))
	wantProblem(t, err, http.StatusUnprocessableEntity, api.CodeEventsURLMismatch)
	// An older merchant sending the configured URL retries the same booking.
	if err := e.put(t, keys.Shop, b.OrderID, relay(t, b, "INV-1", eventsBase+api.EventsPath(b.OrderID))); err != nil {
		t.Fatalf("retry with the configured events URL: %v", err)
	}
	// Another merchant may use the same order id for its own order.
	mine := sealOrder(t, keys.OtherShop, keys.Parcel, "", &inlineAddress, order.SealOptions{OrderID: "ord-reused-1"})
	theirs, err := e.merchant(t, keys.OtherShop).Book(ctx, mine, "INV-1")
	if err != nil || theirs.Tracking == first.Tracking {
		t.Fatalf("other merchant's booking %+v %v", theirs, err)
	}
	if again, err := shop.Book(ctx, b, "INV-1"); err != nil || *again != *first {
		t.Fatalf("original retry %+v %v", again, err)
	}
}

// TestBookRefusals: every refusal is problem+json with a stable code, and
// stores nothing, neither here nor in the vault.
func TestBookRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	delete(e.merchants, keys.OtherShop) // booked before any request
	now := time.Now()
	good := func(t *testing.T) *order.Bundle {
		return sealOrder(t, keys.Shop, keys.Parcel, "", &inlineAddress, order.SealOptions{})
	}
	withSection := func(sec order.Section) func(t *testing.T) (string, string, any) {
		return func(t *testing.T) (string, string, any) {
			b := good(t)
			resealCarrier(t, b, sec)
			return keys.Shop, b.OrderID, relay(t, b, "INV-1", "")
		}
	}
	tests := []struct {
		name   string
		status int
		code   string
		req    func(t *testing.T) (caller, orderID string, body any)
	}{
		{"a cardholder books", 403, "forbidden-role", func(t *testing.T) (string, string, any) {
			b := good(t)
			return keys.Alice, b.OrderID, relay(t, b, "INV-1", "")
		}},
		{"another carrier books", 403, "forbidden-role", func(t *testing.T) (string, string, any) {
			b := good(t)
			return keys.OtherCarrier, b.OrderID, relay(t, b, "INV-1", "")
		}},
		{"an issuer books", 403, "forbidden-role", func(t *testing.T) (string, string, any) {
			b := good(t)
			return keys.Bank, b.OrderID, relay(t, b, "INV-1", "")
		}},
		{"oversize body", 413, "body-too-large", func(t *testing.T) (string, string, any) {
			return keys.Shop, "ord-big", []byte(`{"bundle":"` + strings.Repeat("A", api.MaxBody) + `"}`)
		}},
		{"malformed JSON", 400, "malformed-json", func(t *testing.T) (string, string, any) {
			return keys.Shop, "ord-x", []byte(`{"bundle":`)
		}},
		{"unknown field", 400, "malformed-json", func(t *testing.T) (string, string, any) {
			b := good(t)
			r := relay(t, b, "INV-1", "")
			return keys.Shop, b.OrderID, []byte(`{"bundle":` + string(r.Bundle) + `,"invoice":"INV-1","address":"x"}`)
		}},
		{"no invoice", 422, "invalid-request", func(t *testing.T) (string, string, any) {
			b := good(t)
			return keys.Shop, b.OrderID, relay(t, b, "", "")
		}},
		{"events URL not http", 422, api.CodeEventsURL, func(t *testing.T) (string, string, any) {
			b := good(t)
			return keys.Shop, b.OrderID, relay(t, b, "INV-1", "file:///etc/passwd")
		}},
		// Issue 16 item 5: a booking pointed the carrier at its own
		// loopback admin endpoint, which it then retried 300 times.
		{"events URL on the carrier's loopback", 422, api.CodeEventsURLMismatch, func(t *testing.T) (string, string, any) {
			b := good(t)
			return keys.Shop, b.OrderID, relay(t, b, "INV-1", "http://127.0.0.1:8445/internal/admin/reset?all=1")
		}},
		{"events URL of the merchant's own host, another path", 422, api.CodeEventsURLMismatch, func(t *testing.T) (string, string, any) {
			b := good(t)
			return keys.Shop, b.OrderID, relay(t, b, "INV-1", eventsBase+api.EventsPath("ord-another"))
		}},
		{"merchant not configured", 403, api.CodeMerchantNotConfigured, func(t *testing.T) (string, string, any) {
			b := sealOrder(t, keys.OtherShop, keys.Parcel, "", &inlineAddress, order.SealOptions{})
			return keys.OtherShop, b.OrderID, relay(t, b, "INV-1", "")
		}},
		{"bundle is not a bundle", 400, api.CodeBundleInvalid, func(t *testing.T) (string, string, any) {
			return keys.Shop, "ord-x", api.BookingRequest{Bundle: json.RawMessage(`{"v":1}`), Invoice: "INV-1"}
		}},
		{"bundle for another carrier", 400, api.CodeBundleInvalid, func(t *testing.T) (string, string, any) {
			b := sealOrder(t, keys.Shop, keys.OtherCarrier, "", &inlineAddress, order.SealOptions{})
			return keys.Shop, b.OrderID, relay(t, b, "INV-1", "")
		}},
		{"bundle for another merchant", 403, api.CodeWrongMerchant, func(t *testing.T) (string, string, any) {
			b := sealOrder(t, keys.OtherShop, keys.Parcel, "", &inlineAddress, order.SealOptions{})
			return keys.Shop, b.OrderID, relay(t, b, "INV-1", "")
		}},
		{"path names another order", 400, api.CodeOrderIDMismatch, func(t *testing.T) (string, string, any) {
			b := good(t)
			return keys.Shop, "ord-other", relay(t, b, "INV-1", "")
		}},
		{"expired bundle", 422, api.CodeBundleExpired, func(t *testing.T) (string, string, any) {
			b := sealOrder(t, keys.Shop, keys.Parcel, "", &inlineAddress, order.SealOptions{Now: now.Add(-3 * time.Hour), Lifetime: time.Hour})
			return keys.Shop, b.OrderID, relay(t, b, "INV-1", "")
		}},
		{"section from another order", 422, api.CodeSectionRefused, func(t *testing.T) (string, string, any) {
			b, other := good(t), good(t)
			b.Sections[order.RoleCarrier] = other.Sections[order.RoleCarrier]
			return keys.Shop, b.OrderID, relay(t, b, "INV-1", "")
		}},
		{"section tampered", 422, api.CodeSectionRefused, func(t *testing.T) (string, string, any) {
			b := good(t)
			s := b.Sections[order.RoleCarrier]
			s.CT[3] ^= 1
			return keys.Shop, b.OrderID, relay(t, b, "INV-1", "")
		}},
		{"no carrier section", 422, api.CodeSectionRefused, func(t *testing.T) (string, string, any) {
			b := good(t)
			r := relay(t, b, "INV-1", "")
			m, err := b.ForRole(order.RoleMerchant)
			if err != nil {
				t.Fatal(err)
			}
			r.Bundle, _ = m.MarshalJSON()
			return keys.Shop, b.OrderID, r
		}},
		{"no destination", 422, api.CodeNoDestination, withSection(order.Section{Content: order.Content{
			Recipient: &order.Recipient{Name: "Bob", Phone: "+4917698765432"}}})},
		{"two destinations", 422, api.CodeNoDestination, withSection(order.Section{Content: order.Content{
			ShipToken: "tok_7Hq2mXc9LpR4vNw8_adr", ShipTo: &inlineAddress}})},
		{"address that is not one", 422, api.CodeAddressInvalid, withSection(order.Section{Content: order.Content{
			ShipTo: &order.Address{Name: "Bob", Line1: canaryStreet, City: canaryCity, Country: "ZZ"}}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			caller, id, body := tt.req(t)
			wantProblem(t, e.put(t, caller, id, body), tt.status, tt.code)
		})
	}
	if list, err := e.st.List(context.Background()); err != nil || len(list) != 0 {
		t.Fatalf("refusals stored %d shipments (%v)", len(list), err)
	}
	if entries, err := e.vaultClient(t, keys.Parcel).List(context.Background()); err != nil || len(entries) != 0 {
		t.Fatalf("refusals deposited %+v (%v)", entries, err)
	}
	e.assertNoAddress(t)
}

// TestBookVaultDown: while the vault cannot take the inline address the
// booking is refused with 503 and nothing is stored; the merchant's retry
// once it is back books the order.
func TestBookVaultDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	b := sealOrder(t, keys.Shop, keys.Parcel, "", &inlineAddress, order.SealOptions{})
	shop := e.merchant(t, keys.Shop)
	e.vaultDown.Store(true)
	_, err := shop.Book(ctx, b, "INV-1")
	wantProblem(t, err, http.StatusServiceUnavailable, api.CodeVaultDeposit)
	if list, _ := e.st.List(ctx); len(list) != 0 {
		t.Fatalf("stored %d shipments while the vault was down", len(list))
	}
	e.vaultDown.Store(false)
	got, err := shop.Book(ctx, b, "INV-1")
	if err != nil || got.Status != api.StatusBooked {
		t.Fatalf("retry after the vault came back: %+v %v", got, err)
	}
	e.assertNoAddress(t)
}
