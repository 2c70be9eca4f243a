package store

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"orderseal/order/cards"
)

// Card products: the installment plans a card may be paid in, from a table
// (products.json), never from code. A plan the card's product does not
// allow is declined with api.ReasonInstallments; an allowed one is stored
// with the authorization and answered with its schedule.

//go:embed products.json
var productsJSON []byte

// Product is one card product's rules.
type Product struct {
	Brand        string           `json:"brand"`        // order/cards brand name
	Installments []int            `json:"installments"` // allowed counts, 1 included
	MinTotal     map[string]int64 `json:"min_total"`    // least total for a plan of more than one installment, per currency ("*": any other)
}

// Products is the issuer's product table, keyed by brand.
var Products = sync.OnceValue(func() map[string]Product {
	var t struct{ Products []Product }
	if err := json.Unmarshal(productsJSON, &t); err != nil {
		panic(fmt.Sprintf("issuer products.json: %v", err)) // embedded: a build error, not input
	}
	out := map[string]Product{}
	for _, p := range t.Products {
		out[p.Brand] = p
	}
	return out
})

// MaxInstallments bounds a plan's count (as order.Plan's validation does).
const MaxInstallments = 60

// PlanAllowed reports whether a card with number may pay total in
// currency in n installments: one always; more when the card's product
// lists n and total reaches its minimum.
func PlanAllowed(number string, n int, total int64, currency string) bool {
	if n <= 1 {
		return n == 1 || n == 0
	}
	b, err := cards.Check(number)
	if err != nil {
		return false
	}
	p, ok := Products()[b.Name]
	if !ok || !slices.Contains(p.Installments, n) || n > MaxInstallments {
		return false
	}
	min, ok := p.MinTotal[currency]
	if !ok {
		min = p.MinTotal["*"]
	}
	return total >= min
}

// Installment is one payment of a schedule.
type Installment struct {
	N      int       // 1-based
	Due    time.Time // midnight UTC of the due day
	Amount int64     // minor units
}

// Schedule is the plan of a's approval: a.Installments equal payments,
// the minor units that do not divide added to the first, due monthly from
// the month after the decision on the decision's day (the month's last
// day when it has fewer). Nil for a single payment or a decline.
func (a Authorization) Schedule() []Installment {
	n := a.Installments
	if n <= 1 || a.Decision != "approved" {
		return nil
	}
	each, rest := a.Amount/int64(n), a.Amount%int64(n)
	d := a.Decided.UTC()
	out := make([]Installment, n)
	for i := range n {
		y, m := d.Year(), d.Month()+time.Month(i+1)
		last := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
		out[i] = Installment{N: i + 1, Due: time.Date(y, m, min(d.Day(), last), 0, 0, 0, 0, time.UTC), Amount: each}
	}
	out[0].Amount += rest
	return out
}
