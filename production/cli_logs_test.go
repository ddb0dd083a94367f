package production_test

import (
	"context"
	"strings"
	"testing"

	"github.com/goangel/angel/production"
)

// A usage error is printed before the usage and again after it, the last
// thing on the screen; --help says that --respawn is on by default.
func TestUsageErrorLastAndRespawnDefault(t *testing.T) {
	out, errOut := &syncBuffer{}, &syncBuffer{}
	r := production.New("test", hello, production.WithOutput(out, errOut), production.WithLookupEnv(noEnv))
	if err := r.Run(context.Background(), []string{"--bogus"}); production.ExitCode(err) != production.ExitUsage {
		t.Fatalf("Run = %v, want a usage error", err)
	}
	e := strings.TrimRight(errOut.String(), "\n")
	if !strings.HasPrefix(e, "test: error: unknown flag --bogus") || !strings.HasSuffix(e, "\ntest: error: unknown flag --bogus") {
		t.Errorf("stderr does not start and end with the error:\n%s", e)
	}

	out = &syncBuffer{}
	r = production.New("test", hello, production.WithOutput(out, out), production.WithLookupEnv(noEnv))
	if err := r.Run(context.Background(), []string{"--help"}); err != nil {
		t.Fatal(err)
	}
	help := strings.Join(strings.Fields(out.String()), " ") // unwrapped
	if !strings.Contains(help, "--[no-]respawn Respawn crashed instances (on by default)") {
		t.Errorf("--help does not say that --respawn is on by default:\n%s", out)
	}
}
