package cardholder

import (
	"bytes"
	"regexp"
	"testing"

	merchantapi "orderseal/merchant/api"
)

// TestAmountsFormatted: the order form and the status the cardholder reads
// show amounts in their currency's minor unit (JPY none, EUR two, BHD
// three decimals), never raw minor units.
func TestAmountsFormatted(t *testing.T) {
	t.Setenv("ORDERSEAL_LOCALE", "")
	for _, tc := range []struct {
		currency string
		price    int64
		want     string
	}{
		{"JPY", 129900, "129,900 JPY"},
		{"KRW", 1500, "1,500 KRW"},
		{"EUR", 1299, "12.99 EUR"},
		{"BHD", 1500, "1.500 BHD"},
		{"BHD", 1234567, "1,234.567 BHD"},
	} {
		t.Run(tc.currency+"/"+tc.want, func(t *testing.T) {
			var form bytes.Buffer
			f := &merchantapi.OrderForm{Merchant: "merchant:shop.example", Currency: tc.currency,
				Catalog: []merchantapi.Product{{SKU: "X-1", Name: "X", UnitPrice: tc.price}}}
			if err := printForm(&form, f); err != nil {
				t.Fatal(err)
			}
			if !regexp.MustCompile(`(?m)^X-1 +X +` + regexp.QuoteMeta(tc.want) + `$`).Match(form.Bytes()) {
				t.Errorf("order form lacks %q:\n%s", tc.want, form.String())
			}
			var st bytes.Buffer
			printStatus(&st, &merchantapi.Status{OrderID: "ord_x", State: "received", Total: tc.price, Currency: tc.currency})
			if !regexp.MustCompile(`(?m)^total +` + regexp.QuoteMeta(tc.want) + `$`).Match(st.Bytes()) {
				t.Errorf("status lacks total %q:\n%s", tc.want, st.String())
			}
		})
	}
}
