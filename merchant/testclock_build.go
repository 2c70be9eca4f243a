//go:build orderseal_testclock

package merchant

// A binary built with -tags orderseal_testclock (only the chaos harness
// builds one) honours ClockEnv.
func init() { allowTestClock = true }
