// Package depcheck holds the test that keeps the public SDK and the
// cardholder CLI free of the server stack (tailscale's depaware idea).
package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

// forbidden may never be imported, directly or not, by the packages below.
var forbidden = []string{
	"github.com/labstack/echo",
	"modernc.org/sqlite",
	"database/sql",
}

func TestNoServerStackInClients(t *testing.T) {
	for _, pkg := range []string{"orderseal/keygen", "orderseal/order", "orderseal/cardholder"} {
		t.Run(pkg, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list: %v\n%s", err, out)
			}
			deps := strings.Fields(string(out))
			if len(deps) < 5 {
				t.Fatalf("go list returned %d packages; the check would prove nothing", len(deps))
			}
			for _, d := range deps {
				for _, f := range forbidden {
					if d == f || strings.HasPrefix(d, f+"/") {
						t.Errorf("%s depends on %s", pkg, d)
					}
				}
			}
		})
	}
}
