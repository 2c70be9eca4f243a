// Package tick runs periodic work until a context ends.
package tick

import (
	"context"
	"time"
)

// Every calls f every d (the first time after d) until ctx ends; a call
// under way when ctx ends is not cut short.
func Every(ctx context.Context, d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}
