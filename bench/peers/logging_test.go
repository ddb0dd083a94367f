package peers

import (
	"io"
	"path/filepath"
	"reflect"
	"testing"
	"time"
	"unsafe"

	rotatelogs "github.com/lestrrat-go/file-rotatelogs"
	"gopkg.in/natefinch/lumberjack.v2"

	bench "github.com/goangel/angel/bench/internal/workload"
	"github.com/goangel/angel/internal/logging"
)

// BenchmarkLoggingPeers runs the logging workloads of package bench
// through file-rotatelogs and lumberjack used directly, beside goangel's
// logrotate and a plain *os.File, in one run: "write" is the raw writer,
// "line" a log line through goangel's logger set-up (same formatter, --quiet)
// with that writer as its file.
func BenchmarkLoggingPeers(b *testing.B) {
	writers := []struct {
		name string
		open func(b *testing.B) io.Writer
	}{
		{"plain-file", func(b *testing.B) io.Writer { return bench.PlainFile(b) }},
		{"logrotate", func(b *testing.B) io.Writer { return bench.RotatingFile(b) }},
		{"file-rotatelogs", func(b *testing.B) io.Writer {
			// No rotation count: with one, #58 deletes the file being
			// written at the tenth rotation.
			rl, err := rotatelogs.New(filepath.Join(b.TempDir(), "app.%Y%m%d.log"),
				rotatelogs.WithRotationTime(24*time.Hour), rotatelogs.WithRotationSize(bench.RotatingSize))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { rl.Close() })
			return rl
		}},
		{"lumberjack", func(b *testing.B) io.Writer {
			lj := &lumberjack.Logger{Filename: filepath.Join(b.TempDir(), "app.log"), MaxSize: bench.RotatingSize >> 20, MaxBackups: 4}
			b.Cleanup(func() { lj.Close(); stopMill(lj) })
			return lj
		}},
	}
	for _, w := range writers {
		b.Run("write/"+w.name, func(b *testing.B) { bench.ParallelWrites(b, w.open(b)) })
	}
	for _, w := range writers {
		b.Run("line/"+w.name, func(b *testing.B) {
			l, err := logging.OpenWriter(bench.LoggingFlags(b.TempDir()), true, nil, w.open(b))
			if err != nil {
				b.Fatal(err)
			}
			bench.ParallelLogLines(b, l.Logger)
		})
	}
}

// stopMill ends the clean-up goroutine lumberjack v2.2.1 starts on first
// use and never stops (Close leaves it running), so goleak passes.
func stopMill(l *lumberjack.Logger) {
	f := reflect.ValueOf(l).Elem().FieldByName("millCh")
	if !f.IsValid() {
		return
	}
	ch := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(chan bool)
	if ch != nil {
		close(ch)
	}
}
