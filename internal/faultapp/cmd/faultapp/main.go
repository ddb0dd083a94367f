// Command faultapp runs goangel's fault app (package faultapp) under the
// production runner, for the fault suite's process tests and for trying
// faults by hand:
//
//	go run ./internal/faultapp/cmd/faultapp -j 4 -p 3000
//	curl localhost:3000/crash/go-panic
//
// FAULTAPP_HANG_CONFIGURE=1 makes every respawn's configure hang;
// FAULTAPP_HANG_HOOK=1 registers an OnShutdown hook that ignores its context.
package main

import (
	"os"

	"github.com/goangel/angel/internal/faultapp"
	"github.com/goangel/angel/production"
)

func main() {
	a := faultapp.New()
	a.HangConfigure = os.Getenv("FAULTAPP_HANG_CONFIGURE") == "1"
	a.HangHook = os.Getenv("FAULTAPP_HANG_HOOK") == "1"
	production.New("faultapp", a.Configure).Main()
}
