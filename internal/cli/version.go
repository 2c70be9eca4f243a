package cli

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Version says what build a binary is, from the build information the Go
// toolchain embeds: the module version, the VCS revision and time (with
// "+dirty" for a modified tree) and the Go version. It names no path.
func Version(prog string) string {
	info, ok := debug.ReadBuildInfo()
	return versionOf(prog, info, ok)
}

func versionOf(prog string, info *debug.BuildInfo, ok bool) string {
	if !ok || info == nil {
		return prog + " (no build information)"
	}
	v := info.Main.Version
	if v == "" {
		v = "(devel)"
	}
	var rev, at, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", prog, v)
	if rev != "" {
		fmt.Fprintf(&b, " revision %s%s", rev, dirty)
		if at != "" {
			fmt.Fprintf(&b, " (%s)", at)
		}
	}
	fmt.Fprintf(&b, " %s", info.GoVersion)
	return b.String()
}

// isVersionArg reports whether arg asks for the version.
func isVersionArg(arg string) bool {
	return arg == "--version" || arg == "-version" || arg == "version"
}
