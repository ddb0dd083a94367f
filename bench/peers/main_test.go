package peers

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The request/reply benchmarks across processes run their responder
	// in this very binary, started again (see startResponder).
	if kind := os.Getenv(responderEnv); kind != "" {
		os.Exit(runResponder(kind, os.Getenv(responderURLEnv)))
	}
	goleak.VerifyTestMain(m)
}
