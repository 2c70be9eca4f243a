package merchant_test

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"orderseal/merchant"
)

// FuzzCatalogFile: the catalog decoder never panics; what it accepts has a
// currency, at least one product, unique SKUs, and survives a round trip.
func FuzzCatalogFile(f *testing.F) {
	seed, err := os.ReadFile("testdata/catalog.json")
	if err != nil {
		f.Fatal(err)
	}
	if _, err := merchant.ParseCatalogFile(seed); err != nil {
		f.Fatalf("the seed catalog does not load: %v", err)
	}
	f.Add(seed)
	for _, s := range []string{
		`{"currency":"EUR","products":[{"sku":"A","name":"a","unit_price":0}]}`,
		`{"currency":"EUR","products":[{"sku":"A","name":"a","unit_price":1},{"sku":"A","name":"b","unit_price":2}]}`,
		`{"currency":"EUR","products":[{"sku":"A","name":"a","unit_price":-1}]}`,
		`{"currency":"EUR","products":[{"sku":"A B","name":"a","unit_price":1}]}`,
		`{"currency":"EUR","currency":"USD","products":[{"sku":"A","name":"a","unit_price":1}]}`,
		`{"currency":"XXX","products":[]}`,
		`{"currency":"EUR","products":[{"sku":"A","name":"a","unit_price":1e3}]}`,
		`[]`, `null`, ``, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := merchant.ParseCatalogFile(data)
		if err != nil {
			return
		}
		if len(c.Currency) != 3 || len(c.Products) == 0 {
			t.Fatalf("accepted %+v", c)
		}
		skus := map[string]bool{}
		for _, p := range c.Products {
			if p.SKU == "" || p.Name == "" || p.UnitPrice < 0 || skus[p.SKU] {
				t.Fatalf("accepted product %+v", p)
			}
			skus[p.SKU] = true
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := merchant.ParseCatalogFile(again)
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, c, c2)
		}
	})
}
