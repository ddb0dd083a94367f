package bench

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/goangel/angel/internal/logging"
	"github.com/goangel/angel/logrotate"
)

// BenchmarkLogging compares, in one run, goangel's logger writing rotating
// files with the same logger writing a plain file (target: at most 1.25x),
// and the raw logrotate writer with a plain *os.File (target: at most
// 1.3x). LogWriters goroutines write at once.
func BenchmarkLogging(b *testing.B) {
	b.Run("line/plain-file", func(b *testing.B) {
		f := plainFile(b)
		l, err := logging.OpenWriter(LoggingFlags(b.TempDir()), true, nil, f)
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
		ParallelWrites(b, plainFile(b))
	})
	b.Run("write/logrotate", func(b *testing.B) {
		w, err := logrotate.Open(logrotate.Config{Path: filepath.Join(b.TempDir(), "app.log"), MaxSize: RotatingSize, MaxFiles: 4})
		if err != nil {
			b.Fatal(err)
		}
		defer w.Close()
		ParallelWrites(b, w)
	})
}

func plainFile(b *testing.B) *os.File {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "plain.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}
