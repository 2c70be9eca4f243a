package store

import (
	"testing"

	"orderseal/carrier/api"
)

func TestTransitions(t *testing.T) {
	tests := []struct {
		path []string
		ok   bool
	}{
		{[]string{"picked-up", "in-transit", "in-transit", "out-for-delivery", "delivered"}, true},
		{[]string{"picked-up", "exception", "out-for-delivery", "delivered", "returned"}, true},
		{[]string{"returned"}, true},
		{[]string{"delivered"}, false},
		{[]string{"picked-up", "picked-up"}, false},
		{[]string{"in-transit", "delivered", "in-transit"}, false},
		{[]string{"in-transit", "delivered", "exception"}, false},
		{[]string{"in-transit", "delivered", "delivered"}, false},
		{[]string{"returned", "in-transit"}, false},
		{[]string{"returned", "returned"}, false},
		{[]string{"booked"}, false},
		{[]string{"lost"}, false},
	}
	for _, tt := range tests {
		from, ok := api.StatusBooked, true
		for _, to := range tt.path {
			ok = ok && Allowed(from, to)
			from = to
		}
		if ok != tt.ok {
			t.Errorf("%v: allowed %v, want %v", tt.path, ok, tt.ok)
		}
	}
}
