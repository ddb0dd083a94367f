package production_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goangel/angel/internal/testutil"
	"github.com/goangel/angel/production"
)

// writePair writes a self-signed certificate for localhost and its key as
// PEM files and returns their paths.
var writePair = testutil.WriteSelfSigned

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestHelp(t *testing.T) {
	out, errOut := &syncBuffer{}, &syncBuffer{}
	r := production.New("test", hello, production.WithOutput(out, errOut), production.WithLookupEnv(noEnv))
	if err := r.Run(context.Background(), []string{"--help"}); err != nil {
		t.Fatalf("--help: Run = %v, want nil", err)
	}
	help := out.String()
	for _, want := range []string{
		"goangel production runner: test", // banner
		"Usage: test [flags]",
		"Runs `test` in production", // one-line description
		"-h, --help", "--[no-]respawn", "--use-zone", "--quiet", "--ssl", "--http2",
		"-a, --address=\"127.0.0.1\"", "-j, --concurrency=", "-p, --port=3000",
		"--certificate-file=PATH", "--certificate-password=PASSWORD", "--key-file=PATH", "--key-password=PASSWORD",
		"--max-restarts=10", "--restart-window=1m", "--drain-timeout=5s",
		"--pubsub-url=nats://HOST:PORT", "--pubsub-token", "--pubsub-user", "--pubsub-password",
		"--pubsub-creds", "--pubsub-ca-file", "--pubsub-cert-file", "--pubsub-key-file", "--pubsub-retain-replicas=N",
		"--log-level", "--access-log",
		"($TEST_PORT)", "($TEST_RESPAWN)",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	if errOut.String() != "" {
		t.Errorf("--help wrote to stderr: %s", errOut)
	}
	if t.Failed() {
		t.Log(help)
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	cert, key := writePair(t, dir, "a")
	_, otherKey := writePair(t, dir, "b")
	junk := filepath.Join(dir, "junk.key")
	if err := os.WriteFile(junk, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown flag", []string{"--bogus"}, nil, "unknown flag --bogus"},
		{"zero instances", []string{"-j", "0"}, nil, "-j/--concurrency must be at least 1, got 0"},
		{"not a number", []string{"-j", "many"}, nil, "--concurrency"},
		{"port out of range", []string{"-p", "70000"}, nil, "-p/--port must be in 0..65535"},
		{"bad duration", []string{"--restart-window", "soon"}, nil, "--restart-window"},
		{"zero window", []string{"--restart-window", "0s"}, nil, "--restart-window must be positive"},
		{"zero stable after", []string{"--restart-stable-after", "0s"}, nil, "--restart-stable-after must be positive"},
		{"bad log level", []string{"--log-level", "loud"}, nil, "--log-level"},
		{"negative log max files", []string{"--log-file", filepath.Join(dir, "app.log"), "--log-max-files=-1"}, nil, "--log-max-files -1: must not be negative"},
		{"log pattern without file", []string{"--log-file-pattern", "app.%Y.log"}, nil, "--log-file-pattern needs --log-file"},
		{"bad pubsub url", []string{"--pubsub-url", "http://x"}, nil, "--pubsub-url must be a nats:// or tls:// URL"},
		{"bad pubsub retain replicas", []string{"--pubsub-retain-replicas", "7"}, nil, "--pubsub-retain-replicas must be 0 (min(3, the cluster's size)) or 1 to 5"},
		{"bad pubsub metrics topic", []string{"--pubsub-metrics-topics", "orders,a..b"}, nil, `--pubsub-metrics-topics: "a..b" is not a topic or pattern`},
		{"bad env pubsub metrics topic", nil, map[string]string{"TEST_PUBSUB_METRICS_TOPICS": "orders.>,>.x"}, `--pubsub-metrics-topics: ">.x" is not a topic or pattern`},
		{"ssl without files", []string{"--ssl"}, nil, "--ssl needs --certificate-file and --key-file"},
		{"ssl without key", []string{"--ssl", "--http2", "--certificate-file", cert}, nil, "--ssl needs --key-file"},
		{"http2 files without ssl", []string{"--http2", "--certificate-file", cert, "--key-file", key}, nil, "--certificate-file, --key-file need(s) --ssl: --http2 without --ssl serves cleartext HTTP/2 (h2c)"},
		{"missing certificate", []string{"--ssl", "--certificate-file", filepath.Join(dir, "none.crt"), "--key-file", key}, nil, "--certificate-file: open"},
		{"not PEM", []string{"--ssl", "--certificate-file", cert, "--key-file", junk}, nil, "--key-file " + junk + ": no PEM data found"},
		{"mismatched pair", []string{"--ssl", "--certificate-file", cert, "--key-file", otherKey}, nil, "private key does not match public key"},
		{"bad env value", nil, map[string]string{"TEST_PORT": "abc"}, `environment variable TEST_PORT="abc"`},
		{"bad env bool", nil, map[string]string{"TEST_RESPAWN": "perhaps"}, "TEST_RESPAWN"},
		{"env validated too", nil, map[string]string{"TEST_CONCURRENCY": "0"}, "-j/--concurrency must be at least 1, got 0 (set by the environment variable TEST_CONCURRENCY)"},
		{"env named once per line", nil, map[string]string{"TEST_RESTART_BACKOFF": "2s", "TEST_RESTART_MAX_BACKOFF": "1s"}, "--restart-max-backoff (1s) must not be shorter than --restart-backoff (2s) (set by the environment variable TEST_RESTART_BACKOFF, TEST_RESTART_MAX_BACKOFF)"},
		{"key password without ssl", []string{"--key-password", "secret"}, nil, "--key-password need(s) --ssl"},
		{"certificate password without ssl", []string{"--certificate-password", "secret"}, nil, "--certificate-password need(s) --ssl"},
		{"pubsub token without url", []string{"--pubsub-token", "t"}, nil, "--pubsub-token need(s) --pubsub-url"},
		{"pubsub credentials without url", []string{"--pubsub-user", "u", "--pubsub-password", "p", "--pubsub-creds", "c", "--pubsub-ca-file", "ca", "--pubsub-cert-file", "c", "--pubsub-key-file", "k"}, nil,
			"--pubsub-user, --pubsub-password, --pubsub-creds, --pubsub-ca-file, --pubsub-cert-file, --pubsub-key-file need(s) --pubsub-url"},
		{"env pubsub password without url", nil, map[string]string{"TEST_PUBSUB_PASSWORD": "p"}, "--pubsub-password need(s) --pubsub-url: without it messages stay in this process's memory and NATS is not used (set by the environment variable TEST_PUBSUB_PASSWORD)"},
		{"bad pubsub namespace", []string{"--pubsub-url", "nats://127.0.0.1:1", "--pubsub-namespace", "a..b"}, nil, `--pubsub-namespace "a..b" cannot prefix NATS subjects`},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut := &syncBuffer{}, &syncBuffer{}
			r := production.New("test", hello, production.WithOutput(out, errOut), production.WithLookupEnv(envOf(c.env)))
			err := r.Run(context.Background(), c.args)
			if production.ExitCode(err) != production.ExitUsage || !errors.Is(err, production.ErrUsage) {
				t.Fatalf("Run = %v (exit %d), want a usage error, exit 64", err, production.ExitCode(err))
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(errOut.String(), c.want) {
				t.Errorf("error %q / stderr does not say %q:\n%s", err, c.want, errOut)
			}
			if !strings.Contains(errOut.String(), "Usage: test [flags]") || !strings.Contains(errOut.String(), "--concurrency") {
				t.Errorf("stderr lacks the usage:\n%s", errOut)
			}
			if out.String() != "" {
				t.Errorf("a usage error wrote to stdout: %s", out)
			}
		})
	}
	t.Run("valid pair passes validation", func(t *testing.T) {
		// It serves (TestSSL checks how); here only that it starts.
		startRunner(t, hello, []string{"--ssl", "--certificate-file", cert, "--key-file", key})
	})
}

func TestEnvironment(t *testing.T) {
	env := map[string]string{"TEST_CONCURRENCY": "3", "TEST_PORT": "0", "TEST_ADDRESS": "127.0.0.1", "TEST_RESPAWN": "false"}
	h := startRunner(t, hello, nil, production.WithLookupEnv(envOf(env)))
	if n := len(h.run.Stats().Instances); n != 3 {
		t.Errorf("TEST_CONCURRENCY=3: %d instances", n)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	// The command line wins over the environment; a custom prefix.
	env = map[string]string{"SHOP_CONCURRENCY": "3", "TEST_CONCURRENCY": "5"}
	h = startRunner(t, hello, []string{"-j", "2"}, production.WithLookupEnv(envOf(env)), production.WithEnvPrefix("SHOP"))
	if n := len(h.run.Stats().Instances); n != 2 {
		t.Errorf("-j 2 over SHOP_CONCURRENCY=3: %d instances", n)
	}
	env = map[string]string{"SHOP_CONCURRENCY": "3"}
	h = startRunner(t, hello, nil, production.WithLookupEnv(envOf(env)), production.WithEnvPrefix("SHOP"))
	if n := len(h.run.Stats().Instances); n != 3 {
		t.Errorf("SHOP_CONCURRENCY=3: %d instances", n)
	}
}

func TestStartupErrors(t *testing.T) {
	t.Run("log file", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "missing-dir", "sub", "app.log")
		if err := os.WriteFile(filepath.Join(filepath.Dir(filepath.Dir(bad))), []byte("a file, not a dir"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := runToEnd(t, hello, []string{"--log-file", bad})
		if production.ExitCode(err) != production.ExitStartup || !errors.Is(err, production.ErrStartup) || !strings.Contains(err.Error(), bad) {
			t.Fatalf("Run = %v, want a start-up error naming %s", err, bad)
		}
	})
	t.Run("nats unreachable", func(t *testing.T) {
		_, err := runToEnd(t, hello, []string{"--pubsub-url", "nats://127.0.0.1:1"})
		if production.ExitCode(err) != production.ExitStartup || !strings.Contains(err.Error(), "pub/sub") {
			t.Fatalf("Run = %v, want a start-up error about pub/sub", err)
		}
	})
}

func TestQuiet(t *testing.T) {
	h := startRunner(t, hello, []string{"-j", "2", "--quiet"})
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if out := h.run.Log(); out != "" {
		t.Errorf("--quiet printed:\n%s", out)
	}
}

func TestPolicyDefaultsInHelp(t *testing.T) {
	out := &syncBuffer{}
	r := production.New("test", hello, production.WithOutput(out, out), production.WithLookupEnv(noEnv),
		production.WithRestartPolicy(production.RestartPolicy{MaxRestarts: 3, Window: 30 * time.Second}))
	if err := r.Run(context.Background(), []string{"--help"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--max-restarts=3", "--restart-window=30s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

// closedStdout is a stdout whose reader went away (--help | head), as the
// os package reports it.
type closedStdout struct{}

func (closedStdout) Write([]byte) (int, error) {
	return 0, &os.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EPIPE}
}

// TestHelpIntoClosedPipe: --help into a pipe whose reader has gone (| head)
// is no error: nothing on stderr, no usage printed again, exit 0.
func TestHelpIntoClosedPipe(t *testing.T) {
	errOut := &syncBuffer{}
	r := production.New("test", hello, production.WithOutput(closedStdout{}, errOut), production.WithLookupEnv(noEnv))
	if err := r.Run(context.Background(), []string{"--help"}); err != nil {
		t.Errorf("Run(--help) into a closed pipe = %v (exit %d), want nil", err, production.ExitCode(err))
	}
	if errOut.String() != "" {
		t.Errorf("stderr:\n%s\nwant nothing", errOut)
	}
}

// TestStartupErrorNamesTheEnvironment: an error found after parsing (here
// the log file cannot be created) names the environment variable whose
// value it quotes.
func TestStartupErrorNamesTheEnvironment(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(file, "app.log") // a directory that is a file
	out := &syncBuffer{}
	r := production.New("test", hello, production.WithOutput(out, out),
		production.WithLookupEnv(envOf(map[string]string{"TEST_LOG_FILE": bad})))
	err := r.Run(context.Background(), []string{"-p", "0"})
	if production.ExitCode(err) != production.ExitStartup {
		t.Fatalf("Run = %v (exit %d), want exit 78", err, production.ExitCode(err))
	}
	if want := "(set by the environment variable TEST_LOG_FILE)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}
