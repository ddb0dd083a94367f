package logging

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// ErrFlags: a logging flag has a bad value (a usage error).
var ErrFlags = errors.New("logging: bad flag")

// Flags are the runner's logging options. The runner embeds them in its
// kong CLI (`embed:""`); the tags define the flags. None has an env tag:
// the runner's resolver reads every flag from APP_FLAG_NAME itself
// (production/cli.go, envResolver).
type Flags struct {
	LogLevel       string        `name:"log-level" default:"info" enum:"trace,debug,info,warn,warning,error,fatal,panic" help:"Lowest level logged: trace, debug, info, warn, error, fatal, panic." group:"Logging"`
	LogFormat      string        `name:"log-format" default:"text" enum:"text,json" help:"Log line format: text or json." group:"Logging"`
	LogFile        string        `name:"log-file" placeholder:"PATH" help:"Also write the log to rotating files; PATH becomes a symlink to the current file." group:"Logging"`
	LogFilePattern string        `name:"log-file-pattern" placeholder:"PATTERN" help:"strftime pattern naming the rotated files (default: derived from --log-file, e.g. app.%Y%m%d.log)." group:"Logging"`
	LogRotateEvery time.Duration `name:"log-rotate-every" default:"24h" help:"Start a new log file every period (0: never by time)." group:"Logging"`
	LogMaxSize     ByteSize      `name:"log-max-size" default:"0" help:"Start a new log file once it reaches this size, e.g. 100MB (0: never by size)." group:"Logging"`
	LogMaxAge      time.Duration `name:"log-max-age" default:"0" help:"Remove log files older than this, e.g. 168h (0: keep)." group:"Logging"`
	LogMaxFiles    int           `name:"log-max-files" default:"0" help:"Keep at most this many log files (0: no limit)." group:"Logging"`
	AccessLog      bool          `name:"access-log" help:"Log every HTTP request (to the main log, or to --access-log-file)." group:"Logging"`
	AccessLogFile  string        `name:"access-log-file" placeholder:"PATH" help:"Write the access log to its own rotating files (implies --access-log)." group:"Logging"`
}

// Validate checks the values kong cannot check by itself. kong calls it
// when Flags is embedded anonymously (its method is promoted to the CLI
// struct); a runner embedding it as a named field calls it from its own
// Validate.
func (f *Flags) Validate() error {
	if _, err := logrus.ParseLevel(f.LogLevel); err != nil {
		return fmt.Errorf("%w: --log-level %q: %w", ErrFlags, f.LogLevel, err)
	}
	switch f.LogFormat {
	case "", "text", "json":
	default:
		return fmt.Errorf("%w: --log-format %q: want text or json", ErrFlags, f.LogFormat)
	}
	switch {
	case f.LogRotateEvery < 0:
		return fmt.Errorf("%w: --log-rotate-every %v: must not be negative", ErrFlags, f.LogRotateEvery)
	case f.LogRotateEvery > 0 && f.LogRotateEvery < time.Second:
		return fmt.Errorf("%w: --log-rotate-every %v: at least 1s", ErrFlags, f.LogRotateEvery)
	case f.LogMaxSize < 0:
		return fmt.Errorf("%w: --log-max-size %v: must not be negative", ErrFlags, f.LogMaxSize)
	case f.LogMaxAge < 0:
		return fmt.Errorf("%w: --log-max-age %v: must not be negative", ErrFlags, f.LogMaxAge)
	case f.LogMaxFiles < 0:
		return fmt.Errorf("%w: --log-max-files %d: must not be negative", ErrFlags, f.LogMaxFiles)
	case f.LogFilePattern != "" && f.LogFile == "":
		return fmt.Errorf("%w: --log-file-pattern needs --log-file", ErrFlags)
	case f.LogFilePattern != "" && !strings.Contains(f.LogFilePattern, "%"):
		return fmt.Errorf("%w: --log-file-pattern %q has no strftime field (e.g. %%Y%%m%%d)", ErrFlags, f.LogFilePattern)
	case f.LogFile != "" && f.LogFile == f.AccessLogFile:
		return fmt.Errorf("%w: --access-log-file must differ from --log-file", ErrFlags)
	}
	return nil
}

// ByteSize is a size flag: a number of bytes with an optional unit.
// B; KB, MB, GB (powers of 1000); K, M, G, KiB, MiB, GiB (powers of 1024).
// Case does not matter: "100MB", "64MiB", "512k", "0".
type ByteSize int64

var units = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30},
	{"b", 1},
}

// UnmarshalText parses a size (kong uses it for --log-max-size).
func (b *ByteSize) UnmarshalText(text []byte) error {
	s := strings.ToLower(strings.TrimSpace(string(text)))
	mult := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || (n > 0 && mult > (1<<62)/n) {
		return fmt.Errorf("%w: size %q: want a number of bytes with an optional unit (KB, MB, GB, KiB, MiB, GiB)", ErrFlags, string(text))
	}
	*b = ByteSize(n * mult)
	return nil
}

// String prints the size in the largest exact binary unit.
func (b ByteSize) String() string {
	for _, u := range []struct {
		s string
		m int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.m == 0 {
			return strconv.FormatInt(int64(b)/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(int64(b), 10)
}
