// Package deptest holds the test that keeps the public SDK (keygen, order)
// to what a merchant's own service or a browser page compiled to
// WebAssembly may link, and the cardholder CLI free of the server stack
// (tailscale's tstest/deptest). See STYLE.md "Layout".
package deptest

import (
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// ban is a package the SDK may not depend on, directly or not.
type ban struct {
	pkg    string
	prefix bool   // also every package below pkg
	why    string // the reason, reported with a violation
}

const (
	whyProfiling = "profiling belongs to binaries"
	whyTerminal  = "terminal UI belongs to CLIs"
	whyTransport = "the SDK is compiled to WebAssembly for the browser and called by merchants' own services: transport is the caller's"
	whyServer    = "server stack"
	whyExec      = "the SDK starts no processes"
	whyCenter    = "the master secret must never be linked into a cardholder's or merchant's program"
	whyRole      = "the SDK knows no party's implementation"
)

// sdkBans are the rules for keygen and order.
var sdkBans = []ban{
	{"orderseal/internal/cli", true, whyProfiling + " (it imports runtime/pprof)"},
	{"runtime/pprof", false, whyProfiling},
	{"github.com/schollz/progressbar", true, whyTerminal},
	{"golang.org/x/term", true, whyTerminal},
	{"net/http", true, whyTransport},
	{"net", false, whyTransport},
	{"github.com/labstack/echo", true, whyServer},
	{"github.com/prometheus", true, whyServer + " (metrics)"},
	{"database/sql", true, whyServer},
	{"modernc.org/sqlite", true, whyServer},
	{"github.com/jackc/pgx", true, whyServer},
	{"os/exec", false, whyExec},
	{"orderseal/keygen/center", true, whyCenter},
	{"orderseal/cardholder", true, whyRole},
	{"orderseal/merchant", true, whyRole},
	{"orderseal/issuer", true, whyRole},
	{"orderseal/carrier", true, whyRole},
	{"orderseal/vault", true, whyRole},
}

// cardholderBans keep the cardholder CLI, which runs on a customer's
// machine, free of the daemons' server stack.
var cardholderBans = []ban{
	{"github.com/labstack/echo", true, whyServer},
	{"github.com/prometheus", true, whyServer + " (metrics)"},
	{"database/sql", true, whyServer},
	{"modernc.org/sqlite", true, whyServer},
	{"github.com/jackc/pgx", true, whyServer},
}

// known are violations tracked elsewhere, as package → banned dep → why it
// is still there. The test fails when one disappears, so the entry goes too.
var known = map[string]map[string]string{
	// order validates with github.com/go-playground/validator/v10, which
	// imports net (IP and host checks) and net/mail; replacing it with
	// order's own checks removes both (issue 14).
	"orderseal/order": {
		"net": "via github.com/go-playground/validator/v10",
	},
	// order/money formats currencies with github.com/bojanz/currency (ISO
	// 4217 and CLDR data), whose Amount implements database/sql's Valuer and
	// Scanner. The package is the driver interfaces only (no pool, no
	// driver, no I/O); our own code never uses it. order itself checks
	// currencies with order/money/iso4217 and links neither.
	"orderseal/cardholder": {"database/sql/driver": "via order/money (github.com/bojanz/currency); interfaces only"},
}

// minDeps is fewer packages than any of these has; a shorter list means go
// list did not see the package and the check would prove nothing.
const minDeps = 50

func TestSDKDependencies(t *testing.T) {
	for _, pkg := range []string{"orderseal/keygen", "orderseal/order"} {
		t.Run(pkg, func(t *testing.T) { check(t, pkg, sdkBans) })
	}
}

func TestCardholderHasNoServerStack(t *testing.T) {
	check(t, "orderseal/cardholder", cardholderBans)
}

func check(t *testing.T, pkg string, bans []ban) {
	t.Helper()
	deps := goListDeps(t, pkg)
	hit := map[string]bool{}
	for _, d := range deps {
		for _, b := range bans {
			if d != b.pkg && !(b.prefix && strings.HasPrefix(d, b.pkg+"/")) {
				continue
			}
			if why, ok := known[pkg][d]; ok {
				hit[d] = true
				t.Logf("known: %s depends on %s (%s): %s", pkg, d, why, b.why)
				continue
			}
			t.Errorf("%s depends on %s: %s%s", pkg, d, b.why, importChain(t, pkg, d))
		}
	}
	for d := range known[pkg] {
		if !hit[d] {
			t.Errorf("%s no longer depends on %s: remove it from known", pkg, d)
		}
	}
}

// goListDeps returns pkg and every package it depends on, non-test.
func goListDeps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < minDeps {
		t.Fatalf("go list -deps %s returned %d packages (< %d); the check would prove nothing", pkg, len(deps), minDeps)
	}
	if deps[len(deps)-1] != pkg {
		t.Fatalf("go list -deps %s does not end with the package itself; the check would prove nothing", pkg)
	}
	return deps
}

// importChain names the packages of pkg's build that import dep directly,
// to say where a violation comes from.
func importChain(t *testing.T, pkg, dep string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, pkg).Output()
	if err != nil {
		return ""
	}
	var by []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		for _, imp := range f[min(1, len(f)):] {
			if imp == dep {
				by = append(by, f[0])
			}
		}
	}
	sort.Strings(by)
	if len(by) == 0 {
		return ""
	}
	return " (imported by " + strings.Join(by, ", ") + ")"
}

// checkoutBans keep the browser's checkout program (GOOS=js GOARCH=wasm)
// within its size budget (issue 20: ≤ 3 MB gzip): in the browser, signed
// requests go out through fetch (httpsig's client_js.go) and phone numbers
// are checked without libphonenumber's metadata (order/address phone_js.go);
// and what the page must start before it is ready to seal is kept short:
// in WebAssembly each function is compiled when first called, on the page's
// thread, so every package initialised at start delays it.
var checkoutBans = []ban{
	{"net/http", true, "the browser sends through fetch (httpsig client_js.go); net/http, TLS and X.509 add about 2 MB"},
	{"crypto/tls", true, "linked only through net/http"},
	{"crypto/x509", true, "linked only through net/http"},
	{"github.com/nyaruka/phonenumbers", true, "its metadata and protobuf runtime add about 2 MB; the page checks shape and calling code (phone_js.go)"},
	{"google.golang.org/protobuf", true, "linked only through phonenumbers"},
	{"github.com/bojanz/currency", true, "order validation checks a currency with order/money/iso4217's table; the library's CLDR formatting data is for people, not the page"},
	{"github.com/cockroachdb/apd", true, "linked only through bojanz/currency; its initialisation (decimal tables on math/big) took 75–100 ms of the page's start"},
}

func TestCheckoutProgramDependencies(t *testing.T) {
	const pkg = "orderseal/cmd/checkoutwasm"
	cmd := exec.Command("go", "list", "-deps", pkg)
	cmd.Env = append(cmd.Environ(), "GOOS=js", "GOARCH=wasm")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("GOOS=js GOARCH=wasm go list -deps %s: %v\n%s", pkg, err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < minDeps || deps[len(deps)-1] != pkg {
		t.Fatalf("go list -deps %s returned %d packages; the check would prove nothing", pkg, len(deps))
	}
	for _, d := range deps {
		for _, b := range checkoutBans {
			if d == b.pkg || b.prefix && strings.HasPrefix(d, b.pkg+"/") {
				t.Errorf("the checkout program links %s: %s", d, b.why)
			}
		}
	}
}
