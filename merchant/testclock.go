package merchant

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"orderseal/internal/cli"
)

// ClockEnv names a file holding a duration ("30m") added to the merchant's
// clock, re-read as it changes: the chaos run's controlled clock, with
// which a 30-minute peer outage passes in seconds (issue 22). Only a binary
// built with -tags orderseal_testclock honours it; any other refuses to
// start while it is set.
const ClockEnv = "ORDERSEAL_TEST_CLOCK_OFFSET_FILE"

// allowTestClock is set by testclock_build.go in test builds.
var allowTestClock = false

// clockFromEnv returns the merchant's clock: time.Now, or in a test build
// asked for it, time.Now plus the offset in ClockEnv's file.
func clockFromEnv() (func() time.Time, error) {
	path, ok := os.LookupEnv(ClockEnv)
	if !ok {
		return time.Now, nil
	}
	if !allowTestClock {
		return nil, cli.WithHint(fmt.Errorf("%s is honoured by test builds only", ClockEnv), "unset "+ClockEnv)
	}
	var offset atomic.Int64
	read := func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		d, err := time.ParseDuration(strings.TrimSpace(string(b)))
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		offset.Store(int64(d))
		return nil
	}
	if err := read(); err != nil {
		return nil, err
	}
	go func() {
		for range time.Tick(20 * time.Millisecond) {
			read() // a file being rewritten keeps the last offset
		}
	}()
	return func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }, nil
}
