package bench

import (
	"os"
	"testing"

	"github.com/goangel/angel/bench/internal/workload"
	"github.com/goangel/angel/internal/logging"
)

// BenchmarkLogging compares, in one run, goangel's logger writing rotating
// files with the same logger writing a plain file (target: at most 1.25x),
// and the raw logrotate writer with a plain *os.File (target: at most
// 1.3x). LogWriters goroutines write at once.
func BenchmarkLogging(b *testing.B) {
	b.Run("line/plain-file", func(b *testing.B) {
		l, err := logging.OpenWriter(workload.LoggingFlags(b.TempDir()), true, nil, workload.PlainFile(b))
		if err != nil {
			b.Fatal(err)
		}
		workload.ParallelLogLines(b, l.Logger)
	})
	b.Run("line/logrotate", func(b *testing.B) {
		l, err := logging.Open(workload.LoggingFlags(b.TempDir()), true, nil, os.Stderr)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		workload.ParallelLogLines(b, l.Logger)
	})
	b.Run("write/plain-file", func(b *testing.B) {
		workload.ParallelWrites(b, workload.PlainFile(b))
	})
	b.Run("write/logrotate", func(b *testing.B) {
		workload.ParallelWrites(b, workload.RotatingFile(b))
	})
}
