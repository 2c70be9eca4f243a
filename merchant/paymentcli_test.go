package merchant_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"orderseal/merchant"
	"orderseal/merchant/store"
)

// TestCLIPayment holds 'merchant capture' and 'merchant refund' to
// testdata/paymentcli.json: a request within the issuer's last word is
// queued once under its key; every refusal has its code, exits non-zero
// and queues nothing.
func TestCLIPayment(t *testing.T) {
	ctx := context.Background()
	raw, err := os.ReadFile("testdata/paymentcli.json")
	if err != nil {
		t.Fatal(err)
	}
	var vec struct {
		Cases []struct {
			Name  string
			Args  []string
			Exit  int
			Code  string
			Key   string
			Again bool
		}
	}
	if err := json.Unmarshal(raw, &vec); err != nil || len(vec.Cases) == 0 {
		t.Fatalf("vectors: %v", err)
	}
	db := filepath.Join(t.TempDir(), "merchant.db")
	st, err := merchant.OpenStore(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct{ id, state string }{{"ord_paid", "delivered"}, {"ord_cancelled", "received"}} {
		if _, _, err := st.Insert(ctx, &store.Order{ID: o.id, Cardholder: "cardholder:alice@example.org", HeaderHash: []byte(o.id),
			Bundle: []byte(`{}`), Issuer: "issuer:bank.example", Carrier: "carrier:parcel.example", Items: []byte(`[]`),
			Total: 3897, Currency: "EUR", State: o.state}, "authorize"); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.RecordPayment(ctx, store.Payment{OrderID: "ord_paid", State: "partially-refunded", Captured: 2500, Refunded: 500}, ""); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordPayment(ctx, store.Payment{OrderID: "ord_cancelled", State: "voided"}, ""); err != nil {
		t.Fatal(err)
	}
	jobs := func() int {
		n, err := st.Outbox().Count(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		return n.Pending + n.Done + n.Failed
	}
	for _, tc := range vec.Cases {
		before := jobs()
		args := append([]string{tc.Args[0], "-db", db}, tc.Args[1:]...)
		code, out, errs := runCLI(t, ctx, "", args...)
		if code != tc.Exit {
			t.Fatalf("%s: exit %d, want %d\n%s%s", tc.Name, code, tc.Exit, out, errs)
		}
		switch {
		case tc.Exit == 0:
			if strings.TrimSpace(out) != tc.Key {
				t.Fatalf("%s: printed %q, want the key %s", tc.Name, out, tc.Key)
			}
			if want := before + 1; tc.Again {
				if jobs() != before || !strings.Contains(errs, "asked already") {
					t.Fatalf("%s: queued again (%d → %d): %s", tc.Name, before, jobs(), errs)
				}
			} else if jobs() != want {
				t.Fatalf("%s: %d jobs, want %d", tc.Name, jobs(), want)
			}
		default:
			if out != "" || jobs() != before {
				t.Fatalf("%s: a refusal printed %q or queued a job (%d → %d)", tc.Name, out, before, jobs())
			}
			if tc.Code != "" {
				oneLineError(t, errs, "merchant", "["+tc.Code+"]")
			}
		}
	}
}
