// Package deploy holds the example deployment files (systemd units) and the
// test that keeps them true to the binaries: every flag a unit passes, on
// its command line or as ORDERSEAL_<FLAG>, is a flag of the command it runs.
package deploy

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"orderseal/carrier"
	"orderseal/internal/cli"
	"orderseal/issuer"
	"orderseal/merchant"
	"orderseal/vault"
)

// unit is a parsed systemd unit: section → key → values, in order.
type unit map[string]map[string][]string

// parseUnit reads a unit file: comments, sections, key=value lines and
// backslash continuations.
func parseUnit(t *testing.T, text string) unit {
	t.Helper()
	u := unit{}
	section := ""
	text = strings.ReplaceAll(text, "\\\n", " ")
	for n, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("line %d: %q is no key=value in a section", n+1, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// flagNames runs the command's -h and reads its flags from the usage.
func flagNames(t *testing.T, args []string) []string {
	t.Helper()
	var out, errb bytes.Buffer
	stdio := cli.Stdio{In: strings.NewReader(""), Out: &out, Err: &errb}
	ctx := context.Background()
	var code int
	argv := append(slices.Clone(args[1:]), "-h")
	switch args[0] {
	case "merchant":
		code = merchant.Main(ctx, argv, stdio, cli.Command{Name: "vault",
			Run: func(a []string) error { return vault.Command(ctx, "merchant", a, stdio) }})
	case "issuer":
		code = issuer.Main(ctx, argv, stdio)
	case "carrier":
		code = carrier.Main(ctx, argv, stdio)
	default:
		t.Fatalf("a unit runs %q, no orderseal daemon", args[0])
	}
	if code != cli.ExitOK {
		t.Fatalf("%v -h: exit %d\n%s", args, code, errb.String())
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(errb.String(), -1) {
		names = append(names, m[1])
	}
	if len(names) < 5 {
		t.Fatalf("%v -h lists %d flags; the check would prove nothing:\n%s", args, len(names), errb.String())
	}
	return names
}

// hardening is what every unit sets, with the value it must have.
var hardening = map[string]string{
	"NoNewPrivileges":         "yes",
	"ProtectSystem":           "strict",
	"ProtectHome":             "yes",
	"PrivateTmp":              "yes",
	"PrivateDevices":          "yes",
	"DynamicUser":             "yes",
	"StateDirectory":          "%N",
	"CapabilityBoundingSet":   "",
	"RestrictSUIDSGID":        "yes",
	"MemoryDenyWriteExecute":  "yes",
	"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
	"UMask":                   "0077",
}

func TestSystemdUnits(t *testing.T) {
	files, err := filepath.Glob("systemd/*.service")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"systemd/orderseal-carrier.service", "systemd/orderseal-issuer.service",
		"systemd/orderseal-merchant.service", "systemd/orderseal-vault.service"}
	if !slices.Equal(files, want) {
		t.Fatalf("units %v, want one per daemon %v", files, want)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			u := parseUnit(t, string(b))
			svc := u["Service"]
			if svc == nil || u["Unit"] == nil || u["Install"] == nil {
				t.Fatalf("sections %v, want Unit, Service and Install", u)
			}
			for k, v := range hardening {
				if got := svc[k]; len(got) != 1 || got[0] != v {
					t.Errorf("%s=%v, want %q", k, got, v)
				}
			}
			if len(svc["ExecStart"]) != 1 {
				t.Fatalf("ExecStart %v", svc["ExecStart"])
			}
			fields := strings.Fields(svc["ExecStart"][0])
			if !strings.HasPrefix(fields[0], "/") {
				t.Fatalf("ExecStart runs %q: give the binary's absolute path", fields[0])
			}
			cmd := []string{filepath.Base(fields[0])}
			i := 1
			for ; i < len(fields) && !strings.HasPrefix(fields[i], "-"); i++ {
				cmd = append(cmd, fields[i])
			}
			if cmd[len(cmd)-1] != "serve" {
				t.Fatalf("ExecStart runs %v, not a serve command", cmd)
			}
			known := flagNames(t, cmd)
			used := map[string]bool{}
			for ; i < len(fields); i++ {
				if !strings.HasPrefix(fields[i], "-") {
					continue // a flag's value
				}
				name, _, _ := strings.Cut(strings.TrimLeft(fields[i], "-"), "=")
				if !slices.Contains(known, name) {
					t.Errorf("ExecStart passes -%s, no flag of %v (it has %v)", name, cmd, known)
				}
				used[name] = true
			}
			for _, env := range svc["Environment"] {
				k, _, ok := strings.Cut(env, "=")
				if !ok || !strings.HasPrefix(k, cli.EnvPrefix) {
					t.Errorf("Environment=%s is no ORDERSEAL_<FLAG>=value", env)
					continue
				}
				found := ""
				for _, n := range known {
					if cli.EnvName(n) == k {
						found = n
					}
				}
				switch {
				case found == "":
					t.Errorf("Environment %s names no flag of %v", k, cmd)
				case used[found]:
					t.Errorf("%s and ExecStart both set -%s", k, found)
				}
				used[found] = true
			}
			for _, need := range []string{"key", "listen", "metrics-listen", "drain-delay"} {
				if !used[need] {
					t.Errorf("the unit sets no -%s", need)
				}
			}
			for _, cred := range svc["LoadCredential"] {
				name, src, _ := strings.Cut(cred, ":")
				if !strings.Contains(svc["ExecStart"][0], "%d/"+name) || !strings.HasPrefix(src, "/etc/orderseal/") {
					t.Errorf("LoadCredential=%s: not passed as %%d/%s, or not from /etc/orderseal", cred, name)
				}
			}
		})
	}
}
