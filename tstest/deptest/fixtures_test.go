package deptest

import (
	"os/exec"
	"strings"
	"testing"
)

// fixturesOK are the top-level folders whose non-test packages may depend
// on the test-support tree: it is their own (tstest), or they are tests
// and test drivers that ship nothing (e2e, tools, bench).
var fixturesOK = []string{"tstest", "e2e", "tools", "bench"}

// TestNoFixturesInProduction fails when a package outside fixturesOK
// depends, directly or not, on orderseal/tstest/...: test fixtures such as
// tstest/keys (a key center whose master is in the source) must never be
// linked into a program.
func TestNoFixturesInProduction(t *testing.T) {
	out, err := exec.Command("go", "list", "-e", "-f", "{{.ImportPath}}", "orderseal/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []string
	for _, p := range strings.Fields(string(out)) {
		ok := false
		for _, f := range fixturesOK {
			ok = ok || folder(p) == f
		}
		if !ok {
			pkgs = append(pkgs, p)
		}
	}
	if len(pkgs) < 40 {
		t.Fatalf("go list gave %d production packages: the check would prove nothing", len(pkgs))
	}
	// go list -deps without -test: only what the packages' programs link.
	out, err = exec.Command("go", append([]string{"list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}"}, pkgs...)...).Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		seen++
		if folder(f[0]) == "tstest" {
			t.Errorf("%s is linked into production code", f[0])
		}
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, "orderseal/tstest/") && folder(f[0]) != "tstest" {
				t.Errorf("%s imports %s: test fixtures are for _test.go files only", f[0], imp)
			}
		}
	}
	if seen < len(pkgs) {
		t.Fatalf("go list -deps listed %d packages for %d roots: the check would prove nothing", seen, len(pkgs))
	}
}
