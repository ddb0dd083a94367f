package workload

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/goangel/angel/internal/logging"
	"github.com/goangel/angel/logrotate"
)

// LogWriters is the number of goroutines writing at once in the logging
// benchmarks (as many instances of a runner logging together).
const LogWriters = 8

// LogLine is a typical formatted log line (an access-log entry), written
// as is by the raw-writer benchmarks.
var LogLine = []byte("2026-11-25T14:53:49.123Z INFO  request app=example bytes=24 duration=41.2µs instance=3 life=1 method=GET path=/greeting status=200\n")

// RotatingSize is the size limit of the rotating files in the benchmarks:
// a rotation every ~130k lines, so rotation itself is part of the cost,
// amortised as it is in production.
const RotatingSize = 16 << 20

func parallel(b *testing.B) {
	b.SetParallelism((LogWriters + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
}

// ParallelWrites measures w.Write(LogLine) from LogWriters goroutines.
func ParallelWrites(b *testing.B, w io.Writer) {
	parallel(b)
	b.SetBytes(int64(len(LogLine)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := w.Write(LogLine); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// ParallelLogLines measures one instance log line (app, instance and life
// fields plus a request's fields) through lg from LogWriters goroutines.
func ParallelLogLines(b *testing.B, lg *logrus.Logger) {
	parallel(b)
	entry := logging.Instance(lg, "example", 3, 1)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			entry.WithFields(logrus.Fields{"method": "GET", "path": "/greeting", "status": 200}).Info("request")
		}
	})
}

// LoggingFlags are the runner's flags for a file log in dir: console muted
// (--quiet), text format, daily rotation and RotatingSize.
func LoggingFlags(dir string) logging.Flags {
	return logging.Flags{
		LogLevel: "info", LogFormat: "text", LogRotateEvery: 24 * time.Hour,
		LogFile: filepath.Join(dir, "app.log"), LogMaxSize: RotatingSize, LogMaxFiles: 4,
	}
}

// PlainFile opens plain.log for appending in a fresh directory, closed when
// the benchmark ends: the baseline writer of the logging figures.
func PlainFile(b *testing.B) *os.File {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "plain.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

// RotatingFile opens goangel's rotating writer on app.log in a fresh
// directory (rotation every RotatingSize, 4 files kept), closed when the
// benchmark ends.
func RotatingFile(b *testing.B) *logrotate.Writer {
	w, err := logrotate.Open(logrotate.Config{Path: filepath.Join(b.TempDir(), "app.log"), MaxSize: RotatingSize, MaxFiles: 4})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close() })
	return w
}
