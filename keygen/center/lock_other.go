//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package center

import "os"

// lockFile does nothing where flock(2) is missing: run one keygen at a
// time on a center there.
func lockFile(*os.File) error { return nil }
