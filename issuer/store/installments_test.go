package store

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"orderseal/issuer/api"
)

// TestInstallments holds PlanAllowed and Schedule to testdata/installments.json.
func TestInstallments(t *testing.T) {
	raw, err := os.ReadFile("testdata/installments.json")
	if err != nil {
		t.Fatal(err)
	}
	var vec struct {
		Allowed []struct {
			Name, Number, Currency string
			N                      int
			Total                  int64
			OK                     bool
		}
		Schedules []struct {
			Name    string
			Amount  int64
			N       int
			Decided time.Time
			Due     []string
			Amounts []int64
		}
	}
	if err := json.Unmarshal(raw, &vec); err != nil {
		t.Fatal(err)
	}
	if len(vec.Allowed) == 0 || len(vec.Schedules) == 0 {
		t.Fatal("no vectors loaded")
	}
	for _, v := range vec.Allowed {
		if got := PlanAllowed(v.Number, v.N, v.Total, v.Currency); got != v.OK {
			t.Errorf("%s: allowed %v, want %v", v.Name, got, v.OK)
		}
	}
	for _, v := range vec.Schedules {
		a := Authorization{Decision: api.Approved, Amount: v.Amount, Installments: v.N, Decided: v.Decided}
		s := a.Schedule()
		if len(s) != len(v.Due) {
			t.Fatalf("%s: %d installments, want %d", v.Name, len(s), len(v.Due))
		}
		var sum int64
		for i, in := range s {
			if in.N != i+1 || in.Due.Format(time.DateOnly) != v.Due[i] || in.Amount != v.Amounts[i] {
				t.Errorf("%s: installment %+v, want %d %s %d", v.Name, in, i+1, v.Due[i], v.Amounts[i])
			}
			sum += in.Amount
		}
		if sum != v.Amount {
			t.Errorf("%s: the schedule sums to %d, not %d", v.Name, sum, v.Amount)
		}
	}
	if s := (Authorization{Decision: api.Declined, Amount: 100, Installments: 3}).Schedule(); s != nil {
		t.Errorf("a decline has a schedule: %v", s)
	}
	if s := (Authorization{Decision: api.Approved, Amount: 100, Installments: 1}).Schedule(); s != nil {
		t.Errorf("a single payment has a schedule: %v", s)
	}
}
