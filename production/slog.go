package production

import (
	"log/slog"

	"github.com/goangel/angel/internal/logging"
)

// Slog returns a *slog.Logger for code that logs with log/slog (libraries,
// mostly): its records go through the same logrus logger as Logger, so
// they land in the same console and files, at the same --log-level, with
// the same fields app, instance and life. slog's Debug, Info, Warn and
// Error map to logrus' debug, info, warning and error; groups become
// dotted field names. Logger (logrus) stays the logger of this API.
func (a *App) Slog() *slog.Logger { return logging.Slog(a.Logger) }
