package workload

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"
)

// ProfileFromEnv starts a CPU profile when BENCH_CPUPROFILE=FILE:SECONDS is
// set (bench/cmd's apps: profile a server under outside load), written to
// FILE once SECONDS have passed. It does nothing otherwise.
func ProfileFromEnv() {
	spec := os.Getenv("BENCH_CPUPROFILE")
	if spec == "" {
		return
	}
	path, secs, ok := strings.Cut(spec, ":")
	var d time.Duration
	if ok {
		var n int
		if _, err := fmt.Sscan(secs, &n); err == nil {
			d = time.Duration(n) * time.Second
		}
	}
	if d <= 0 {
		fmt.Fprintln(os.Stderr, "BENCH_CPUPROFILE: want FILE:SECONDS, e.g. /tmp/cpu.out:5")
		os.Exit(64)
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "BENCH_CPUPROFILE:", err)
		os.Exit(1)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "BENCH_CPUPROFILE:", err)
		os.Exit(1)
	}
	time.AfterFunc(d, func() {
		pprof.StopCPUProfile()
		f.Close()
	})
}
