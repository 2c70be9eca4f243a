package cli

import (
	"flag"
	"log/slog"
	"time"
)

// DefaultStoreCheckEvery is how often a serving daemon quick-checks its
// database files (web.Health).
const DefaultStoreCheckEvery = time.Hour

// ListenUsage is the usual help text of -listen.
const ListenUsage = "address to listen on (port 0: any free port)"

// ServeFlags are the flags every daemon's "serve" shares: -listen,
// -addr-file, -check-every, -metrics-listen, -metrics-addr-file,
// -drain-delay, -log-level and -cpuprofile (package web's Daemon serves
// by them).
type ServeFlags struct {
	Listen          *string        // address to listen on
	AddrFile        *string        // where to write the bound address once listening
	CheckEvery      *time.Duration // how often the daemon's database files are quick-checked while it serves
	MetricsListen   *string        // where /metrics is served, off the API; "": nowhere
	MetricsAddrFile *string        // where to write the metrics listener's bound address
	DrainDelay      *time.Duration // how long the daemon answers not ready before it stops serving
	LogLevel        *slog.Level    // the least level logged
	cpuprofile      *string
}

// AddServeFlags adds the ServeFlags to fs, -listen defaulting to listen,
// with usage as its help text.
func AddServeFlags(fs *flag.FlagSet, listen, usage string) ServeFlags {
	f := ServeFlags{
		Listen:          fs.String("listen", listen, usage),
		AddrFile:        fs.String("addr-file", "", "write the bound address here once listening"),
		CheckEvery:      fs.Duration("check-every", DefaultStoreCheckEvery, "quick-check the database files this often while serving (0: only at start)"),
		MetricsListen:   fs.String("metrics-listen", "", "serve Prometheus /metrics on this address, apart from the API (empty: no metrics)"),
		MetricsAddrFile: fs.String("metrics-addr-file", "", "write the metrics listener's bound address here once listening"),
		DrainDelay:      fs.Duration("drain-delay", 0, "on SIGTERM, answer /readyz 503 this long before no longer taking requests"),
		LogLevel:        new(slog.Level),
		cpuprofile:      CPUProfileFlag(fs),
	}
	fs.TextVar(f.LogLevel, "log-level", slog.LevelInfo, "least level logged: debug, info, warn or error")
	return f
}

// Parse parses args and checks the required flags (as Parse), then starts
// the CPU profile -cpuprofile asks for. The caller defers the returned stop.
func (f ServeFlags) Parse(fs *flag.FlagSet, args []string, required ...string) (stop func() error, err error) {
	if err := Parse(fs, args, required...); err != nil {
		return nil, err
	}
	if *f.DrainDelay < 0 || *f.DrainDelay > 10*time.Minute {
		return nil, Usagef("use -drain-delay 5s", "-drain-delay %s is out of range (0 to 10m)", *f.DrainDelay)
	}
	return StartCPUProfile(*f.cpuprofile)
}
