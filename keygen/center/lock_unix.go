//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package center

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive lock on f, failing at once if another
// process holds it; closing f releases it.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
