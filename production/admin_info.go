package production

import (
	"os"
	"runtime/debug"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/goangel/angel/internal/admin"
)

// generationEnv carries a process's upgrade generation to the process a
// binary upgrade starts (which inherits the environment): that one is one
// generation later.
const generationEnv = "GOANGEL_UPGRADE_GENERATION"

// upgradeGeneration returns the generation of this process (0: started
// fresh; the parent's plus one when started by a binary upgrade) and sets it
// in the environment for the next one.
func upgradeGeneration(child bool) int {
	gen := 0
	if child {
		if n, err := strconv.Atoi(os.Getenv(generationEnv)); err == nil && n >= 0 {
			gen = n
		}
		gen++
	}
	_ = os.Setenv(generationEnv, strconv.Itoa(gen))
	return gen
}

// buildInfo reads the running binary's version, VCS revision and Go
// version.
func buildInfo() admin.BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return admin.BuildInfo{Version: "unknown"}
	}
	b := admin.BuildInfo{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && b.Revision != "" {
		b.Revision += "-dirty"
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	return b
}

// infoCollector exposes what the process is: its build, start, last reload,
// upgrade generation and last upgrade, and each instance's last crash.
type infoCollector struct{ a *adminState }

var (
	descBuild       = prometheus.NewDesc("goangel_build_info", "The running binary: 1, with its version, VCS revision and Go version.", []string{"version", "revision", "goversion"}, nil)
	descStart       = prometheus.NewDesc("goangel_start_time_seconds", "When the runner started (Unix time).", nil, nil)
	descLastReload  = prometheus.NewDesc("goangel_last_reload_timestamp_seconds", "When the last rolling reload finished (Unix time; 0: none yet).", nil, nil)
	descGeneration  = prometheus.NewDesc("goangel_upgrade_generation", "Binary upgrades that led to this process (0: started fresh).", nil, nil)
	descLastUpgrade = prometheus.NewDesc("goangel_last_upgrade_timestamp_seconds", "When a binary upgrade started this process (Unix time; 0: started fresh).", nil, nil)
	descLastCrash   = prometheus.NewDesc("goangel_last_crash_timestamp_seconds", "When a crash last ended a life of the instance (Unix time; 0: none yet).", []string{instLabel}, nil)
)

func (infoCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBuild, descStart, descLastReload, descGeneration, descLastUpgrade, descLastCrash} {
		ch <- d
	}
}

// unixSeconds is t as Unix seconds, 0 for the zero time.
func unixSeconds(t interface {
	IsZero() bool
	UnixNano() int64
}) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

func (c infoCollector) Collect(ch chan<- prometheus.Metric) {
	snap := adminControl(c).Snapshot()
	b := snap.Build
	ch <- prometheus.MustNewConstMetric(descBuild, prometheus.GaugeValue, 1, b.Version, b.Revision, b.GoVersion)
	ch <- prometheus.MustNewConstMetric(descStart, prometheus.GaugeValue, unixSeconds(snap.StartedAt))
	ch <- prometheus.MustNewConstMetric(descLastReload, prometheus.GaugeValue, unixSeconds(snap.LastReload))
	ch <- prometheus.MustNewConstMetric(descGeneration, prometheus.GaugeValue, float64(snap.Generation))
	ch <- prometheus.MustNewConstMetric(descLastUpgrade, prometheus.GaugeValue, unixSeconds(snap.LastUpgrade))
	for _, in := range snap.Instances {
		ch <- prometheus.MustNewConstMetric(descLastCrash, prometheus.GaugeValue, unixSeconds(in.LastCrashTime), strconv.Itoa(in.Number))
	}
}
