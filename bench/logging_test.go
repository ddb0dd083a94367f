package bench

import (
	"os"
	"testing"

	"github.com/goangel/angel/internal/logging"
)

// BenchmarkLogging compares, in one run, goangel's logger writing rotating
// files with the same logger writing a plain file (target: at most 1.25x),
// and the raw logrotate writer with a plain *os.File (target: at most
// 1.3x). LogWriters goroutines write at once.
func BenchmarkLogging(b *testing.B) {
	b.Run("line/plain-file", func(b *testing.B) {
		l, err := logging.OpenWriter(LoggingFlags(b.TempDir()), true, nil, PlainFile(b))
		if err != nil {
			b.Fatal(err)
		}
		ParallelLogLines(b, l.Logger)
	})
	b.Run("line/logrotate", func(b *testing.B) {
		l, err := logging.Open(LoggingFlags(b.TempDir()), true, nil, os.Stderr)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		ParallelLogLines(b, l.Logger)
	})
	b.Run("write/plain-file", func(b *testing.B) {
		ParallelWrites(b, PlainFile(b))
	})
	b.Run("write/logrotate", func(b *testing.B) {
		ParallelWrites(b, RotatingFile(b))
	})
}
