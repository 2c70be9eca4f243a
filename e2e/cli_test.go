// Package e2e runs orderseal's programs as a user would: testscript files
// drive the real command mains in child processes.
package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"orderseal/cardholder"
	"orderseal/carrier"
	"orderseal/internal/cli"
	"orderseal/issuer"
	"orderseal/keygen/center"
	"orderseal/merchant"
	"orderseal/tstest/pgtest"
)

func TestMain(m *testing.M) {
	mains := map[string]func(context.Context, []string, cli.Stdio) int{
		"keygen": center.Main, "cardholder": cardholder.Main,
		"merchant": func(ctx context.Context, args []string, stdio cli.Stdio) int { return merchant.Main(ctx, args, stdio) },
		"issuer":   issuer.Main, "carrier": carrier.Main,
	}
	// The scripts' mains run in this test binary: let its key centers take
	// ORDERSEAL_CENTER_KDF=fast, as a binary built with the test tag does.
	center.AllowFastKDF = true
	cmds := map[string]func(){}
	for name, fn := range mains {
		cmds[name] = func() { os.Exit(fn(context.Background(), os.Args[1:], cli.OS())) }
	}
	// The PostgreSQL tests share one throwaway server (tstest/pgtest),
	// stopped when the tests end.
	testscript.Main(pgMain{m}, cmds)
}

// pgMain runs the tests through pgtest.Around, which stops the server.
type pgMain struct{ m *testing.M }

func (p pgMain) Run() int { return pgtest.Around(p.m.Run) }

func TestScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/script/*.txtar")
	if len(files) == 0 {
		t.Fatal("no scripts in testdata/script")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("REPO", repo)
			env.Setenv("ORDERSEAL_CENTER_PASSPHRASE", "script-passphrase")
			env.Setenv("ORDERSEAL_CENTER_KDF", "fast")
			// The officers of an OS2 center; each command names those present with -officers.
			env.Setenv(center.OfficerPassphrasesEnv, "ada=script-ada-pass\nben=script-ben-pass\ncy=script-cy-pass")
			return nil
		},
		RequireExplicitExec: false,
	})
}
