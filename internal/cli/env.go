package cli

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// Every flag of every orderseal command can also be set from the
// environment, as ORDERSEAL_<FLAG>: the flag's name upper-cased, dashes as
// underscores (-metrics-listen is ORDERSEAL_METRICS_LISTEN), so a systemd
// unit or a container sets what it likes in its environment. A flag on the
// command line wins over its variable.

// EnvPrefix starts the name of every flag's environment variable.
const EnvPrefix = "ORDERSEAL_"

// LookupEnv reads the environment; tests may swap it.
var LookupEnv = os.LookupEnv

// EnvName is the environment variable of the flag called name.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// ParseFlags parses args into fs, then sets every flag the command line
// left unset from its environment variable, if set. A bad value in a
// variable is a usage error naming the variable; its value is not echoed
// (it may be a secret).
func ParseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	return ApplyEnv(fs)
}

// ApplyEnv sets every flag of fs not set on the command line from its
// environment variable, if set.
func ApplyEnv(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || set[f.Name] {
			return
		}
		name := EnvName(f.Name)
		v, ok := LookupEnv(name)
		if !ok {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			msg := serr.Error()
			if v != "" {
				msg = strings.ReplaceAll(msg, v, "…")
			}
			err = Usagef(fmt.Sprintf("unset %s, or give it a value -%s takes (run '%s -h')", name, f.Name, fs.Name()),
				"environment variable %s is not a valid -%s: %s", name, f.Name, msg)
		}
	})
	return err
}
