package cli

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"runtime/debug"
	"strings"
	"testing"
)

// TestEnvFlags: every flag is also ORDERSEAL_<FLAG>; the command line wins;
// a bad value is one usage error naming the variable, not echoing it.
func TestEnvFlags(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    string // listen, check-every, metrics-listen, strings
		wantErr string
	}{
		{"defaults", nil, nil, "127.0.0.1:0 1h0m0s  ", ""},
		{"from the environment", map[string]string{"ORDERSEAL_LISTEN": ":9000", "ORDERSEAL_CHECK_EVERY": "5m", "ORDERSEAL_METRICS_LISTEN": "127.0.0.1:9100"},
			nil, ":9000 5m0s 127.0.0.1:9100 ", ""},
		{"the command line wins", map[string]string{"ORDERSEAL_LISTEN": ":9000"}, []string{"-listen", ":8000"}, ":8000 1h0m0s  ", ""},
		{"a repeatable flag on the command line is not doubled", map[string]string{"ORDERSEAL_ISSUER": "env"}, []string{"-issuer", "a", "-issuer", "b"},
			"127.0.0.1:0 1h0m0s  a b", ""},
		{"a repeatable flag from the environment", map[string]string{"ORDERSEAL_ISSUER": "env"}, nil, "127.0.0.1:0 1h0m0s  env", ""},
		{"an empty value sets empty", map[string]string{"ORDERSEAL_LISTEN": ""}, nil, " 1h0m0s  ", ""},
		{"a bad duration", map[string]string{"ORDERSEAL_CHECK_EVERY": "soon-4111111111111111"}, nil, "",
			"environment variable ORDERSEAL_CHECK_EVERY is not a valid -check-every"},
		{"a bad level", map[string]string{"ORDERSEAL_LOG_LEVEL": "loud"}, nil, "", "environment variable ORDERSEAL_LOG_LEVEL is not a valid -log-level"},
		{"other variables are not flags", map[string]string{"ORDERSEAL_NO_SUCH_FLAG": "x", "LISTEN": ":1"}, nil, "127.0.0.1:0 1h0m0s  ", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			LookupEnv = func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			defer func() { LookupEnv = os.LookupEnv }()
			var errb bytes.Buffer
			fs := FlagSet("prog", "serve", "", Stdio{Err: &errb})
			sf := AddServeFlags(fs, "127.0.0.1:0", "")
			var issuers Strings
			fs.Var(&issuers, "issuer", "")
			_, err := sf.Parse(fs, tt.args)
			if tt.wantErr != "" {
				var ce *Error
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.As(err, &ce) || ce.Code != ExitUsage {
					t.Fatalf("error %v, want a usage error with %q", err, tt.wantErr)
				}
				for _, v := range tt.env {
					if strings.Contains(err.Error(), v) || strings.Contains(ce.Hint, v) {
						t.Fatalf("the error echoes the value: %v (hint %s)", err, ce.Hint)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join([]string{*sf.Listen, sf.CheckEvery.String(), *sf.MetricsListen, issuers.String()}, " ")
			if got != tt.want {
				t.Fatalf("flags %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEnvName(t *testing.T) {
	for flag, want := range map[string]string{"listen": "ORDERSEAL_LISTEN", "metrics-listen": "ORDERSEAL_METRICS_LISTEN",
		"data-key": "ORDERSEAL_DATA_KEY", "addr-file": "ORDERSEAL_ADDR_FILE"} {
		if got := EnvName(flag); got != want {
			t.Errorf("EnvName(%s) = %s, want %s", flag, got, want)
		}
	}
}

// TestLogLevelFlag: -log-level takes slog's level names.
func TestLogLevelFlag(t *testing.T) {
	tests := []struct {
		arg     string
		want    string
		wantErr bool
	}{{"", "INFO", false}, {"debug", "DEBUG", false}, {"WARN", "WARN", false}, {"error", "ERROR", false}, {"info+2", "INFO+2", false}, {"loud", "", true}}
	for _, tt := range tests {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.SetOutput(&bytes.Buffer{})
		sf := AddServeFlags(fs, "", "")
		var args []string
		if tt.arg != "" {
			args = []string{"-log-level", tt.arg}
		}
		err := fs.Parse(args)
		if (err != nil) != tt.wantErr || err == nil && sf.LogLevel.String() != tt.want {
			t.Errorf("-log-level %q: %v %v, want %s (error %v)", tt.arg, sf.LogLevel, err, tt.want, tt.wantErr)
		}
	}
}

// TestDrainDelayRange: -drain-delay is between 0 and 10m.
func TestDrainDelayRange(t *testing.T) {
	for _, tt := range []struct {
		arg string
		ok  bool
	}{{"0", true}, {"5s", true}, {"10m", true}, {"-1s", false}, {"11m", false}} {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		sf := AddServeFlags(fs, "", "")
		stop, err := sf.Parse(fs, []string{"-drain-delay", tt.arg})
		if (err == nil) != tt.ok {
			t.Errorf("-drain-delay %s: %v", tt.arg, err)
		}
		if stop != nil {
			stop()
		}
	}
}

func TestVersionOf(t *testing.T) {
	info := func(v string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "orderseal", Version: v}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	tests := []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build information", nil, false, "merchant (no build information)"},
		{"a tagged module", info("v1.2.3"), true, "merchant v1.2.3 go1.26.0"},
		{"a devel build without VCS", info("(devel)"), true, "merchant (devel) go1.26.0"},
		{"an empty version", info(""), true, "merchant (devel) go1.26.0"},
		{"with its revision", info("(devel)", "vcs.revision", "0eaa7fa1", "vcs.time", "2030-01-02T03:04:05Z", "vcs.modified", "false"), true,
			"merchant (devel) revision 0eaa7fa1 (2030-01-02T03:04:05Z) go1.26.0"},
		{"a modified tree", info("v1.2.3", "vcs.revision", "0eaa7fa1", "vcs.modified", "true"), true, "merchant v1.2.3 revision 0eaa7fa1+dirty go1.26.0"},
	}
	for _, tt := range tests {
		if got := versionOf("merchant", tt.info, tt.ok); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestDispatchVersion: --version and -version print the build on stdout
// and exit 0, for every program (each dispatches through Dispatch).
func TestDispatchVersion(t *testing.T) {
	for _, arg := range []string{"--version", "-version", "version"} {
		var out, errb bytes.Buffer
		code := Dispatch("issuer", Stdio{Out: &out, Err: &errb}, []string{arg}, []Command{{Name: "serve", Run: func([]string) error { return nil }}})
		if code != ExitOK || !strings.HasPrefix(out.String(), "issuer ") || !strings.HasSuffix(out.String(), "\n") || errb.Len() != 0 {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", arg, code, out.String(), errb.String())
		}
		if want := Version("issuer") + "\n"; out.String() != want {
			t.Errorf("%s: %q, want %q", arg, out.String(), want)
		}
	}
	// A program with a command called version runs it.
	ran := false
	var out bytes.Buffer
	Dispatch("p", Stdio{Out: &out, Err: &out}, []string{"version"}, []Command{{Name: "version", Run: func([]string) error { ran = true; return nil }}})
	if !ran {
		t.Error("a command named version was not run")
	}
}
