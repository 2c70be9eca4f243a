// Package cli holds what every orderseal command line shares: swappable
// stdio, one-line errors with hints on stderr, exit codes, flag sets.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

// Exit codes of every orderseal command.
const (
	ExitOK      = 0
	ExitFailure = 1 // the command ran and failed
	ExitUsage   = 2 // the command line was wrong
)

// Stdio is where a command reads and writes; tests swap it.
type Stdio struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
}

// OS is the process's own stdio.
func OS() Stdio { return Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr} }

// Error is a failure with an optional hint for the user.
type Error struct {
	Err  error
	Hint string
	Code int
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// HintIs attaches hint to err when err is target (errors.Is), and returns
// any other err as it is.
func HintIs(err, target error, hint string) error {
	if errors.Is(err, target) {
		return WithHint(err, hint)
	}
	return err
}

// ErrReported wraps a failure whose message was already printed.
var ErrReported = errors.New("already reported")

// Usagef is a command-line mistake: exit code 2.
func Usagef(hint, format string, a ...any) error {
	return &Error{Err: fmt.Errorf(format, a...), Hint: hint, Code: ExitUsage}
}

// WithHint attaches a hint to err.
func WithHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err, Hint: hint, Code: ExitFailure}
}

// Report prints err as "prog: error: …" (one line) and an optional
// "prog: hint: …", and returns the exit code.
func Report(prog string, w io.Writer, err error) int {
	if err == nil {
		return ExitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK // usage was asked for and printed
	}
	code, hint := ExitFailure, ""
	var ce *Error
	if errors.As(err, &ce) {
		code, hint = ce.Code, ce.Hint
		if ce.Err == ErrReported {
			return code
		}
	}
	fmt.Fprintf(w, "%s: error: %s\n", prog, oneLine(err.Error()))
	if hint != "" {
		fmt.Fprintf(w, "%s: hint: %s\n", prog, oneLine(hint))
	}
	return code
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// FlagSet makes a flag set for one subcommand whose usage text lists the
// flags and the examples.
func FlagSet(prog, sub, synopsis string, stdio Stdio, examples ...string) *flag.FlagSet {
	fs := flag.NewFlagSet(prog+" "+sub, flag.ContinueOnError)
	fs.SetOutput(stdio.Err)
	fs.Usage = func() {
		fmt.Fprintf(stdio.Err, "usage: %s %s %s\n", prog, sub, synopsis)
		fs.PrintDefaults()
		if len(examples) > 0 {
			fmt.Fprintln(stdio.Err, "examples:")
			for _, e := range examples {
				fmt.Fprintf(stdio.Err, "  %s\n", e)
			}
		}
	}
	return fs
}

// Parse parses args, turns flag mistakes and stray arguments into usage
// errors, and then requires the named flags to be set (Require).
func Parse(fs *flag.FlagSet, args []string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &Error{Err: err, Code: ExitUsage, Hint: "run '" + fs.Name() + " -h' for usage"}
	}
	if err := ApplyEnv(fs); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return Usagef("run '"+fs.Name()+" -h' for usage", "unexpected argument %q", fs.Arg(0))
	}
	return Require(fs, required...)
}

// Require returns a usage error naming the first empty required flag.
func Require(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if f := fs.Lookup(n); f != nil && f.Value.String() == "" {
			return Usagef("run '"+fs.Name()+" -h' for usage", "-%s is required", n)
		}
	}
	return nil
}

// Command is one subcommand of a program.
type Command struct {
	Name    string
	Summary string
	Run     func(args []string) error
}

// Bound returns a maker of Commands whose run takes the program's
// context and stdio, so a command table names each subcommand in one line.
func Bound(ctx context.Context, stdio Stdio) func(name, summary string, run func(context.Context, []string, Stdio) error) Command {
	return func(name, summary string, run func(context.Context, []string, Stdio) error) Command {
		return Command{Name: name, Summary: summary, Run: func(a []string) error { return run(ctx, a, stdio) }}
	}
}

// Dispatch runs the subcommand named by args[0] and returns the exit code.
func Dispatch(prog string, stdio Stdio, args []string, cmds []Command) int {
	usage := func() {
		fmt.Fprintf(stdio.Err, "usage: %s <command> [flags]\ncommands:\n", prog)
		for _, c := range cmds {
			fmt.Fprintf(stdio.Err, "  %-12s %s\n", c.Name, c.Summary)
		}
		fmt.Fprintf(stdio.Err, "run '%s <command> -h' for a command's flags, '%s --version' for the build\n", prog, prog)
	}
	if len(args) == 0 {
		usage()
		return ExitUsage
	}
	if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage()
		return ExitOK
	}
	if isVersionArg(args[0]) && !slices.ContainsFunc(cmds, func(c Command) bool { return c.Name == args[0] }) {
		fmt.Fprintln(stdio.Out, Version(prog))
		return ExitOK
	}
	for _, c := range cmds {
		if c.Name == args[0] {
			return Report(prog, stdio.Err, c.Run(args[1:]))
		}
	}
	return Report(prog, stdio.Err, Usagef("run '"+prog+" -h' for the list", "unknown command %q", args[0]))
}

// ReadInput reads a file, or stdin when path is "-", up to max bytes.
func ReadInput(stdio Stdio, path string, max int64) ([]byte, error) {
	var r io.Reader = stdio.In
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("input is larger than %d bytes", max)
	}
	return data, nil
}

// Main runs a program's Main with the process's arguments and stdio, under a
// context cancelled by SIGINT or SIGTERM, and exits with its code.
func Main(run func(ctx context.Context, args []string, stdio Stdio) int) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], OS())
	stop()
	os.Exit(code)
}

// Strings is a repeatable string flag: each use appends one value.
type Strings []string

func (s *Strings) String() string     { return strings.Join(*s, " ") }
func (s *Strings) Set(v string) error { *s = append(*s, v); return nil }
