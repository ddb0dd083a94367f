package faults

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/goangel/angel/internal/faultapp"
	"github.com/goangel/angel/production"
)

// TestMain runs the suite, or, when FAULTS_RUN_APP=1, this test binary as
// the fault app itself (as cmd/faultapp does), for the process tests.
func TestMain(m *testing.M) {
	if os.Getenv("FAULTS_RUN_APP") == "1" {
		os.Args = append(os.Args[:1], strings.Fields(os.Getenv("FAULTS_APP_ARGS"))...)
		a := faultapp.New()
		a.HangConfigure = os.Getenv("FAULTAPP_HANG_CONFIGURE") == "1"
		a.HangHook = os.Getenv("FAULTAPP_HANG_HOOK") == "1"
		configure := a.Configure
		// A binary upgrade starts the new process from the old one, with
		// the old one's environment: the new process finds its parent's
		// pid in FAULTAPP_PID.
		upgraded := os.Getenv("FAULTAPP_PID") == strconv.Itoa(os.Getppid())
		_ = os.Setenv("FAULTAPP_PID", strconv.Itoa(os.Getpid()))
		if b := os.Getenv("FAULTAPP_UPGRADE_BREAK"); b != "" && upgraded {
			// The new process of a binary upgrade cannot start: its
			// configure fails, or hangs until the old process kills it.
			configure = func(*production.App) error {
				if b == "hang" {
					select {}
				}
				return errors.New("faultapp: the new binary cannot start")
			}
		}
		production.New("faultapp", configure).Main()
		return
	}
	goleak.VerifyTestMain(m)
}
