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

// Parse parses args (as Parse), starts the CPU profile -cpuprofile asks for,
// and then checks the required flags (as Require). The caller defers the
// returned stop; on an error the profile is already stopped.
func (f ServeFlags) Parse(fs *flag.FlagSet, args []string, required ...string) (stop func() error, err error) {
	if err := Parse(fs, args); err != nil {
		return nil, err
	}
	stop, err = StartCPUProfile(*f.cpuprofile)
	if err != nil {
		return nil, err
	}
	if err := Require(fs, required...); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}
