// Package logging sets up the runner's logging: one logrus logger shared
// by the runner, its supervisors and every instance, a console output like
// angel_production's (coloured by level on a terminal, plain otherwise,
// muted by --quiet), optional rotating log files through package
// logrotate, and an access-log middleware.
//
// The runner embeds Flags in its CLI, calls Open before starting any
// instance (an unwritable log path is a start-up error naming the path),
// logs each instance through Instance, installs AccessLog when
// Logging.Access is not nil, and calls Close last.
package logging
