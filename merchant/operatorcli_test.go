package merchant_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"orderseal/merchant"
	"orderseal/merchant/dashboard"
)

// TestCLIOperator: accounts are added with a password from stdin, listed
// without their hash, unlocked and removed; bad input is one line with a
// hint and changes nothing.
func TestCLIOperator(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "dash-operators.db")
	st, err := merchant.OpenStore(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	const pw = "a passphrase long enough"
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string // in stderr
	}{
		{"add an admin", pw + "\n", []string{"add", "-db", db, "-name", "ana", "-role", "admin"}, 0, "ana added (admin)"},
		{"add a viewer, CRLF", pw + "\r\n", []string{"add", "-db", db, "-name", "vic"}, 0, "vic added (viewer)"},
		{"the same name again", pw + "\n", []string{"add", "-db", db, "-name", "ana"}, 1, "already exists"},
		{"a name with capitals", pw + "\n", []string{"add", "-db", db, "-name", "Ana"}, 2, "not an account name"},
		{"an unknown role", pw + "\n", []string{"add", "-db", db, "-name", "bob", "-role", "root"}, 2, "not a role"},
		{"a short password", "short\n", []string{"add", "-db", db, "-name", "bob"}, 1, "at least 12"},
		{"no database", pw + "\n", []string{"add", "-db", filepath.Join(t.TempDir(), "none.db"), "-name", "bob"}, 1, "no such database"},
		{"unlock", "", []string{"unlock", "-db", db, "vic"}, 0, "vic unlocked"},
		{"unlock nobody", "", []string{"unlock", "-db", db, "nobody"}, 1, "no account"},
		{"remove", "", []string{"remove", "-db", db, "vic"}, 0, "vic removed"},
		{"remove again", "", []string{"remove", "-db", db, "vic"}, 1, "no account"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := runCLI(t, ctx, tc.stdin, append([]string{"operator"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errs, tc.code, tc.want)
			}
			if code != 0 {
				oneLineError(t, errs, "merchant operator", tc.want)
			}
		})
	}
	code, out, errs := runCLI(t, ctx, "", "operator", "list", "-db", db, "-json")
	if code != 0 {
		t.Fatalf("list: %d %s", code, errs)
	}
	var ops []merchant.OperatorView
	if err := json.Unmarshal([]byte(out), &ops); err != nil || len(ops) != 1 || ops[0].Name != "ana" || ops[0].Role != "admin" || ops[0].LastLogin != "" {
		t.Fatalf("list: %v %s", err, out)
	}
	code, out, _ = runCLI(t, ctx, "", "operator", "list", "-db", db)
	if code != 0 || !strings.Contains(out, "ana") || strings.Contains(out, "argon2") {
		t.Fatalf("list table: %d %s", code, out)
	}
	st, err = merchant.OpenStore(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	op, err := st.Operator(ctx, "ana")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := dashboard.VerifyPassword(op.PasswordHash, pw); !ok || err != nil || !strings.HasPrefix(op.PasswordHash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("stored hash %q does not verify the password: %v %v", op.PasswordHash, ok, err)
	}
}
