package issuer_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"testing"
	"time"

	"orderseal/internal/problem/rfc9457"
	"orderseal/issuer/api"
	"orderseal/tstest/keys"
)

type lifecycleStep struct {
	Name      string `json:"name"`
	Op        string `json:"op"`
	Key       string `json:"key"`
	Amount    int64  `json:"amount"`
	Currency  string `json:"currency"`
	Final     bool   `json:"final"`
	Status    int    `json:"status"`
	Code      string `json:"code"`
	State     string `json:"state"`
	Captured  int64  `json:"captured"`
	Refunded  int64  `json:"refunded"`
	Available int64  `json:"available"`
}

// TestLifecycleSteps walks one authorization through testdata/lifecycle.json
// over signed HTTP: each step's status or problem code, then the record as
// the issuer answers GET with it and the card's credit to the minor unit.
func TestLifecycleSteps(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/lifecycle.json")
	if err != nil {
		t.Fatal(err)
	}
	var vec struct{ Steps []lifecycleStep }
	if err := json.Unmarshal(raw, &vec); err != nil {
		t.Fatal(err)
	}
	if len(vec.Steps) == 0 {
		t.Fatal("no steps loaded")
	}
	ctx := context.Background()
	e := newIssuerEnv(t)
	card := e.addCard(t, visa, keys.Alice, "2031-12", "EUR", 500_00)
	shop := e.client(t, keys.Shop)
	b := seal(t, orderOpts{})
	if a, err := shop.Authorize(ctx, b, orderTotal, "EUR", ""); err != nil || a.State != api.StateAuthorized || a.HoldUntil == "" {
		t.Fatalf("authorize: %+v %v", a, err)
	}
	for _, s := range vec.Steps {
		var path string
		var body any
		switch s.Op {
		case "capture":
			path, body = api.PathCapturesSuffix, api.OpRequest{IdempotencyKey: s.Key, Amount: s.Amount, Currency: s.Currency, Final: s.Final}
		case "refund":
			path, body = api.PathRefundsSuffix, api.OpRequest{IdempotencyKey: s.Key, Amount: s.Amount, Currency: s.Currency, Final: s.Final}
		case "release":
			path, body = api.PathReleaseSuffix, api.ReleaseRequest{IdempotencyKey: s.Key}
		case "void":
			path = api.PathVoidSuffix
		default:
			t.Fatalf("%s: unknown op %q", s.Name, s.Op)
		}
		var in []byte
		if body != nil {
			in, _ = json.Marshal(body)
		}
		resp, err := e.raw(t, keys.Shop).Do(ctx, keys.Bank, http.MethodPost, e.ts.URL+api.PathAuthorizations+b.OrderID+path, in)
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		if s.Code != "" {
			respProblem(t, resp, s.Status, s.Code)
		} else if resp.Status != s.Status {
			t.Fatalf("%s: HTTP %d, want %d: %s", s.Name, resp.Status, s.Status, resp.Body)
		}
		got, err := shop.Get(ctx, b.OrderID)
		if err != nil {
			t.Fatalf("%s: get: %v", s.Name, err)
		}
		if got.State != s.State || got.Captured != s.Captured || got.Refunded != s.Refunded {
			t.Fatalf("%s: %s captured %d refunded %d, want %s %d %d", s.Name, got.State, got.Captured, got.Refunded, s.State, s.Captured, s.Refunded)
		}
		if av := e.available(t, card.ID); av != s.Available {
			t.Fatalf("%s: available %d, want %d", s.Name, av, s.Available)
		}
	}
	// Another merchant's capture finds no authorization.
	_, err = e.client(t, keys.OtherShop).Capture(ctx, b.OrderID, "cap-x", 100, "EUR", false)
	wantProblem(t, err, api.CodeUnknownAuth)
}

// TestLifecycleVoidThenCapture: a void releases the hold; a capture after it
// is capture-after-void and changes nothing.
func TestLifecycleVoidThenCapture(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newIssuerEnv(t)
	card := e.addCard(t, visa, keys.Alice, "2031-12", "EUR", 500_00)
	shop := e.client(t, keys.Shop)
	b := seal(t, orderOpts{})
	if _, err := shop.Authorize(ctx, b, orderTotal, "EUR", ""); err != nil {
		t.Fatal(err)
	}
	if v, err := shop.Void(ctx, b.OrderID); err != nil || v.State != api.StateVoided {
		t.Fatalf("void: %+v %v", v, err)
	}
	wantProblem(t, errOf(shop.Capture(ctx, b.OrderID, "cap-1", orderTotal, "EUR", true)), api.CodeCaptureAfterVoid)
	if av := e.available(t, card.ID); av != 500_00 {
		t.Fatalf("available %d", av)
	}
}

// TestLifecycleExpiry: past the issuer's hold period the hold is released
// (the merchant's next query shows it expired) and a capture is refused.
func TestLifecycleExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newIssuerEnvHold(t, 300*time.Millisecond)
	card := e.addCard(t, visa, keys.Alice, "2031-12", "EUR", 500_00)
	shop := e.client(t, keys.Shop)
	b := seal(t, orderOpts{})
	a, err := shop.Authorize(ctx, b, orderTotal, "EUR", "")
	if err != nil {
		t.Fatal(err)
	}
	until, err := time.Parse(time.RFC3339, a.HoldUntil)
	if err != nil || until.Before(time.Now().Add(-2*time.Second)) {
		t.Fatalf("hold until %q: %v", a.HoldUntil, err)
	}
	if av := e.available(t, card.ID); av != 500_00-orderTotal {
		t.Fatalf("available %d while held", av)
	}
	time.Sleep(400 * time.Millisecond)
	got, err := shop.Get(ctx, b.OrderID)
	if err != nil || got.State != api.StateExpired {
		t.Fatalf("after the hold: %+v %v", got, err)
	}
	if av := e.available(t, card.ID); av != 500_00 {
		t.Fatalf("available %d after expiry", av)
	}
	wantProblem(t, errOf(shop.Capture(ctx, b.OrderID, "cap-1", orderTotal, "EUR", true)), api.CodeAuthorizationExpired)
	if av := e.available(t, card.ID); av != 500_00 {
		t.Fatalf("available %d after a refused capture", av)
	}
	var p *rfc9457.Problem
	if _, err := shop.Void(ctx, b.OrderID); errors.As(err, &p) {
		t.Fatalf("voiding an expired hold: %v", err)
	}
}

// TestInstallmentPlans: the issuer checks the section's plan against the
// card product's rules (products.json): an allowed plan is approved and
// answered with its schedule, recorded with the authorization; a count the
// card does not allow, or a total below the product's minimum, is declined
// installments-not-allowed and holds nothing.
func TestInstallmentPlans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newIssuerEnv(t)
	cards := map[string]string{
		visa:   e.addCard(t, visa, keys.Alice, "2031-12", "EUR", 5000_00).ID,
		master: e.addCard(t, master, keys.Alice, "2031-12", "EUR", 5000_00).ID,
	}
	shop := e.client(t, keys.Shop)
	for _, tc := range []struct {
		name         string
		number       string
		installments int
		scale        int64
		reason       string
	}{
		{"visa in 3", visa, 3, 1, ""},
		{"visa in 6, three times the total", visa, 6, 3, ""},
		{"visa in 5: not a product count", visa, 5, 3, api.ReasonInstallments},
		{"mastercard in 3 below its minimum", master, 3, 1, api.ReasonInstallments},
		{"mastercard in 24 above it", master, 24, 3, ""},
		{"a single payment", visa, 1, 1, ""},
	} {
		card := struct{ ID string }{cards[tc.number]}
		before := e.available(t, card.ID)
		b := seal(t, orderOpts{number: tc.number, installments: tc.installments, scale: tc.scale})
		a, err := shop.Authorize(ctx, b, orderTotal*tc.scale, "EUR", "")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		switch {
		case tc.reason != "":
			if a.Decision != api.Declined || a.Reason != tc.reason || a.Plan != nil || e.available(t, card.ID) != before {
				t.Fatalf("%s: %+v, available %d → %d", tc.name, a, before, e.available(t, card.ID))
			}
		case tc.installments > 1:
			if a.Decision != api.Approved || a.Plan == nil || a.Plan.Installments != tc.installments || len(a.Plan.Schedule) != tc.installments {
				t.Fatalf("%s: %+v %+v", tc.name, a, a.Plan)
			}
			var sum int64
			for _, in := range a.Plan.Schedule {
				if _, err := time.Parse(time.DateOnly, in.Due); err != nil {
					t.Fatalf("%s: due %q", tc.name, in.Due)
				}
				sum += in.Amount
			}
			if sum != orderTotal*tc.scale {
				t.Fatalf("%s: schedule sums to %d", tc.name, sum)
			}
			// Recorded: a retry and a GET answer with the same schedule.
			again, err := shop.Get(ctx, b.OrderID)
			if err != nil || again.Plan == nil || len(again.Plan.Schedule) != tc.installments || again.Plan.Schedule[0] != a.Plan.Schedule[0] {
				t.Fatalf("%s: recorded plan %+v %v", tc.name, again, err)
			}
		default:
			if a.Decision != api.Approved || a.Plan != nil {
				t.Fatalf("%s: %+v", tc.name, a)
			}
		}
	}
}
