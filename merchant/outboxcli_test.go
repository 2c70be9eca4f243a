package merchant_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	outboxsql "orderseal/internal/outbox/sqlite"
	"orderseal/internal/sqlitex"
	"orderseal/merchant"
)

// TestCLIOutbox: 'merchant outbox' lists relay jobs by state, in a table or
// as JSON, with attempts, next attempt and last error, and never a payload.
func TestCLIOutbox(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "merchant.db")
	st, err := merchant.OpenStore(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	// The jobs go in beside the daemon's tables, as its transactions write them.
	raw, err := sqlitex.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	const payloadCanary = "payload-canary-9d1e"
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	jobs := outboxsql.New(raw)
	for _, j := range []struct{ kind, key, state, lastErr string }{
		{"authorize", "ord_pending", "pending", "issuer:bank.example answered HTTP 503"},
		{"book", "ord_failed", "failed", "no-destination (422): the section names\nneither a token nor an address\x00"},
		{"authorize", "ord_done", "done", ""},
	} {
		if err := outboxsql.Enqueue(ctx, raw, j.kind, j.key, []byte(payloadCanary), now); err != nil {
			t.Fatal(err)
		}
		due, err := jobs.Claim(ctx, now, 1)
		if err != nil || len(due) != 1 || due[0].Key != j.key {
			t.Fatalf("claim %+v %v", due, err)
		}
		switch j.state {
		case "pending":
			err = jobs.Retry(ctx, due[0].ID, 3, j.lastErr, now.Add(time.Minute))
		case "failed":
			err = jobs.Fail(ctx, due[0].ID, 3, j.lastErr)
		case "done":
			err = jobs.Done(ctx, due[0].ID, 3)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	raw.Close()

	t.Run("table", func(t *testing.T) {
		code, out, errs := runCLI(t, ctx, "", "outbox", "-db", db)
		if code != 0 || errs != "" {
			t.Fatalf("outbox: %d %q", code, errs)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 4 || !strings.HasPrefix(lines[0], "KIND") {
			t.Fatalf("table:\n%s", out)
		}
		for _, want := range []string{"ord_pending", "2026-03-01T12:01:00Z", "issuer:bank.example answered HTTP 503",
			"ord_failed", `no-destination (422): the section names neither a token nor an address\x00`, "ord_done"} {
			if !strings.Contains(out, want) {
				t.Errorf("table lacks %q:\n%s", want, out)
			}
		}
	})

	tests := []struct {
		state string
		want  []string // order ids
	}{
		{"", []string{"ord_pending", "ord_failed", "ord_done"}},
		{"pending", []string{"ord_pending"}},
		{"failed", []string{"ord_failed"}},
		{"done", []string{"ord_done"}},
	}
	for _, tc := range tests {
		t.Run("json state "+tc.state, func(t *testing.T) {
			args := []string{"outbox", "-db", db, "-json"}
			if tc.state != "" {
				args = append(args, "-state", tc.state)
			}
			code, out, errs := runCLI(t, ctx, "", args...)
			if code != 0 {
				t.Fatalf("outbox: %d %s", code, errs)
			}
			if strings.Contains(out, payloadCanary) {
				t.Fatal("the listing shows a payload")
			}
			var jobs []merchant.OutboxJob
			if err := json.Unmarshal([]byte(out), &jobs); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if len(jobs) != len(tc.want) {
				t.Fatalf("%d jobs, want %v", len(jobs), tc.want)
			}
			for i, j := range jobs {
				if j.OrderID != tc.want[i] || j.Attempts != 3 || j.State != strings.TrimPrefix(j.OrderID, "ord_") {
					t.Fatalf("job %d: %+v", i, j)
				}
				if (j.NextAttempt != "") != (j.State == "pending") || (j.LastError == "") != (j.State == "done") {
					t.Fatalf("job %d: %+v", i, j)
				}
			}
		})
	}

	refusals := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no -db", []string{"outbox"}, 2, "-db"},
		{"unknown state", []string{"outbox", "-db", db, "-state", "stuck"}, 2, "not a job state"},
		{"no such database", []string{"outbox", "-db", filepath.Join(t.TempDir(), "absent.db")}, 1, "no such database"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := runCLI(t, ctx, "", tc.args...)
			if code != tc.code || out != "" {
				t.Fatalf("exit %d, stdout %q; want %d", code, out, tc.code)
			}
			oneLineError(t, errs, "merchant", tc.want)
		})
	}
}
