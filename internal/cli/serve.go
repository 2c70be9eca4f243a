package cli

import "flag"

// ListenUsage is the usual help text of -listen.
const ListenUsage = "address to listen on (port 0: any free port)"

// ServeFlags are the flags every daemon's "serve" shares: -listen,
// -addr-file and -cpuprofile.
type ServeFlags struct {
	Listen     *string // address to listen on
	AddrFile   *string // where to write the bound address once listening
	cpuprofile *string
}

// AddServeFlags adds -listen (defaulting to listen, with usage as its help
// text), -addr-file and -cpuprofile to fs.
func AddServeFlags(fs *flag.FlagSet, listen, usage string) ServeFlags {
	return ServeFlags{
		Listen:     fs.String("listen", listen, usage),
		AddrFile:   fs.String("addr-file", "", "write the bound address here once listening"),
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
