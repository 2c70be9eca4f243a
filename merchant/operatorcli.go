package merchant

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"orderseal/internal/cli"
	"orderseal/internal/dsn"
	"orderseal/internal/web"
	"orderseal/merchant/dashboard"
	"orderseal/merchant/store"
)

// OperatorView is an account as 'merchant operator list -json' prints it:
// never its password hash.
type OperatorView struct {
	Name        string `json:"name"`
	Role        string `json:"role"`
	Created     string `json:"created"`
	LastLogin   string `json:"last_login,omitempty"`
	LockedUntil string `json:"locked_until,omitempty"`
	Failures    int    `json:"failures"`
}

// operatorName is what an account may be called: it appears in logs and pages.
var operatorName = regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`)

// openExisting opens the store a running merchant made, refusing to create one.
func openExisting(ctx context.Context, db string) (store.Store, error) {
	for _, f := range web.SQLiteFiles(db) {
		if _, err := os.Stat(f); err != nil {
			return nil, cli.WithHint(fmt.Errorf("%s: no such database", f), "'"+prog+" serve' creates it")
		}
	}
	return OpenStore(ctx, db, nil)
}

func cmdOperator(ctx context.Context, args []string, stdio cli.Stdio) error {
	p := prog + " operator"
	code := cli.Dispatch(p, stdio, args, []cli.Command{
		{Name: "add", Summary: "create a dashboard account; the password is read from stdin (or -password-file)", Run: func(a []string) error {
			fs := cli.FlagSet(p, "add", "-db FILE -name NAME -role viewer|admin [-password-file FILE]", stdio,
				"printf '%s\\n' \"$PASSWORD\" | "+p+" add -db merchant.db -name ana -role admin")
			db := fs.String("db", "", "the merchant database")
			name := fs.String("name", "", "the account's name: lower-case letters, digits and . _ @ -, at most 64")
			role := fs.String("role", store.RoleViewer, "viewer (reads) or admin (also retries dead letters and edits the catalog)")
			pwFile := fs.String("password-file", "-", "read the password from this file (- for stdin); its first line is the password")
			if err := cli.Parse(fs, a, "db", "name"); err != nil {
				return err
			}
			if !operatorName.MatchString(*name) {
				return cli.Usagef("use lower-case letters, digits and . _ @ -, at most 64", "-name %.80q is not an account name", *name)
			}
			if *role != store.RoleViewer && *role != store.RoleAdmin {
				return cli.Usagef("use -role viewer or -role admin", "-role %.32q is not a role", *role)
			}
			data, err := cli.ReadInput(stdio, *pwFile, dashboard.MaxPassword+2)
			if err != nil {
				return err
			}
			pw, _, _ := strings.Cut(string(data), "\n")
			pw = strings.TrimSuffix(pw, "\r")
			if err := dashboard.CheckPasswordRules(pw); err != nil {
				return cli.WithHint(err, fmt.Sprintf("choose a passphrase of at least %d characters", dashboard.MinPassword))
			}
			h, err := dashboard.HashPassword(pw, dashboard.DefaultParams)
			if err != nil {
				return err
			}
			st, err := openExisting(ctx, *db)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.AddOperator(ctx, &store.Operator{Name: *name, Role: *role, PasswordHash: h}); err != nil {
				if errors.Is(err, store.ErrOperatorExists) {
					return cli.WithHint(err, "remove it first with '"+p+" remove', or pick another name")
				}
				return err
			}
			fmt.Fprintf(stdio.Err, "%s: %s added (%s)\n", p, *name, *role)
			return nil
		}},
		{Name: "list", Summary: "list the dashboard accounts, their roles, last logins and locks", Run: func(a []string) error {
			fs := cli.FlagSet(p, "list", "-db FILE [-json]", stdio)
			db := fs.String("db", "", "the merchant database")
			asJSON := fs.Bool("json", false, "JSON output")
			if err := cli.Parse(fs, a, "db"); err != nil {
				return err
			}
			st, err := openExisting(ctx, *db)
			if err != nil {
				return err
			}
			defer st.Close()
			ops, err := st.ListOperators(ctx)
			if err != nil {
				return err
			}
			now := time.Now()
			rows := make([]OperatorView, 0, len(ops))
			for _, o := range ops {
				v := OperatorView{Name: o.Name, Role: o.Role, Created: o.Created.Format(time.RFC3339), Failures: o.Failures}
				if !o.LastLogin.IsZero() {
					v.LastLogin = o.LastLogin.Format(time.RFC3339)
				}
				if o.Locked(now) {
					v.LockedUntil = o.LockedUntil.Format(time.RFC3339)
				}
				rows = append(rows, v)
			}
			if *asJSON {
				return cli.PrintJSON(stdio.Out, rows)
			}
			tw := tabwriter.NewWriter(stdio.Out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLE\tCREATED\tLAST LOGIN\tLOCKED UNTIL\tFAILURES")
			for _, v := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", v.Name, v.Role, v.Created, dash(v.LastLogin), dash(v.LockedUntil), v.Failures)
			}
			return tw.Flush()
		}},
		{Name: "remove", Summary: "delete a dashboard account and end its sessions", Run: func(a []string) error {
			return operatorChange(ctx, p, "remove", a, stdio, "removed, its sessions ended", func(st store.Store, name string) error {
				return st.RemoveOperator(ctx, name)
			})
		}},
		{Name: "unlock", Summary: "clear an account's failed logins and lock", Run: func(a []string) error {
			return operatorChange(ctx, p, "unlock", a, stdio, "unlocked", func(st store.Store, name string) error {
				return st.UnlockOperator(ctx, name)
			})
		}},
	})
	if code != cli.ExitOK {
		return &cli.Error{Err: cli.ErrReported, Code: code}
	}
	return nil
}

// operatorChange runs one change to a named account.
func operatorChange(ctx context.Context, p, sub string, a []string, stdio cli.Stdio, done string, change func(store.Store, string) error) error {
	fs := cli.FlagSet(p, sub, "-db FILE NAME", stdio)
	db := fs.String("db", "", "the merchant database")
	if err := parseArgs(fs, a, 1, "one account name", "db"); err != nil {
		return err
	}
	st, err := openExisting(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()
	name := fs.Arg(0)
	if err := change(st, name); err != nil {
		if errors.Is(err, store.ErrNoOperator) {
			return cli.WithHint(fmt.Errorf("no account %.80q", name), p+" list -db "+dsn.Redact(*db)+" lists them")
		}
		return err
	}
	fmt.Fprintf(stdio.Err, "%s: %s %s\n", p, name, done)
	return nil
}
