package cli

import (
	"flag"
	"time"
)

// DefaultStoreCheckEvery is how often a serving daemon quick-checks its
// database files (web.Health).
const DefaultStoreCheckEvery = time.Hour

// ListenUsage is the usual help text of -listen.
const ListenUsage = "address to listen on (port 0: any free port)"

// ServeFlags are the flags every daemon's "serve" shares: -listen,
// -addr-file, -check-every and -cpuprofile.
type ServeFlags struct {
	Listen     *string        // address to listen on
	AddrFile   *string        // where to write the bound address once listening
	CheckEvery *time.Duration // how often the daemon's database files are quick-checked while it serves
	cpuprofile *string
}

// AddServeFlags adds -listen (defaulting to listen, with usage as its help
// text), -addr-file, -check-every and -cpuprofile to fs.
func AddServeFlags(fs *flag.FlagSet, listen, usage string) ServeFlags {
	return ServeFlags{
		Listen:     fs.String("listen", listen, usage),
		AddrFile:   fs.String("addr-file", "", "write the bound address here once listening"),
		CheckEvery: fs.Duration("check-every", DefaultStoreCheckEvery, "quick-check the database files this often while serving (0: only at start)"),
		cpuprofile: CPUProfileFlag(fs),
	}
}

// Parse parses args and checks the required flags (as Parse), then starts
// the CPU profile -cpuprofile asks for. The caller defers the returned stop.
func (f ServeFlags) Parse(fs *flag.FlagSet, args []string, required ...string) (stop func() error, err error) {
	if err := Parse(fs, args, required...); err != nil {
		return nil, err
	}
	return StartCPUProfile(*f.cpuprofile)
}
