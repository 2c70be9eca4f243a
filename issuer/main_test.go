package issuer_test

import (
	"os"
	"testing"

	"orderseal/tstest/pgtest"
	"orderseal/tstest/webtest"
)

// TestMain bounds the fuzzer's minimization of new inputs (sealed bundles
// of kilobytes) so that it does not eat a target's whole fuzz time.
func TestMain(m *testing.M) { os.Exit(pgtest.Around(func() int { return webtest.Main(m, 200) })) }
