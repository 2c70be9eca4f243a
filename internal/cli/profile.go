package cli

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
)

// CPUProfileFlag adds -cpuprofile to a long-running command; pass its value
// to StartCPUProfile once the flags are parsed.
func CPUProfileFlag(fs *flag.FlagSet) *string {
	return fs.String("cpuprofile", "", "write a CPU profile of this run here (mode 0600) when it stops gracefully; for `go tool pprof`")
}

// StartCPUProfile starts profiling into path ("" does nothing) and returns
// what stops it and closes the file.
func StartCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
