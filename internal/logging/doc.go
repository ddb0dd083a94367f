// Package logging sets up the runner's logging: one logrus logger shared
// by the runner, its supervisors and every instance, a console output like
// angel_production's, optional rotating log files through package
// logrotate, and an access-log middleware.
//
// The runner embeds Flags in its CLI, calls Open before starting any
// instance (an unwritable log path is a start-up error naming the path),
// logs each instance through Instance (fields app, instance, life),
// installs AccessLog when Logging.Access is not nil, and calls Close last.
//
// The console, muted by --quiet (never the files):
//
//   - trace, debug and info lines go to stdout, warnings and errors to
//     stderr (all to stdout when no stderr is given);
//   - each stream is coloured by level when it is a terminal, unless the
//     NO_COLOR environment variable is set (https://no-color.org);
//   - under systemd's journal (JOURNAL_STREAM names stdout's device and
//     inode) everything goes to stdout, without colour or timestamp (the
//     journal stamps each line), each line prefixed with its level as
//     sd-daemon(3)'s "<N>", so that journalctl -p err works;
//   - a console that cannot be written (closed pipe, full disk behind a
//     redirection) is never fatal: lost lines are counted
//     (Logging.ConsoleWriteErrors) and each failure episode is reported
//     once on the other stream; the log files still get every line.
//
// Output wiring, chosen once by Open so a line costs one format and one
// write per output where possible: the console and the file get the same
// formatted bytes (the console routes them by level and colours them per
// stream); under the journal the console has its own form and a
// logrotate.Hook writes the plain (or JSON) form to the file.
//
// The logger runs with logrus' SetNoLock: every writer used is safe for
// concurrent writes of whole lines, and formatting is already outside
// logrus' lock. Add hooks before logging starts.
package logging
