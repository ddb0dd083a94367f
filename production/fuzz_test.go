package production

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzCommandLine: any argument list (the fuzz input split at newlines)
// gives a valid Config, the help, or a usage error (exit code 64) that says
// what was wrong; never a panic. Environment variables are fuzzed too: the
// second input is "NAME=value" lines. The seeds (f.Add and
// testdata/fuzz/FuzzCommandLine) run as a normal test; .ci/run explores for a
// few seconds.
func FuzzCommandLine(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""},
		{"-j\n4\n-p\n0", ""},
		{"--help", ""},
		{"-h", ""},
		{"--no-respawn\n--use-zone\n--quiet", ""},
		{"-j\n0", ""},
		{"-j\n-1\n-p\n70000", ""},
		{"--port=abc", ""},
		{"--drain-timeout\n-1s\n--read-timeout\n-5s\n--write-timeout\n1h", ""},
		{"--request-timeout\n100ms\n--max-connections\n-3", ""},
		{"--ssl", ""},
		{"--http2\n--certificate-file\n/nonexistent\n--key-file\n/nonexistent", ""},
		{"--pubsub-url\nhttp://x", ""},
		{"--log-level\nloud\n--log-format\nxml", ""},
		{"--log-file-pattern\napp.%Y.log", ""},
		{"--bogus\n--", ""},
		{"--\n-j\n2", ""},
		{"-j4", ""},
		{"-a\n", ""},
		{"--restart-window\n0s", ""},
		{"", "TEST_PORT=abc"},
		{"", "TEST_CONCURRENCY=0\nTEST_RESPAWN=perhaps"},
		{"-p\n1", "TEST_PORT=2\nTEST_READ_TIMEOUT=-1s"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, argLines, envLines string) {
		var args []string
		if argLines != "" {
			args = strings.Split(argLines, "\n")
		}
		env := map[string]string{}
		for l := range strings.SplitSeq(envLines, "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				env[k] = v
			}
		}
		r := New("test", func(*App) error { return nil },
			WithOutput(io.Discard, io.Discard),
			WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
		cfg, done, err := r.parse(args)
		switch {
		case err != nil:
			if !errors.Is(err, ErrUsage) || ExitCode(err) != ExitUsage {
				t.Fatalf("parse(%q) = %v (exit %d), want a usage error, exit 64", args, err, ExitCode(err))
			}
			if strings.TrimSpace(strings.TrimPrefix(err.Error(), ErrUsage.Error()+":")) == "" {
				t.Fatalf("parse(%q): a usage error that says nothing: %q", args, err)
			}
		case done:
			if cfg != nil {
				t.Fatalf("parse(%q): help printed and a Config returned", args)
			}
		default:
			if cfg == nil {
				t.Fatalf("parse(%q): no Config and no error", args)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("parse(%q) gave a Config that does not validate: %v", args, err)
			}
			if cfg.Concurrency < 1 || cfg.Port < 0 || cfg.Port > 65535 || cfg.MaxConnections < 0 ||
				cfg.ReadTimeout < 0 || cfg.WriteTimeout < 0 || cfg.RequestTimeout < 0 || cfg.DrainTimeout < 0 {
				t.Fatalf("parse(%q) gave an out-of-range Config: %+v", args, cfg)
			}
		}
	})
}
