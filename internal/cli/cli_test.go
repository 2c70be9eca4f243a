package cli_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"orderseal/internal/cli"
)

type ctxKey struct{}

// TestBoundDispatch: a bound command gets the program's context, stdio and
// its own arguments; its error is the exit code and the message.
func TestBoundDispatch(t *testing.T) {
	ctx := context.WithValue(context.Background(), ctxKey{}, "prog ctx")
	var out, errOut bytes.Buffer
	stdio := cli.Stdio{Out: &out, Err: &errOut}
	command := cli.Bound(ctx, stdio)
	var got []string
	cmds := []cli.Command{
		command("echo", "print the arguments", func(ctx context.Context, a []string, s cli.Stdio) error {
			got = append([]string{ctx.Value(ctxKey{}).(string)}, a...)
			_, err := s.Out.Write([]byte(strings.Join(a, " ")))
			return err
		}),
		command("fail", "always fails", func(context.Context, []string, cli.Stdio) error { return errors.New("it failed") }),
	}
	if code := cli.Dispatch("prog", stdio, []string{"echo", "a", "b"}, cmds); code != 0 {
		t.Fatalf("echo exited %d: %s", code, errOut.String())
	}
	if strings.Join(got, "|") != "prog ctx|a|b" || out.String() != "a b" {
		t.Fatalf("run saw %q, printed %q", got, out.String())
	}
	if code := cli.Dispatch("prog", stdio, []string{"fail"}, cmds); code == 0 || !strings.Contains(errOut.String(), "it failed") {
		t.Fatalf("fail exited %d with %q", code, errOut.String())
	}
}
