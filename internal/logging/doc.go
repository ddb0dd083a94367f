// Package logging sets up the runner's logging: one logrus logger shared
// by the runner, its supervisors and every instance, a console output like
// angel_production's (coloured by level on a terminal, plain otherwise,
// muted by --quiet), optional rotating log files through package
// logrotate, and an access-log middleware.
//
// The runner embeds Flags in its CLI, calls Open before starting any
// instance (an unwritable log path is a start-up error naming the path),
// logs each instance through Instance (fields app, instance, life),
// installs AccessLog when Logging.Access is not nil, and calls Close last.
//
// Output wiring, chosen once by Open so a line costs one format and one
// write where possible:
//
//   - console only: the console formatter (TextFormatter, coloured on a
//     terminal) writes stdout;
//   - file only (--quiet): the file formatter writes the rotating file;
//   - both, console not a terminal: one format, written to both (a tee);
//   - both, console a terminal: coloured to stdout, and a logrotate.Hook
//     writes the plain (or JSON) form to the file.
//
// The logger runs with logrus' SetNoLock: every writer used is safe for
// concurrent writes of whole lines, and formatting is already outside
// logrus' lock. Add hooks before logging starts.
package logging
